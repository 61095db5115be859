"""Real clients against a real kraft process: produce with keys, headers and every
codec, read everything back byte-exact, kill -9 the node, restart it, read it again.

Each client library is independent of kraft's own code, so these tests check the wire
protocol as Kafka clients really speak it.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import subprocess
import time

import pytest

from tests.support.java import json_lines

pytestmark = pytest.mark.interop
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
PARTITIONS = 3
RECORDS_PER_CODEC = 40
POLL_DEADLINE_S = 30


def expected_records(seed: int, codec: str, count: int = RECORDS_PER_CODEC) -> list[tuple[bytes, bytes, list]]:
    """Keyed binary records (including bytes that are not UTF-8) with headers."""
    rng = random.Random(f"{seed}-{codec}")
    records = []
    for index in range(count):
        key = f"{codec}-key-{index}".encode()
        value = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))) + b"\xff\x00end"
        headers = [("codec", codec.encode()), ("index", str(index).encode()), ("empty", b"")]
        records.append((key, value, headers))
    return records


def by_key(records) -> dict[bytes, tuple[bytes, list]]:
    return {key: (value, [(k, bytes(v or b"")) for k, v in headers]) for key, value, headers in records}


def check_same(expected: list, got: list, context: str) -> None:
    want, have = by_key(expected), by_key(got)
    assert len(got) == len(expected), f"{context}: expected {len(expected)} records, got {len(got)}"
    missing = sorted(set(want) - set(have))[:3]
    assert not missing, f"{context}: records missing, e.g. keys {missing}"
    for key, value in want.items():
        assert have[key] == value, f"{context}: record {key!r} differs: expected {value!r}, got {have[key]!r}"


def check_offsets_contiguous(offsets: dict[int, list[int]], context: str) -> None:
    for partition, seen in offsets.items():
        assert sorted(seen) == list(range(len(seen))), (
            f"{context}: partition {partition} offsets are not 0..{len(seen) - 1}: {sorted(seen)[:10]}...")


# ----- confluent-kafka (librdkafka) -------------------------------------------------------------

def _confluent_consume(bootstrap: str, topic: str, expected_count: int) -> tuple[list, dict]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        records, offsets = [], {}
        deadline = time.monotonic() + POLL_DEADLINE_S
        while len(records) < expected_count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, f"consumer error: {message.error()}"
            records.append((message.key(), message.value(), message.headers() or []))
            offsets.setdefault(message.partition(), []).append(message.offset())
        return records, offsets
    finally:
        consumer.close()


def test_confluent_kafka_round_trip_survives_kill9(kraft_node):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = "librdkafka-events"
    admin = AdminClient({"bootstrap.servers": kraft_node.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[topic].result(30)
    expected = []
    for codec in CODECS:
        producer = Producer({"bootstrap.servers": kraft_node.bootstrap, "compression.type": codec,
                             "enable.idempotence": True, "acks": "all", "linger.ms": 5})
        errors = []
        for key, value, headers in expected_records(1, codec):
            producer.produce(topic, key=key, value=value, headers=headers,
                             on_delivery=lambda error, _m: errors.append(error) if error else None)
        assert producer.flush(30) == 0, "expected every record delivered within 30 s"
        assert errors == [], f"expected no delivery errors, got {errors[:3]}"
        expected += expected_records(1, codec)
    got, offsets = _confluent_consume(kraft_node.bootstrap, topic, len(expected))
    check_same(expected, got, "before kill -9")
    check_offsets_contiguous(offsets, "before kill -9")
    kraft_node.kill9()
    kraft_node.restart()
    got, _ = _confluent_consume(kraft_node.bootstrap, topic, len(expected))
    check_same(expected, got, "after kill -9 and restart")


# ----- kafka-python -----------------------------------------------------------------------------

def _kafka_python_consume(bootstrap: str, topic: str) -> list:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=3000, group_id=None)
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        consumer.seek_to_beginning()
        return [(m.key, m.value, list(m.headers)) for m in consumer]
    finally:
        consumer.close()


def test_kafka_python_round_trip_survives_kill9(kraft_node):
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = "kafka-python-events"
    admin = KafkaAdminClient(bootstrap_servers=kraft_node.bootstrap)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()
    expected = []
    # kafka-python ships gzip itself; the other codecs need optional packages it may lack.
    for codec in ("none", "gzip"):
        producer = KafkaProducer(bootstrap_servers=kraft_node.bootstrap, acks="all",
                                 compression_type=None if codec == "none" else codec)
        futures = [producer.send(topic, key=k, value=v, headers=h) for k, v, h in expected_records(2, codec)]
        producer.flush(30)
        for future in futures:
            future.get(timeout=10)
        producer.close()
        expected += expected_records(2, codec)
    check_same(expected, _kafka_python_consume(kraft_node.bootstrap, topic), "before kill -9")
    kraft_node.kill9()
    kraft_node.restart()
    check_same(expected, _kafka_python_consume(kraft_node.bootstrap, topic), "after kill -9 and restart")


# ----- aiokafka ---------------------------------------------------------------------------------

async def _aiokafka_produce(bootstrap: str, topic: str, codec: str, records: list) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                compression_type=None if codec == "none" else codec)
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send(topic, key=key, value=value, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


async def _aiokafka_consume(bootstrap: str, topic: str, expected_count: int) -> list:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        records = []
        deadline = time.monotonic() + POLL_DEADLINE_S
        while len(records) < expected_count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                records += [(m.key, m.value, list(m.headers)) for m in messages]
        return records
    finally:
        await consumer.stop()


def test_aiokafka_round_trip_survives_kill9(kraft_node):
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = "aiokafka-events"

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kraft_node.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
        finally:
            await admin.close()

    asyncio.run(create())
    expected = []
    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        try:
            asyncio.run(_aiokafka_produce(kraft_node.bootstrap, topic, codec, expected_records(3, codec)))
        except (AssertionError, RuntimeError) as error:
            if "not available" in str(error) or "Libraries for" in str(error):
                continue  # aiokafka lacks the optional codec library, not a broker matter
            raise
        expected += expected_records(3, codec)
    got = asyncio.run(_aiokafka_consume(kraft_node.bootstrap, topic, len(expected)))
    check_same(expected, got, "before kill -9")
    kraft_node.kill9()
    kraft_node.restart()
    got = asyncio.run(_aiokafka_consume(kraft_node.bootstrap, topic, len(expected)))
    check_same(expected, got, "after kill -9 and restart")


# ----- kcat -------------------------------------------------------------------------------------

def _kcat_consume(kcat: str, bootstrap: str, topic: str) -> list:
    result = subprocess.run(
        [kcat, "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
         "-f", "%k\t%s\t%h\n"], capture_output=True, timeout=60, check=True)
    records = []
    for line in result.stdout.decode().splitlines():
        key, value, headers = line.split("\t")
        pairs = [tuple(h.split("=", 1)) for h in headers.split(",") if h]
        records.append((key.encode(), value.encode(), [(k, v.encode()) for k, v in pairs]))
    return records


def test_kcat_round_trip_survives_kill9(kraft_node, kcat):
    topic = "kcat-events"
    expected = []
    for codec in CODECS:
        lines = [f"{codec}-key-{i}:value {i} of {codec}" for i in range(RECORDS_PER_CODEC)]
        subprocess.run([kcat, "-b", kraft_node.bootstrap, "-P", "-t", topic, "-K:", "-z", codec,
                        "-H", f"codec={codec}", "-X", "enable.idempotence=true"],
                       input="\n".join(lines).encode(), check=True, timeout=60)
        expected += [(f"{codec}-key-{i}".encode(), f"value {i} of {codec}".encode(), [("codec", codec.encode())])
                     for i in range(RECORDS_PER_CODEC)]
    check_same(expected, _kcat_consume(kcat, kraft_node.bootstrap, topic), "before kill -9")
    kraft_node.kill9()
    kraft_node.restart()
    check_same(expected, _kcat_consume(kcat, kraft_node.bootstrap, topic), "after kill -9 and restart")


# ----- Apache Kafka's Java clients and tools -----------------------------------------------------

def _java_consume(java_client, bootstrap: str, topic: str, count: int) -> list:
    result = java_client.run("consume", ["--bootstrap", bootstrap, "--topic", topic, "--partitions",
                                         ",".join(str(p) for p in range(PARTITIONS)), "--expect", str(count),
                                         "--timeout-ms", "30000"], check=True, timeout_s=90)
    return [line for line in json_lines(result.stdout) if not line.get("summary")]


def test_java_clients_round_trip_survives_kill9(kraft_node, java_client):
    topic = "java-events"
    java_client.run("create-topic", ["--bootstrap", kraft_node.bootstrap, "--topic", topic,
                                     "--partitions", str(PARTITIONS), "--replication-factor", "1"],
                    check=True, timeout_s=90)
    described = json_lines(java_client.run("describe", ["--bootstrap", kraft_node.bootstrap, "--topic", topic],
                                           check=True, timeout_s=90).stdout)
    assert described, "expected the Java AdminClient to describe the topic"
    total = 0
    for codec in CODECS:
        result = java_client.run("produce", ["--bootstrap", kraft_node.bootstrap, "--topic", topic, "--count",
                                             "50", "--compression", codec, "--headers",
                                             "--key-prefix", f"{codec}-"], check=True, timeout_s=90)
        summary = [line for line in json_lines(result.stdout) if line.get("summary")][-1]
        assert summary["acked"] == 50 and summary["failed"] == 0, f"{codec}: {summary}"
        total += 50
    before = _java_consume(java_client, kraft_node.bootstrap, topic, total)
    assert len(before) == total, f"expected {total} records, the Java consumer read {len(before)}"
    keys = {(r["key"], base64.b64decode(r["value"])) for r in before}
    assert len(keys) == total, "expected every produced record exactly once"
    kraft_node.kill9()
    kraft_node.restart()
    after = _java_consume(java_client, kraft_node.bootstrap, topic, total)
    strip = lambda rows: sorted((r["partition"], r["offset"], r["key"], r["value"], str(r["headers"])) for r in rows)
    assert strip(after) == strip(before), "expected the same records at the same offsets after kill -9"


def test_kafka_topics_and_console_producer_tools(kraft_node, java_client):
    bootstrap = kraft_node.bootstrap
    created = java_client.run("org.apache.kafka.tools.TopicCommand",
                              ["--bootstrap-server", bootstrap, "--create", "--topic", "quickstart-events"],
                              check=True, timeout_s=90)
    assert "Created topic quickstart-events." in created.stdout
    described = java_client.run("org.apache.kafka.tools.TopicCommand",
                                ["--bootstrap-server", bootstrap, "--describe", "--topic", "quickstart-events"],
                                check=True, timeout_s=90).stdout
    assert "Topic: quickstart-events\tTopicId: " in described and "PartitionCount: 1" in described, described
    assert "\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1" in described, described
    java_client.run("org.apache.kafka.tools.ConsoleProducer",
                    ["--bootstrap-server", bootstrap, "--topic", "quickstart-events"],
                    input_text="This is my first event\nThis is my second event\n", check=True, timeout_s=90)
    got = _java_consume_single(java_client, bootstrap, "quickstart-events", 2)
    assert got == ["This is my first event", "This is my second event"]


def _java_consume_single(java_client, bootstrap: str, topic: str, count: int) -> list[str]:
    result = java_client.run("consume", ["--bootstrap", bootstrap, "--topic", topic, "--partitions", "0",
                                         "--expect", str(count), "--timeout-ms", "30000"], check=True, timeout_s=90)
    return [base64.b64decode(r["value"]).decode() for r in json_lines(result.stdout) if not r.get("summary")]
