"""Controller failover, kraft beside Apache Kafka: from kill -9 of the active controller to the next write.

The figure is the time from killing the active controller to the first successful metadata write
(CreateTopics) sent to a surviving broker.

    python -m benchmarks.failover [--rounds N] [--broker kraft|kafka|both] [--json PATH]

Three combined (broker + controller) nodes with a static quorum run with Kafka's default
timeouts, stated explicitly so the figures do not move if kraft's defaults do; with `both`
(the default) the same rounds run against kraft and then against Apache Kafka 4.4.0 (jars from
Maven Central, benchmarks/kafka_cluster.py; Kafka's default heap and G1 flags) on this machine,
and the report ends with kraft's figures over Kafka's. Each round:

  1. find the active controller (DescribeQuorum through the brokers);
  2. baseline: one CreateTopics with no fault, sent to one of the other two nodes (they take
     turns), the same way the failover write is sent;
  3. kill -9 the active controller, then send CreateTopics through that client again and again
     (each attempt bounded, 50 ms between attempts) until one succeeds; the figure is the time
     from the SIGKILL to that success;
  4. restart the victim and wait until it has rejoined: registered and unfenced again, and its
     own metadata shows the topic written in step 3.

The summary is the distribution of step 3 over the rounds (min, p50, p90, max; nearest rank),
beside the median of step 2 measured in the same run (STYLE.md rule 10) and Kafka's
`controller.quorum.fetch.timeout.ms` (2000 ms), the time a follower waits for a silent leader
before it starts an election, so the main part of the figure is expected to be near it.
For kraft each round also reports when the new leader logged "active controller in epoch N":
a rough split of the figure into electing and writing. A restarted victim needs about
broker.session.timeout.ms to rejoin, because its new registration waits for the old session
to expire, in kraft as in Kafka.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.quorum import QuorumNode, active_controller, bootstrap, start_cluster, stop_cluster  # noqa: E402

ROUNDS_DEFAULT = 10
CLUSTER_SIZE = 3
# Kafka's defaults, written out: the benchmark is about these values, not about kraft's defaults.
KAFKA_DEFAULT_TIMEOUTS = {
    "controller.quorum.election.timeout.ms": "1000",
    "controller.quorum.fetch.timeout.ms": "2000",
    "broker.session.timeout.ms": "9000",
    "broker.heartbeat.interval.ms": "2000",
}
FETCH_TIMEOUT_MS = int(KAFKA_DEFAULT_TIMEOUTS["controller.quorum.fetch.timeout.ms"])
ATTEMPT_TIMEOUT_S = 5.0  # one CreateTopics, client side; the broker's forwarder waits for a leader
RETRY_INTERVAL_S = 0.05
ATTEMPTS_MAX = 200
WRITE_DEADLINE_S = 60.0
REJOIN_DEADLINE_S = 90.0
REJOIN_POLL_S = 0.2
ERRORS_KEPT = 3
LOG_TAIL_LINES = 30
# librdkafka logs every closed connection at info level (6); the benchmark keeps each attempt's error.
CLIENT_LOG_LEVEL = 3
ACTIVE_CONTROLLER_LINE = "active controller in epoch"
LOG_TIME_FORMAT = "%Y-%m-%d %H:%M:%S,%f"  # logging's asctime, the prefix of every node log line


class BenchmarkError(RuntimeError):
    """The cluster did not do what a round needs within its bound (no write, no rejoin)."""


@dataclass(frozen=True, slots=True)
class Write:
    elapsed_s: float
    attempts: int
    already_existed: bool  # an earlier attempt's write committed but its answer was lost
    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Round:
    index: int
    victim: int
    new_leader: int
    baseline_s: float
    failover_s: float
    attempts: int
    already_existed: bool
    # kill -> the new leader's "active controller" log line (kraft only; its duty loop checks
    # every 20 ms for the role, so the line trails the election by about that much)
    announced_s: float | None
    rejoin_s: float
    errors: tuple[str, ...]


def nearest_rank(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


class SurvivorAdmin:
    """CreateTopics sent straight to the surviving brokers, in turn, one connection per attempt.

    A client library's admin API sends CreateTopics to the broker its Metadata named as
    controller, which a Kafka broker picks at random among the live brokers and may be the
    node just killed; librdkafka then waits for that one ("Timed out waiting for controller").
    The figure is about the cluster, so the request goes to a survivor, which forwards it to
    the active controller, the same way for kraft and for Kafka."""

    def __init__(self, nodes: list) -> None:
        self.addresses = [node.bootstrap for node in nodes]
        self._next = 0

    def create(self, name: str) -> None:
        import trio

        address = self.addresses[self._next % len(self.addresses)]
        self._next += 1
        trio.run(self._create, address, name)

    @staticmethod
    async def _create(address: str, name: str) -> None:
        import trio

        from protocol.client import Connection
        from tools import admin

        host, _, port = address.rpartition(":")
        with trio.fail_after(ATTEMPT_TIMEOUT_S):
            connection = await Connection.open(host, int(port), "failover-benchmark")
            try:
                version = connection.version_for(admin.CREATE_TOPICS, 7, 2)
                topic = admin.build(admin.CREATE_TOPICS, version, "CreatableTopic", name=name, num_partitions=1,
                                    replication_factor=1, assignments=(), configs=())
                response = await connection.request(admin.build(
                    admin.CREATE_TOPICS, version, topics=(topic,),
                    timeout=admin.milliseconds(int(ATTEMPT_TIMEOUT_S * 1000)), validate_only=False))
            finally:
                await connection.aclose()
        result = response.topics[0]
        if admin.error_code(result.error_code) == admin.ErrorCode.topic_already_exists:
            raise FileExistsError(name)
        admin.check(result.error_code, getattr(result, "error_message", None))


def create_topic(admin: SurvivorAdmin, name: str, started: float, deadline_s: float) -> Write:
    """CreateTopics of `name` (one partition, one replica) until it succeeds; timed from `started`."""
    errors: list[str] = []
    for attempt in range(1, ATTEMPTS_MAX + 1):
        try:
            admin.create(name)
            return Write(time.perf_counter() - started, attempt, False, tuple(errors))
        except FileExistsError:  # an earlier attempt's write committed but its answer was lost
            return Write(time.perf_counter() - started, attempt, True, tuple(errors))
        except Exception as error:  # any client or broker error is one failed attempt
            if len(errors) < ERRORS_KEPT:
                errors.append(f"{type(error).__name__}: {error}")
        if time.perf_counter() - started > deadline_s:
            break
        time.sleep(RETRY_INTERVAL_S)
    raise BenchmarkError(f"expected topic {name} created within {deadline_s} s and {ATTEMPTS_MAX} attempts; "
                         f"first errors: {errors}")


def log_offsets(nodes: list[QuorumNode]) -> dict[int, int]:
    return {node.node_id: node.log_path.stat().st_size if node.log_path.exists() else 0 for node in nodes}


def announced_at(node: QuorumNode, log_offset: int) -> float | None:
    """Wall-clock time of the node's first "active controller" log line after `log_offset`."""
    with open(node.log_path, "rb") as log:
        log.seek(log_offset)
        for line in log.read().decode("utf-8", errors="replace").splitlines():
            if ACTIVE_CONTROLLER_LINE in line and line.startswith("["):
                try:
                    return datetime.strptime(line[1:line.index("]")], LOG_TIME_FORMAT).timestamp()
                except ValueError:  # not kraft's log format
                    return None
    return None


