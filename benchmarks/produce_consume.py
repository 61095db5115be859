"""Produce and consume throughput of one kraft node with librdkafka, beside a loopback baseline.

    python -m benchmarks.produce_consume [--records N] [--bootstrap HOST:PORT] [--json PATH]
                                         [--phases produce,idempotent,consume,baseline]
                                         [--profile-server PATH]

Phases, in order, each against a fresh topic of one partition (replication factor 1):
  produce     confluent-kafka Producer, acks=all, linger.ms=5, batch.size=1 MiB, no compression,
              N values of 1,024 random bytes; timed from the first produce() to the end of flush().
  idempotent  the same with enable.idempotence=true (at most 5 requests in flight).
  consume     confluent-kafka Consumer in assign mode reading the N records the produce phase
              wrote, from offset 0; timed from assign() to the N-th record in hand.
  baseline    benchmarks.loopback: raw sockets between two processes, same payload bytes.

Each kraft row is printed with its ratio to the baseline of the same shape, measured in the same
run: produce rows against `request` (1 MiB frames, tiny response), consume against `egress`.
MB/s counts value bytes only (1 MB = 10^6 bytes), as kafka-producer-perf-test does. Unless
`--bootstrap` is given, the benchmark starts its own node in a temporary directory on port 0 and
always stops it; `--profile-server` runs that node under cProfile and prints its hot spots.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pstats
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import loopback  # noqa: E402

RECORDS_DEFAULT = 500_000
RECORD_BYTES = 1024
POOL_BYTES = 4 * 1024 * 1024  # 4,096 distinct random values, cycled
BATCH_BYTES = 1024 * 1024
LINGER_MS = 5
BASELINE_REPEATS = 5
PHASE_TIMEOUT_S = 120.0
CONSUME_BATCH_MAX = 1000
STATISTICS_INTERVAL_MS = 100
PHASES = ("produce", "idempotent", "consume", "baseline")
PROFILE_TOP = 10
# The node's own code, as a pstats restriction (a regular expression on "path:line(function)").
PROFILE_CODE = r"/(kraft|storage|protocol)/(?!.*\(<module>\))"


@dataclass(frozen=True, slots=True)
class KraftResult:
    name: str
    records: int
    value_bytes: int
    elapsed_s: float
    broker_cpu_s: float | None
    client_cpu_s: float
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    produce_requests: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def records_per_s(self) -> float:
        return self.records / self.elapsed_s

    @property
    def megabytes_per_s(self) -> float:
        return self.value_bytes / self.elapsed_s / 1e6


class CpuClock:
    """CPU seconds (user + system) of this process, all its threads, and optionally the broker's."""

    def __init__(self, broker_pid: int | None) -> None:
        self.broker_pid = broker_pid
        self.ticks_per_s = os.sysconf("SC_CLK_TCK")

    def broker_cpu_s(self) -> float | None:
        if self.broker_pid is None:
            return None
        try:
            fields = Path(f"/proc/{self.broker_pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / self.ticks_per_s  # utime, stime

    @staticmethod
    def client_cpu_s() -> float:
        times = os.times()
        return times.user + times.system


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def create_topic(bootstrap: str, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)


def run_producer(name: str, bootstrap: str, topic: str, values: list[bytes], records: int,
                 clock: CpuClock, idempotent: bool) -> KraftResult:
    from confluent_kafka import KafkaException, Producer

    latencies_s: list[float] = []
    failures: list[str] = []
    statistics: list[str] = []

    def on_delivery(error, message) -> None:
        if error is None:
            latencies_s.append(message.latency())
        else:
            failures.append(str(error))

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "linger.ms": LINGER_MS,
        "batch.size": BATCH_BYTES,
        "message.max.bytes": 2 * BATCH_BYTES,  # the request limit, so batches can reach batch.size
        "compression.type": "none",
        "enable.idempotence": idempotent,
        "statistics.interval.ms": STATISTICS_INTERVAL_MS,
        "stats_cb": statistics.append,
    })
    producer.list_topics(topic, timeout=30)  # connect and learn the leader before the clock starts
    pool_size = len(values)
    queue_full_waits = 0
    broker_cpu_before, client_cpu_before = clock.broker_cpu_s(), clock.client_cpu_s()
    started = time.perf_counter()
    for index in range(records):
        while True:
            try:
                producer.produce(topic, values[index % pool_size], partition=0, on_delivery=on_delivery)
                break
            except BufferError:  # local queue full: serve callbacks until there is room
                queue_full_waits += 1
                producer.poll(0.001)
        if index % 1000 == 0:
            producer.poll(0)
    queued_s = time.perf_counter() - started
    remaining = producer.flush(PHASE_TIMEOUT_S)
    elapsed_s = time.perf_counter() - started
    broker_cpu_after, client_cpu_after = clock.broker_cpu_s(), clock.client_cpu_s()
    if remaining or failures or len(latencies_s) != records:
        raise KafkaException(f"{name}: expected {records} acknowledged records, got {len(latencies_s)} "
                             f"({remaining} still queued, {len(failures)} failed: {failures[:3]})")
    time.sleep(2 * STATISTICS_INTERVAL_MS / 1000)
    producer.poll(0)  # one more statistics report, taken after the flush
    latencies_s.sort()
    return KraftResult(
        name=name, records=records, value_bytes=records * RECORD_BYTES, elapsed_s=elapsed_s,
        broker_cpu_s=_difference(broker_cpu_after, broker_cpu_before),
        client_cpu_s=client_cpu_after - client_cpu_before,
        latency_p50_ms=percentile(latencies_s, 0.50) * 1e3,
        latency_p99_ms=percentile(latencies_s, 0.99) * 1e3,
        produce_requests=_produce_requests(statistics),
        extra={"last_record_queued_s": queued_s, "queue_full_waits": queue_full_waits},
    )


