"""``kraft-jepsen``: run, repeat and re-check fault-injection runs against a Kafka cluster.

    kraft-jepsen run --broker kraft --nodes 3 --time 120 --seed 42 --nemesis all
    kraft-jepsen repeat --runs 50 --time 300 --broker kafka --nemesis all
    kraft-jepsen check results/<run>/history.jsonl

Exit status: 0 when every run is valid, 1 when a checker found an anomaly that is not allowed,
2 when the harness itself could not run (one line on stderr says why).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_VALID, EXIT_INVALID, EXIT_ERROR = 0, 1, 2


def _add_run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", choices=("kraft", "kafka"), default="kraft",
                        help="kraft (its kafka-storage and kafka-server-start) or Apache Kafka from Maven Central")
    parser.add_argument("--kafka-version", default="4.4.0", help="Apache Kafka version for --broker kafka")
    parser.add_argument("--nodes", type=int, default=3, help="brokers (combined broker+controller nodes by default)")
    parser.add_argument("--roles", choices=("combined", "split"), default="combined")
    parser.add_argument("--controllers", type=int, default=3, help="controller-only nodes with --roles split")
    parser.add_argument("--time", type=float, default=60.0, help="seconds of workload under faults")
    parser.add_argument("--heal-time", type=float, default=10.0, help="seconds of workload after healing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nemesis", default="all",
                        help="comma-separated faults or groups (all, process, partition, slow, none, kill, pause, ...)")
    parser.add_argument("--scenario", help="a named fixed schedule instead of a random one")
    parser.add_argument("--workload", choices=("queue",), default="queue")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--replication-factor", type=int)
    parser.add_argument("--min-insync-replicas", type=int)
    parser.add_argument("--unclean-leader-election", action="store_true")
    parser.add_argument("--producers", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0, help="sends per second per producer")
    parser.add_argument("--acks", choices=("all", "-1", "1", "0"), default="all")
    parser.add_argument("--no-idempotence", action="store_true")
    parser.add_argument("--assign-consumers", type=int, default=1)
    parser.add_argument("--group-consumers", type=int, default=2)
    parser.add_argument("--message-timeout-ms", type=int, default=300_000,
                        help="librdkafka's message.timeout.ms (its default)")
    parser.add_argument("--no-whole-cluster-kill", action="store_true",
                        help="never kill -9 every node at once (librdkafka then duplicates under a bumped epoch)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="a server property for every node")
    parser.add_argument("--results", type=Path, default=Path("results"), help="where run folders go")
    parser.add_argument("--keep-data", action="store_true", help="keep the nodes' data directories")
    parser.add_argument("--no-plots", action="store_true")


def _run_options(args: argparse.Namespace, seed: int):
    from .runner import RunOptions
    from .workload import WorkloadOptions

    if args.nodes < 1 or args.partitions < 1 or args.time <= 0:
        raise ValueError("--nodes, --partitions and --time must be positive")
    if args.acks not in ("all", "-1") and not args.no_idempotence:
        raise ValueError(f"an idempotent producer needs --acks all; with --acks {args.acks} add --no-idempotence")
    replication = args.replication_factor or min(3, args.nodes)
    overrides = {}
    for item in args.override:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise ValueError(f"--override needs KEY=VALUE, got {item!r}")
        overrides[key] = value
    settings = WorkloadOptions(
        partitions=args.partitions, replication_factor=replication,
        min_insync_replicas=args.min_insync_replicas or min(2, replication),
        unclean_leader_election=args.unclean_leader_election, producers=args.producers,
        rate_per_producer=args.rate, acks=args.acks, idempotent=not args.no_idempotence,
        assign_consumers=args.assign_consumers, group_consumers=args.group_consumers,
        message_timeout_ms=args.message_timeout_ms)
    return RunOptions(broker=args.broker, nodes=args.nodes, roles=args.roles, controllers=args.controllers,
                      time_s=args.time, seed=seed, nemesis=tuple(args.nemesis.split(",")), scenario=args.scenario,
                      heal_s=args.heal_time, kafka_version=args.kafka_version, overrides=overrides,
                      workload=settings, kill_every_node=not args.no_whole_cluster_kill, keep_data=args.keep_data,
                      plots=not args.no_plots)


def _command_run(args: argparse.Namespace) -> int:
    from .runner import run

    result = run(_run_options(args, args.seed), args.results)
    print((result.directory / "summary.txt").read_text(encoding="utf-8"), end="")
    print(f"results: {result.directory}")
    return EXIT_VALID if result.valid else EXIT_INVALID


def _command_repeat(args: argparse.Namespace) -> int:
    from .runner import run
    from .tables import repeat_table

    results, errors = [], 0
    for number in range(args.runs):
        seed = args.seed + number
        try:
            result = run(_run_options(args, seed), args.results)
        except (OSError, RuntimeError) as error:  # a run the harness could not finish; the next may
            errors += 1
            print(f"run {number + 1}/{args.runs} seed {seed}: harness error: {str(error) or type(error).__name__}",
                  flush=True)
            continue
        results.append(result)
        print(f"run {number + 1}/{args.runs} seed {seed}: "
              f"{'valid' if result.valid else 'INVALID'} ({result.directory})", flush=True)
    table = repeat_table(args.broker, results, errors)
    print(table)
    (args.results / f"repeat-{args.broker}-seed{args.seed}.md").write_text(table + "\n", encoding="utf-8")
    if not all(r.valid for r in results):
        return EXIT_INVALID
    return EXIT_ERROR if errors else EXIT_VALID


def _command_check(args: argparse.Namespace) -> int:
    from .checker import check, summary_text
    from .history import read_history

    verdict = check(read_history(args.history), idempotent=not args.no_idempotence)
    print(summary_text(verdict))
    if args.json:
        print(json.dumps(verdict.to_json(), indent=2))
    return EXIT_VALID if verdict.valid else EXIT_INVALID


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser("kraft-jepsen", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="one run: cluster, workload, faults, final read, verdict")
    _add_run_flags(run_parser)
    run_parser.set_defaults(execute=_command_run)
    repeat_parser = commands.add_parser("repeat", help="several runs with seeds seed, seed+1, ...; a table")
    _add_run_flags(repeat_parser)
    repeat_parser.add_argument("--runs", type=int, default=10)
    repeat_parser.set_defaults(execute=_command_repeat)
    check_parser = commands.add_parser("check", help="re-check a recorded history")
    check_parser.add_argument("history", type=Path)
    check_parser.add_argument("--no-idempotence", action="store_true")
    check_parser.add_argument("--json", action="store_true", help="print the verdict as JSON too")
    check_parser.set_defaults(execute=_command_check)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.execute(args)
    except KeyboardInterrupt:
        print("kraft-jepsen: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, RuntimeError) as error:
        print(f"kraft-jepsen: {str(error) or type(error).__name__}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