def wait_rejoined(victim: QuorumNode, topic: str) -> None:
    """The restarted victim lists itself as an unfenced broker and has the round's topic."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": victim.bootstrap, "log_level": CLIENT_LOG_LEVEL})
    deadline = time.perf_counter() + REJOIN_DEADLINE_S
    seen = None
    while time.perf_counter() < deadline:
        try:
            metadata = admin.list_topics(timeout=5)
            seen = (sorted(metadata.brokers), topic in metadata.topics)
            if victim.node_id in metadata.brokers and topic in metadata.topics:
                return
        except Exception as error:  # the node may still be starting its listeners
            seen = str(error)
        time.sleep(REJOIN_POLL_S)
    raise BenchmarkError(f"expected node {victim.node_id} to rejoin (unfenced, with topic {topic}) within "
                         f"{REJOIN_DEADLINE_S} s; last seen (brokers, has topic): {seen}")


def run_round(nodes: list[QuorumNode], index: int) -> Round:
    victim = active_controller(nodes)
    survivors = [node for node in nodes if node is not victim]
    admin = SurvivorAdmin(survivors)
    baseline = create_topic(admin, f"baseline-{index}", time.perf_counter(), WRITE_DEADLINE_S)
    offsets = log_offsets(survivors)
    killed_at_wall = time.time()
    killed_at = time.perf_counter()
    victim.kill9()
    failover = create_topic(admin, f"failover-{index}", killed_at, WRITE_DEADLINE_S)
    new_leader = active_controller(survivors)  # after the write: outside the timed window
    restarted = time.perf_counter()
    victim.start()
    wait_rejoined(victim, f"failover-{index}")
    rejoin_s = time.perf_counter() - restarted
    announced = announced_at(new_leader, offsets[new_leader.node_id])  # read late: the line may follow the write
    return Round(
        index=index, victim=victim.node_id, new_leader=new_leader.node_id,
        baseline_s=baseline.elapsed_s, failover_s=failover.elapsed_s, attempts=failover.attempts,
        already_existed=failover.already_existed,
        announced_s=None if announced is None else announced - killed_at_wall,
        rejoin_s=rejoin_s, errors=failover.errors,
    )


def warm_up(nodes: list[QuorumNode]) -> float:
    """One CreateTopics before the rounds, not counted, so a one-off cost of a fresh cluster
    (a first run once took a second for it) stays out of round 1's baseline; printed anyway."""
    admin = SurvivorAdmin(nodes)
    return create_topic(admin, "warm-up", time.perf_counter(), WRITE_DEADLINE_S).elapsed_s