def _produce_requests(statistics: list[str]) -> int | None:
    """ProduceRequests sent to brokers, from librdkafka's latest statistics report."""
    if not statistics:
        return None
    brokers = json.loads(statistics[-1]).get("brokers", {})
    return sum(broker.get("req", {}).get("Produce", 0) for broker in brokers.values())


def run_consumer(bootstrap: str, topic: str, records: int, clock: CpuClock) -> KraftResult:
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"bench-{uuid.uuid4().hex[:8]}",  # required by the client; assign mode never joins
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    try:
        broker_cpu_before, client_cpu_before = clock.broker_cpu_s(), clock.client_cpu_s()
        started = time.perf_counter()
        deadline = started + PHASE_TIMEOUT_S
        consumer.assign([TopicPartition(topic, 0, 0)])
        count = 0
        value_bytes = 0
        while count < records:
            if time.perf_counter() > deadline:
                raise KafkaException(f"consume: expected {records} records within {PHASE_TIMEOUT_S} s, got {count}")
            for message in consumer.consume(CONSUME_BATCH_MAX, timeout=1.0):
                if message.error():
                    raise KafkaException(message.error())
                count += 1
                value_bytes += len(message.value())
        elapsed_s = time.perf_counter() - started
        broker_cpu_after, client_cpu_after = clock.broker_cpu_s(), clock.client_cpu_s()
    finally:
        consumer.close()
    return KraftResult(
        name="consume", records=count, value_bytes=value_bytes, elapsed_s=elapsed_s,
        broker_cpu_s=_difference(broker_cpu_after, broker_cpu_before),
        client_cpu_s=client_cpu_after - client_cpu_before,
    )


