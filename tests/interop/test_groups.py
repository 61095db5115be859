"""Consumer groups with real clients against a real kraft process: rebalances when
members leave, crash and join; committed offsets that survive a kill -9 of the node."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support import processes

pytestmark = pytest.mark.interop
REPO_ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 6
DEADLINE_S = 60


class MemberProcess:
    """A tests.support.group_consumer child whose output is collected in a thread."""

    def __init__(self, bootstrap: str, group: str, topic: str, *extra: str) -> None:
        self.process = processes.spawn(
            [sys.executable, "-m", "tests.support.group_consumer", bootstrap, group, topic, *extra],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.records: list[tuple[int, int, str]] = []
        self.assignments: list[list[int]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            event = json.loads(line)
            if "assigned" in event:
                self.assignments.append(event["assigned"])
            else:
                self.records.append((event["p"], event["o"], event["k"]))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def crash(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)


def produce(bootstrap: str, topic: str, first: int, count: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for index in range(first, first + count):
        producer.produce(topic, key=f"key-{index}".encode(), value=b"x" * 100)
    assert producer.flush(30) == 0


def create_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the result arrives
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(30)


def wait_until(condition, what: str, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"expected {what} within {timeout_s} s")


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)
        return {tp.partition: tp.offset for tp in found}
    finally:
        consumer.close()


def test_three_members_leave_crash_join_and_resume_after_kill9(kraft_node):
    bootstrap, topic, group = kraft_node.bootstrap, "group-events", "workers"
    create_topic(bootstrap, topic)
    produce(bootstrap, topic, 0, 1200)
    members = [MemberProcess(bootstrap, group, topic) for _ in range(3)]
    try:
        wait_until(lambda: all(m.assignments and m.assignments[-1] for m in members),
                   "all three members to get partitions")
        wait_until(lambda: sum(len(m.records) for m in members) >= 300, "the group to make progress")
        members[0].stop()
        members[1].crash()
        produce(bootstrap, topic, 1200, 600)
        members.append(MemberProcess(bootstrap, group, topic))
        wait_until(lambda: len({r[2] for m in members for r in m.records}) >= 1800,
                   "every record processed after a leave, a crash and a join")
        wait_until(lambda: members[2].assignments and members[3].assignments
                   and sorted(members[2].assignments[-1] + members[3].assignments[-1]) == list(range(PARTITIONS)),
                   "the two live members to share all partitions")
    finally:
        for member in members:
            member.crash() if member.process.poll() is None else None
    keys = {r[2] for m in members for r in m.records}
    assert keys == {f"key-{i}" for i in range(1800)}, f"missing {sorted({f'key-{i}' for i in range(1800)} - keys)[:5]}"
    before = committed_offsets(bootstrap, group, topic)
    assert sum(before.values()) == 1800, f"expected commits up to the end of every partition: {before}"
    kraft_node.kill9()
    kraft_node.restart()
    bootstrap = kraft_node.bootstrap
    assert committed_offsets(bootstrap, group, topic) == before, "expected committed offsets to survive kill -9"
    produce(bootstrap, topic, 1800, 300)
    resumed = MemberProcess(bootstrap, group, topic)
    try:
        wait_until(lambda: len(resumed.records) >= 300, "the resumed member to read the new records")
        time.sleep(1)
    finally:
        resumed.stop()
    assert sorted(r[2] for r in resumed.records) == sorted(f"key-{i}" for i in range(1800, 2100)), \
        "expected the group to resume exactly where it left off"


def test_cooperative_sticky_members_rebalance_incrementally(kraft_node):
    bootstrap, topic, group = kraft_node.bootstrap, "coop-events", "coop"
    create_topic(bootstrap, topic)
    produce(bootstrap, topic, 0, 600)
    strategy = "partition.assignment.strategy=cooperative-sticky"
    first = MemberProcess(bootstrap, group, topic, strategy)
    second = None
    try:
        wait_until(lambda: first.assignments and len(first.assignments[-1]) == PARTITIONS, "one member owning all")
        second = MemberProcess(bootstrap, group, topic, strategy)
        wait_until(lambda: second.assignments and second.assignments[-1], "the second member to get partitions")
        wait_until(lambda: len({r[2] for r in first.records + second.records}) >= 600, "all records processed")
    finally:
        for member in (first, second):
            if member is not None:
                member.stop()
    assert {r[2] for r in first.records + second.records} == {f"key-{i}" for i in range(600)}
    final = sorted(first.assignments[-1] + second.assignments[-1])
    assert final == list(range(PARTITIONS)), f"expected the members to split all partitions, got {final}"
    # Cooperative: the first member gives partitions up without ever dropping to none.
    after_first_assignment = first.assignments[[bool(a) for a in first.assignments].index(True):]
    assert all(after_first_assignment), f"expected no stop-the-world revoke: {first.assignments}"


def test_kafka_python_and_aiokafka_groups_commit_and_resume(kraft_node):
    from kafka import KafkaConsumer

    bootstrap, topic = kraft_node.bootstrap, "py-group-events"
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, 0, 200)
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id="kp-group", auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=8000)
    got = [m for m in consumer]
    consumer.commit()
    consumer.close()
    assert len(got) == 200, f"kafka-python read {len(got)} of 200"

    async def aio_consume(group: str) -> int:
        from aiokafka import AIOKafkaConsumer

        aio = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                               auto_offset_reset="earliest", enable_auto_commit=False)
        await aio.start()
        try:
            count, deadline = 0, time.monotonic() + 20
            while time.monotonic() < deadline:
                batches = await aio.getmany(timeout_ms=1000)
                count += sum(len(v) for v in batches.values())
                if count >= 200 or (count and not batches):
                    break
            await aio.commit()
            return count
        finally:
            await aio.stop()

    assert asyncio.run(aio_consume("aio-group")) == 200
    produce(bootstrap, topic, 200, 50)
    assert asyncio.run(aio_consume("aio-group")) == 50, "expected aiokafka to resume from its commit"
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id="kp-group", auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=5000)
    again = [m for m in consumer]
    consumer.close()
    assert len(again) == 50, f"expected kafka-python to resume from its commit, read {len(again)}"


def test_quickstart_step_5_java_console_consumer_prints_the_two_events(kraft_node, java_client):
    bootstrap = kraft_node.bootstrap
    java_client.run("org.apache.kafka.tools.TopicCommand",
                    ["--bootstrap-server", bootstrap, "--create", "--topic", "quickstart-events"], check=True, timeout_s=90)
    java_client.run("org.apache.kafka.tools.ConsoleProducer", ["--bootstrap-server", bootstrap, "--topic", "quickstart-events"],
                    input_text="This is my first event\nThis is my second event\n", check=True, timeout_s=90)
    result = java_client.run("org.apache.kafka.tools.consumer.ConsoleConsumer",
                             ["--bootstrap-server", bootstrap, "--topic", "quickstart-events", "--from-beginning",
                              "--max-messages", "2"], check=True, timeout_s=90)
    assert result.stdout.splitlines() == ["This is my first event", "This is my second event"], result.stdout
    described = java_client.run("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                                ["--bootstrap-server", bootstrap, "--list"], check=True, timeout_s=90)
    assert "console-consumer-" in described.stdout