def summarize(rounds: list[Round]) -> dict:
    failover = sorted(r.failover_s for r in rounds)
    baseline_s = statistics.median(r.baseline_s for r in rounds)
    figures = {"min": failover[0], "p50": nearest_rank(failover, 0.5), "p90": nearest_rank(failover, 0.9),
               "max": failover[-1]}
    return {
        "failover_s": figures,
        "failover_over_fetch_timeout": {k: v * 1000 / FETCH_TIMEOUT_MS for k, v in figures.items()},
        "baseline_median_s": baseline_s,
        "p50_over_baseline": figures["p50"] / baseline_s,
    }


def print_report(broker: str, rounds: list[Round], summary: dict) -> None:
    settings = ", ".join(f"{key}={value}" for key, value in KAFKA_DEFAULT_TIMEOUTS.items())
    name = "kraft" if broker == "kraft" else "Apache Kafka 4.4.0"
    print(f"\n{name} controller failover: {CLUSTER_SIZE} combined nodes, static quorum, kill -9 of the active "
          f"controller, CreateTopics (1 partition, RF 1) retried every {RETRY_INTERVAL_S * 1000:.0f} ms")
    print(f"Kafka's default timeouts: {settings}")
    print(f"{'round':>5}{'victim':>8}{'new':>5}{'announced s':>13}{'first write s':>15}"
          f"{'attempts':>10}{'baseline ms':>13}{'rejoin s':>10}")
    for r in rounds:
        announced = "-" if r.announced_s is None else f"{r.announced_s:.2f}"
        print(f"{r.index:>5}{r.victim:>8}{r.new_leader:>5}{announced:>13}{r.failover_s:>15.3f}"
              f"{r.attempts:>10}{r.baseline_s * 1000:>13.1f}{r.rejoin_s:>10.2f}"
              + ("  (already existed: an earlier attempt's answer was lost)" if r.already_existed else ""))
    figures, ratios = summary["failover_s"], summary["failover_over_fetch_timeout"]
    print(f"first write after kill -9, {len(rounds)} rounds:  "
          + "  ".join(f"{name} {value:.3f} s" for name, value in figures.items()))
    print(f"  / fetch timeout ({FETCH_TIMEOUT_MS} ms):           "
          + "  ".join(f"{name} {value:.2f} x" for name, value in ratios.items()))
    print(f"baseline, CreateTopics with no fault: median {summary['baseline_median_s'] * 1000:.1f} ms "
          f"over {len(rounds)} rounds; failover p50 = {summary['p50_over_baseline']:,.0f} x baseline")
    print(f"(the first CreateTopics after start-up, not counted, took {summary['warm_up_s'] * 1000:.1f} ms)")
    failed = [error for r in rounds for error in r.errors]
    if failed:
        print(f"errors of failed attempts (up to {ERRORS_KEPT} a round): {sorted(set(failed))[:5]}")


