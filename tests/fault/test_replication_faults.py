"""Replicated partitions under faults, on real processes: three combined nodes, a topic with
six partitions, RF=3 and min.insync.replicas=2; idempotent acks=all producers (librdkafka
and the Java client) and a consumer group run while nodes are killed -9, paused with
SIGSTOP and restarted, one at a time. Afterwards every acknowledged record is read back, in
order per producer and partition, and no batch is in the log twice under one producer id
and epoch (a producer that bumps its epoch after a timeout may legitimately send a batch
again under the new epoch, KIP-360); the group has consumed every acknowledged record."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time

import pytest

from tests.support.quorum import QuorumNode, bootstrap, start_cluster, stop_cluster

pytestmark = pytest.mark.fault
TOPIC, PARTITIONS = "replicated", 6
FAULT_PHASE_S = 40
JAVA_RECORDS, JAVA_RATE = 30_000, 600  # records, per second: the Java producer spans the faults
# Shorter than Kafka's defaults (9000 / 2000 ms), so a dead broker is fenced within the test.
OVERRIDES = {"broker.session.timeout.ms": "6000", "broker.heartbeat.interval.ms": "500",
             "replica.lag.time.max.ms": "10000", "offsets.topic.replication.factor": "3"}
GROUP_IDLE_S = 30  # after the faults, the group has this long without a record to finish


class LibrdkafkaProducer(threading.Thread):
    """Idempotent acks=all; records each value acknowledged with its partition and offset."""

    def __init__(self, servers: str, name: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.servers, self.name_, self.stop = servers, name, stop
        self.acked: dict[str, tuple[int, int]] = {}
        self.failed = 0

    def run(self) -> None:
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": self.servers, "acks": "all", "enable.idempotence": True,
                             "linger.ms": 5, "message.timeout.ms": 30_000})

        def delivered(error, message) -> None:
            if error is None:
                self.acked[message.value().decode()] = (message.partition(), message.offset())
            else:
                self.failed += 1

        index = 0
        while not self.stop.is_set():
            try:
                producer.produce(TOPIC, f"{self.name_}-{index}".encode(), on_delivery=delivered)
                index += 1
            except BufferError:
                producer.poll(0.05)
            if index % 100 == 0:
                producer.poll(0)
                time.sleep(0.01)
        producer.flush(60)


class GroupConsumer(threading.Thread):
    """A subscribed consumer committing as it goes: what it has seen, by value."""

    def __init__(self, servers: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.servers, self.stop = servers, stop
        self.seen: set[str] = set()

    def run(self) -> None:
        from confluent_kafka import Consumer

        consumer = Consumer({"bootstrap.servers": self.servers, "group.id": "through-faults",
                             "auto.offset.reset": "earliest", "enable.auto.commit": True,
                             "session.timeout.ms": 10_000})
        consumer.subscribe([TOPIC])
        try:
            idle_since = None
            while True:
                message = consumer.poll(0.5)
                if message is not None and not message.error():
                    self.seen.add(message.value().decode())
                    idle_since = None
                elif self.stop.is_set():
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > GROUP_IDLE_S:
                        return
        finally:
            consumer.close()


def faults(nodes: list[QuorumNode], seconds: float, rng: random.Random) -> list[str]:
    """One fault at a time (kill -9, SIGSTOP, clean restart), each healed before the next."""
    done, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(rng.uniform(1, 3))
        node = rng.choice(nodes)
        action = rng.choice(["kill", "pause", "restart"])
        if action == "kill":
            node.kill9()
            time.sleep(rng.uniform(2, 8))
            node.start()
        elif action == "pause":
            os.kill(node.pid, signal.SIGSTOP)
            time.sleep(rng.uniform(1, 8))
            os.kill(node.pid, signal.SIGCONT)
        else:
            node.stop()
            node.start()
        done.append(f"{action} {node.node_id}")
    return done


def read_everything(servers: str) -> list[tuple[int, int, str, bytes | None]]:
    """Every record of the topic as (partition, offset, value, key), to the end of each partition."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": servers, "group.id": "reader", "enable.auto.commit": False})
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=20)[1] for p in range(PARTITIONS)}
        consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
        records, positions, deadline = [], {p: 0 for p in range(PARTITIONS)}, time.monotonic() + 120
        while any(positions[p] < ends[p] for p in ends) and time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is not None and not message.error():
                records.append((message.partition(), message.offset(), message.value().decode(), message.key()))
                positions[message.partition()] = message.offset() + 1
        assert all(positions[p] >= ends[p] for p in ends), f"read up to {positions}, ends {ends}"
        return records
    finally:
        consumer.close()


