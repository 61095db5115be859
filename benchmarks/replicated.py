"""Replicated produce throughput and latency: three local kraft nodes beside three local Apache
Kafka 4.4.0 nodes, in one run.

    python -m benchmarks.replicated [--records N] [--repeats R] [--broker kraft|kafka|both] [--json PATH]

Each cluster: three combined broker+controller nodes on loopback (Kafka with its default heap
and G1 flags, `benchmarks.kafka_cluster`), one topic per measurement with 3 partitions,
replication factor 3 and min.insync.replicas=2. Loads, each R times, 1 KiB records:
  perf        Kafka's own ProducerPerformance (kafka-producer-perf-test, 4.4.0 jars):
              acks=all, idempotent (its default), linger.ms=5, batch.size=1 MiB, unthrottled;
              its MB/s and p99 as it prints them.
  librdkafka  confluent-kafka Producer, acks=all, enable.idempotence=true, linger.ms=5,
              batch.size=1 MiB; MB/s from the first produce() to the end of flush(), latency
              per record from produce() to its delivery report.
The table shows the median of the repetitions for each broker and the ratio kraft/Kafka (for
MB/s higher is better, for latency lower). The machine is shared and noisy: read the spread.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import kafka_cluster  # noqa: E402
from tests.support.quorum import bootstrap, start_cluster, stop_cluster  # noqa: E402

RECORD_BYTES = 1024
RECORDS_DEFAULT = 200_000
REPEATS_DEFAULT = 3
PARTITIONS = 3
PERF_TIMEOUT_S = 600
PERF_JVM_OPTIONS = ("-Xmx512M",)  # kafka-producer-perf-test.sh's KAFKA_HEAP_OPTS
PRODUCER_CONFIG = {"acks": "all", "linger.ms": "5", "batch.size": str(1024 * 1024)}
PERF_SUMMARY = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency,"
    r" (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


class BenchmarkError(RuntimeError):
    pass


def create_topic(servers: str, name: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": servers})
    admin.create_topics([NewTopic(name, PARTITIONS, 3, config={"min.insync.replicas": "2"})])[name].result(60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # every partition has a leader and a full ISR
        partitions = admin.list_topics(name, timeout=10).topics[name].partitions
        if len(partitions) == PARTITIONS and all(p.leader >= 0 and len(p.isrs) == 3 for p in partitions.values()):
            return
        time.sleep(0.2)
    raise BenchmarkError(f"topic {name} did not get leaders and full ISRs within 60 s")


def run_perf(servers: str, topic: str, records: int) -> dict:
    """Kafka's ProducerPerformance; its summary line parsed."""
    properties = [f"bootstrap.servers={servers}", *(f"{k}={v}" for k, v in PRODUCER_CONFIG.items())]
    command = kafka_cluster._java("org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
                                  "--num-records", str(records), "--record-size", str(RECORD_BYTES),
                                  "--throughput", "-1", "--producer-props", *properties,
                                  jvm_options=PERF_JVM_OPTIONS)
    result = subprocess.run(command, capture_output=True, text=True, timeout=PERF_TIMEOUT_S)
    match = None
    for line in result.stdout.splitlines():
        match = PERF_SUMMARY.search(line) or match
    if result.returncode != 0 or match is None:
        raise BenchmarkError(f"ProducerPerformance failed ({result.returncode}):\n{result.stdout[-1500:]}"
                             f"{result.stderr[-1500:]}")
    return {"mb_per_s": float(match[3]), "p50_ms": float(match[6]), "p99_ms": float(match[8]),
            "p999_ms": float(match[9]), "records": int(match[1])}