def write_json(path: Path, results: dict[str, tuple[list[Round], dict]]) -> None:
    from confluent_kafka import libversion

    document = {
        "config": {"cluster_size": CLUSTER_SIZE, "timeouts": KAFKA_DEFAULT_TIMEOUTS,
                   "retry_interval_s": RETRY_INTERVAL_S, "attempt_timeout_s": ATTEMPT_TIMEOUT_S},
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "librdkafka": libversion()[0], "platform": platform.platform()},
        "brokers": {broker: {"rounds": [asdict(r) for r in rounds], "summary": summary}
                    for broker, (rounds, summary) in results.items()},
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def print_log_tails(nodes: list[QuorumNode]) -> None:
    for node in nodes:
        print(f"--- {node.log_path} (tail) ---\n{node.log_tail(LOG_TAIL_LINES)}", file=sys.stderr)


def start_nodes(broker: str, directory: Path) -> list:
    if broker == "kafka":
        from benchmarks.kafka_cluster import start_cluster as start_kafka

        return start_kafka(directory, CLUSTER_SIZE, KAFKA_DEFAULT_TIMEOUTS)
    return start_cluster(directory, CLUSTER_SIZE, KAFKA_DEFAULT_TIMEOUTS)


def measure(broker: str, rounds_wanted: int) -> tuple[list[Round], dict]:
    """Every round against a fresh cluster of `broker`, stopped whatever happens."""
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix=f"{broker}-failover-") as directory:
        nodes: list = []
        try:
            nodes = start_nodes(broker, Path(directory))
            warm_up_s = warm_up(nodes)
            for index in range(1, rounds_wanted + 1):
                rounds.append(run_round(nodes, index))
                print(f"{broker} round {index}: {rounds[-1].failover_s:.3f} s", file=sys.stderr, flush=True)
        except BaseException:
            print_log_tails(nodes)
            raise
        finally:
            stop_cluster(nodes)  # resumes a paused node first; kraft's and Kafka's nodes alike
    return rounds, {**summarize(rounds), "warm_up_s": warm_up_s}


def print_comparison(results: dict[str, tuple[list[Round], dict]]) -> None:
    kraft, kafka = results["kraft"][1], results["kafka"][1]
    print("\nkraft / Apache Kafka 4.4.0, the same rounds on the same machine (below 1: kraft is faster)")
    print(f"{'figure':<34}{'kraft':>10}{'Kafka':>10}{'ratio':>8}")
    for name in ("min", "p50", "p90", "max"):
        ours, theirs = kraft["failover_s"][name], kafka["failover_s"][name]
        print(f"{'first write after kill -9, ' + name:<34}{ours:>9.3f}s{theirs:>9.3f}s{ours / theirs:>8.2f}")
    ours, theirs = kraft["baseline_median_s"], kafka["baseline_median_s"]
    print(f"{'CreateTopics, no fault, median':<34}{ours * 1000:>8.1f}ms{theirs * 1000:>8.1f}ms{ours / theirs:>8.2f}")


def run(args: argparse.Namespace) -> int:
    brokers = ["kraft", "kafka"] if args.broker == "both" else [args.broker]
    results = {broker: measure(broker, args.rounds) for broker in brokers}
    for broker, (rounds, summary) in results.items():
        print_report(broker, rounds, summary)
    if len(results) == 2:
        print_comparison(results)
    if args.json:
        write_json(args.json, results)
    return 0


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.failover", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS_DEFAULT, help=f"kills of the active controller ({ROUNDS_DEFAULT})")
    parser.add_argument("--broker", choices=("kraft", "kafka", "both"), default="both",
                        help="which clusters to measure (both: kraft, then Apache Kafka, and the ratio)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.rounds <= 0:
        parser.error(f"--rounds must be positive, got {args.rounds}")
    return args


def main(argv: list[str] | None = None) -> int:
    return run(parse_arguments(argv))


if __name__ == "__main__":
    sys.exit(main())