def _difference(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def run_kraft_phases(bootstrap: str, phases: list[str], records: int, pool: bytes,
                     broker_pid: int | None) -> list[KraftResult]:
    values = [pool[offset:offset + RECORD_BYTES] for offset in range(0, len(pool), RECORD_BYTES)]
    clock = CpuClock(broker_pid)
    run_id = uuid.uuid4().hex[:8]
    plain_topic = f"bench-{run_id}-plain"
    results = []
    if "produce" in phases or "consume" in phases:
        create_topic(bootstrap, plain_topic)
        results.append(run_producer("produce", bootstrap, plain_topic, values, records, clock, idempotent=False))
    if "idempotent" in phases:
        topic = f"bench-{run_id}-idempotent"
        create_topic(bootstrap, topic)
        results.append(run_producer("produce idempotent", bootstrap, topic, values, records, clock, idempotent=True))
    if "consume" in phases:
        results.append(run_consumer(bootstrap, plain_topic, records, clock))
    return results


class ProfiledKraftNode:
    """Builds a KraftNode whose server runs under cProfile, writing its stats to `profile_path`."""

    @staticmethod
    def create(directory: Path, profile_path: Path | None):
        from tests.support.kraft_node import KraftNode

        if profile_path is None:
            return KraftNode(directory)

        class Profiled(KraftNode):
            def server_command(self) -> list[str]:
                # cProfile writes its file when the server returns, which it does on SIGTERM.
                return [sys.executable, "-m", "cProfile", "-o", str(profile_path),
                        "-m", "tools.server_start", str(self.properties_path)]

        return Profiled(directory)


def baseline_for(name: str) -> str:
    return "egress" if name == "consume" else "request"


def print_table(records: int, kraft: list[KraftResult], baselines: dict[str, loopback.BaselineResult]) -> None:
    print(f"kraft, one node, one partition: {records:,} records x {RECORD_BYTES:,} B random values, "
          f"acks=all, linger.ms={LINGER_MS}, batch.size={BATCH_BYTES}, compression none")
    print(f"{'phase':<20}{'records/s':>11}{'MB/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}"
          f"{'broker CPU s':>14}{'client CPU s':>14}{'vs baseline':>20}")
    for result in kraft:
        ratio = ""
        baseline = baselines.get(baseline_for(result.name))
        if baseline is not None:
            ratio = f"{result.megabytes_per_s / baseline.megabytes_per_s:.3f} x {baseline.shape}"
        print(f"{result.name:<20}{result.records_per_s:>11,.0f}{result.megabytes_per_s:>9,.1f}"
              f"{_optional(result.latency_p50_ms, '.1f'):>9}{_optional(result.latency_p99_ms, '.1f'):>9}"
              f"{_optional(result.produce_requests, ',d'):>10}{_optional(result.broker_cpu_s, '.2f'):>14}"
              f"{result.client_cpu_s:>14.2f}{ratio:>20}")
    for result in kraft:
        if "last_record_queued_s" in result.extra:
            print(f"  {result.name}: the last produce() returned after {result.extra['last_record_queued_s']:.2f} s "
                  f"of {result.elapsed_s:.2f} s; the rest is flush()")
    for baseline in baselines.values():
        runs = ", ".join(f"{baseline.total_bytes / elapsed / 1e6:,.0f}" for elapsed in baseline.elapsed_s)
        print(f"{'loopback ' + baseline.shape:<20}{'':>11}{baseline.megabytes_per_s:>9,.1f}"
              f"   median of {len(baseline.elapsed_s)} runs (MB/s: {runs})")


def _optional(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def write_json(path: Path, records: int, kraft: list[KraftResult],
               baselines: dict[str, loopback.BaselineResult]) -> None:
    from confluent_kafka import libversion

    document = {
        "config": {"records": records, "record_bytes": RECORD_BYTES, "acks": "all", "linger_ms": LINGER_MS,
                   "batch_bytes": BATCH_BYTES, "compression": "none"},
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "librdkafka": libversion()[0], "platform": platform.platform()},
        "kraft": [{**asdict(result), "records_per_s": result.records_per_s,
                   "megabytes_per_s": result.megabytes_per_s,
                   "baseline": baseline_for(result.name) if baselines else None,
                   "ratio_to_baseline": (result.megabytes_per_s / baselines[baseline_for(result.name)].megabytes_per_s
                                         if baselines else None)} for result in kraft],
        "baseline": {shape: {**asdict(result), "megabytes_per_s": result.megabytes_per_s}
                     for shape, result in baselines.items()},
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def print_profile(profile_path: Path) -> None:
    """The node's hot spots: its own functions by cumulative time (the runner's wrappers, trio and
    the start-up imports would fill a plain listing), then every function by own time."""
    print(f"\nbroker profile ({profile_path}); the node's start-up and shutdown are included")
    stats = pstats.Stats(str(profile_path), stream=sys.stdout)
    print(f"top {PROFILE_TOP} kraft functions by cumulative time:")
    stats.sort_stats("cumulative").print_stats(PROFILE_CODE, PROFILE_TOP)
    print(f"top {PROFILE_TOP} functions by own time:")
    stats.sort_stats("tottime").print_stats(PROFILE_TOP)


def run(args: argparse.Namespace) -> int:
    pool = os.urandom(POOL_BYTES)
    phases = args.phases
    kraft: list[KraftResult] = []
    if set(phases) - {"baseline"}:
        if args.bootstrap:
            kraft = run_kraft_phases(args.bootstrap, phases, args.records, pool, broker_pid=None)
        else:
            with tempfile.TemporaryDirectory(prefix="kraft-bench-") as directory:
                node = ProfiledKraftNode.create(Path(directory), args.profile_server)
                try:
                    node.start()
                    kraft = run_kraft_phases(node.bootstrap, phases, args.records, pool, broker_pid=node.pid)
                finally:
                    node.stop()
    baselines = {}
    if "baseline" in phases:
        baselines = loopback.measure(pool, args.records * RECORD_BYTES, BASELINE_REPEATS)
    print_table(args.records, kraft, baselines)
    if args.json:
        write_json(args.json, args.records, kraft, baselines)
    if args.profile_server and not args.bootstrap and args.profile_server.exists():
        print_profile(args.profile_server)
    return 0


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.produce_consume", description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=RECORDS_DEFAULT, help=f"records per phase ({RECORDS_DEFAULT:,})")
    parser.add_argument("--bootstrap", help="benchmark a running broker instead of starting a node")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--phases", default=",".join(PHASES),
                        help=f"comma-separated subset of {','.join(PHASES)} (all)")
    parser.add_argument("--profile-server", type=Path, metavar="PATH",
                        help="run the node under cProfile, write its stats to PATH and print the hot spots")
    args = parser.parse_args(argv)
    args.phases = [phase.strip() for phase in args.phases.split(",") if phase.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}; expected a subset of {list(PHASES)}")
    if args.records <= 0:
        parser.error(f"--records must be positive, got {args.records}")
    if args.profile_server and args.bootstrap:
        parser.error("--profile-server profiles the node this benchmark starts; it cannot with --bootstrap")
    if args.profile_server:
        args.profile_server = args.profile_server.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    return run(parse_arguments(argv))


if __name__ == "__main__":
    sys.exit(main())