def batch_headers(nodes: list[QuorumNode], leaders: dict[int, int]) -> list:
    """The record batches of each partition as its leader's log holds them (the nodes stopped)."""
    from protocol.records import iter_batches
    from storage.config import LogConfig
    from storage.log import PartitionLog

    headers = []
    for partition, leader in leaders.items():
        node = next(n for n in nodes if n.node_id == leader)
        log = PartitionLog.open(str(node.directory / "data" / f"{TOPIC}-{partition}"), LogConfig())
        try:
            offset = log.log_start_offset
            while offset < log.log_end_offset:
                data = bytes(log.read(offset, 1 << 20).records)
                for _, header in iter_batches(data):
                    headers.append((partition, header))
                    offset = header.base_offset + header.last_offset_delta + 1
        finally:
            log.close(flush=False)
    return headers


def test_no_acknowledged_write_is_lost_under_kills_pauses_and_restarts(tmp_path, java_client):
    from confluent_kafka.admin import AdminClient, NewTopic

    nodes = start_cluster(tmp_path, overrides=OVERRIDES)
    stop, threads, java = threading.Event(), [], None
    try:
        servers = bootstrap(nodes)
        admin = AdminClient({"bootstrap.servers": servers})  # kept alive until the result is in
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3, config={"min.insync.replicas": "2"})])[TOPIC].result(30)
        producers = [LibrdkafkaProducer(servers, f"rd{k}", stop) for k in range(2)]
        group = GroupConsumer(servers, stop)
        threads = [*producers, group]
        for thread in threads:
            thread.start()
        java = java_client.start("produce", ["--bootstrap", servers, "--topic", TOPIC, "--count",
                                             JAVA_RECORDS, "--key-prefix", "java-", "--acks", "all",
                                             "--rate", JAVA_RATE])
        done = faults(nodes, FAULT_PHASE_S, random.Random(int(os.environ.get("KRAFT_FAULT_SEED", "7"))))
        stop.set()
        java_out, java_err = java.communicate(timeout=180)
        for thread in threads:
            thread.join(timeout=180)
        servers = bootstrap(nodes)
        records = read_everything(servers)
        admin = AdminClient({"bootstrap.servers": servers})
        metadata = admin.list_topics(TOPIC, timeout=20).topics[TOPIC]
        leaders = {p: metadata.partitions[p].leader for p in range(PARTITIONS)}
    finally:
        stop.set()
        stop_cluster(nodes)

    by_value = {}
    for partition, offset, value, key in records:
        by_value.setdefault(value if key is None else key.decode(), []).append((partition, offset))
    acked = {value: place for producer in producers for value, place in producer.acked.items()}
    java_acked = {f"java-{line['index']}": (line["partition"], line["offset"])
                  for line in map(json.loads, java_out.splitlines()) if line.get("offset") is not None}
    assert len(acked) > 1000 and len(java_acked) > 1000, (len(acked), len(java_acked), java_err[-2000:], done)
    lost = [v for v in [*acked, *java_acked] if v not in by_value]
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {lost[:5]} (faults: {done})"
    moved = [v for v, place in {**acked, **java_acked}.items() if place not in by_value[v]]
    assert not moved, f"{len(moved)} records are not at the offset they were acknowledged at, e.g. {moved[:5]}"

    # In order per producer and partition: the first copy of each record.
    last: dict[tuple[str, int], int] = {}
    for partition, offset, value, key in sorted(records):
        name = value if key is None else key.decode()
        producer, index = name.rsplit("-", 1)
        if by_value[name][0] != (partition, offset):
            continue
        assert last.get((producer, partition), -1) < int(index), f"{name} out of order at {partition}/{offset}"
        last[(producer, partition)] = int(index)

    # No batch twice under one producer id and epoch.
    sequences: dict[tuple[int, int, int], set[int]] = {}
    for partition, header in batch_headers(nodes, leaders):
        if header.producer_id < 0:
            continue
        seen = sequences.setdefault((partition, header.producer_id, header.producer_epoch), set())
        assert header.base_sequence not in seen, f"{partition}: a batch twice under one producer epoch: {header}"
        seen.add(header.base_sequence)

    missed = [v for v in acked if v not in group.seen]
    assert not missed, (f"the consumer group missed {len(missed)} of {len(acked)} acknowledged records (it saw"
                        f" {len(group.seen)}), e.g. {sorted(missed)[:5]} at {[acked[v] for v in sorted(missed)[:5]]}")