def run_librdkafka(servers: str, topic: str, records: int) -> dict:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": servers, "enable.idempotence": True, **PRODUCER_CONFIG,
                         "queue.buffering.max.kbytes": 1024 * 1024})
    payload = os.urandom(RECORD_BYTES)
    latencies: list[float] = []
    failures: list[str] = []

    def report(sent: float):
        def delivered(error, message) -> None:
            if error is not None:
                failures.append(str(error))
            else:
                latencies.append(time.perf_counter() - sent)
        return delivered

    started = time.perf_counter()
    for index in range(records):
        while True:
            try:
                producer.produce(topic, payload, on_delivery=report(time.perf_counter()))
                break
            except BufferError:
                producer.poll(0.001)
        if index % 1000 == 0:
            producer.poll(0)
    producer.flush(PERF_TIMEOUT_S)
    elapsed = time.perf_counter() - started
    if failures or len(latencies) != records:
        raise BenchmarkError(f"librdkafka: {len(failures)} failed deliveries, e.g. {failures[:3]}")
    latencies.sort()
    return {"mb_per_s": records * RECORD_BYTES / 1e6 / elapsed,
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            "p999_ms": latencies[int(len(latencies) * 0.999)] * 1000, "records": records}


def start_nodes(broker: str, directory: Path) -> list:
    overrides = {"num.partitions": "1", "offsets.topic.replication.factor": "3"}
    if broker == "kraft":
        return start_cluster(directory, overrides=overrides)
    return kafka_cluster.start_cluster(directory, overrides=overrides)


def measure(broker: str, records: int, repeats: int) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {"perf": [], "librdkafka": []}
    with tempfile.TemporaryDirectory(prefix=f"replicated-{broker}-") as directory:
        nodes = start_nodes(broker, Path(directory))
        try:
            servers = bootstrap(nodes)
            for repeat in range(repeats):
                for load, run in (("perf", run_perf), ("librdkafka", run_librdkafka)):
                    topic = f"{load}-{repeat}"
                    create_topic(servers, topic)
                    result = run(servers, topic, records)
                    results[load].append(result)
                    print(f"  {broker:5} {load:10} run {repeat + 1}: {result['mb_per_s']:7.1f} MB/s, "
                          f"p50 {result['p50_ms']:6.1f} ms, p99 {result['p99_ms']:7.1f} ms", flush=True)
        finally:
            stop_cluster(nodes)
    return results


def median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def print_table(results: dict[str, dict[str, list[dict]]]) -> None:
    print()
    print("| load, figure (median) | kraft | Kafka 4.4.0 | kraft / Kafka |")
    print("|---|---|---|---|")
    for load in ("perf", "librdkafka"):
        for key, unit in (("mb_per_s", "MB/s"), ("p50_ms", "ms"), ("p99_ms", "ms"), ("p999_ms", "ms")):
            values = {broker: median(runs[load], key) for broker, runs in results.items() if runs[load]}
            cells = [f"{values[b]:.1f} {unit}" if b in values else "-" for b in ("kraft", "kafka")]
            ratio = f"{values['kraft'] / values['kafka']:.2f}" if len(values) == 2 and values["kafka"] else "-"
            spread = {b: f"{min(r[key] for r in results[b][load]):.1f}-{max(r[key] for r in results[b][load]):.1f}"
                      for b in values}
            print(f"| {load} {key.replace('_', ' ')} | {cells[0]} ({spread.get('kraft', '-')}) | "
                  f"{cells[1]} ({spread.get('kafka', '-')}) | {ratio} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replicated", description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=RECORDS_DEFAULT)
    parser.add_argument("--repeats", type=int, default=REPEATS_DEFAULT)
    parser.add_argument("--broker", choices=("kraft", "kafka", "both"), default="both")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    brokers = ("kraft", "kafka") if args.broker == "both" else (args.broker,)
    print(f"{args.records} records of {RECORD_BYTES} bytes, {args.repeats} repeats, 3 nodes, RF=3, "
          f"min.insync.replicas=2, acks=all; {platform.node()}, {os.cpu_count()} cores", flush=True)
    results = {}
    try:
        for broker in brokers:
            results[broker] = measure(broker, args.records, args.repeats)
    except (BenchmarkError, kafka_cluster.KafkaUnavailable) as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps({"records": args.records, "record_bytes": RECORD_BYTES,
                                         "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
