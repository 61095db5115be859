"""kafka-consumer-groups and kafka-console-consumer --group against a real kraft node, with
confluent-kafka as the group's consumer and Apache Kafka 4.1.1's ConsumerGroupCommand as the
reference for the output."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.interop

CONSUMER_GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
TOOL_TIMEOUT_S = 60
CONSUME_TIMEOUT_S = 30


def run_tool(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", f"tools.{module}", *args],
                          capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, (f"expected exit 0, got {result.returncode}\nstdout:\n{result.stdout}\n"
                                    f"stderr:\n{result.stderr}")
    return result


def java_stderr(text: str) -> str:
    """Kafka's stderr without the JVM's logging lines (SLF4J notes, log records, stack traces)."""
    return "\n".join(line for line in text.splitlines()
                     if line and not line.startswith(("SLF4J", "[", "\tat ")) and " [main] " not in line)


def produce(bootstrap: str, topic: str, count: int, start: int = 0) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap})
    for index in range(start, start + count):
        producer.produce(topic, key=f"k{index}", value=f"v{index}")
    assert producer.flush(30) == 0, "expected every record to be delivered"


def consume_and_commit(bootstrap: str, topic: str, group: str, count: int) -> None:
    """A confluent-kafka group member reads ``count`` records, commits them and leaves."""
    import time

    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen, deadline = 0, time.monotonic() + CONSUME_TIMEOUT_S
    while seen < count and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            seen += 1
    consumer.commit(asynchronous=False)
    consumer.close()
    assert seen == count, f"expected to consume {count} records, got {seen}"


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        answer = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in answer}
    finally:
        consumer.close()


@pytest.fixture
def group_with_offsets(kraft_node, topic_name: str) -> tuple[str, str, str]:
    bootstrap = kraft_node.bootstrap
    ok(run_tool("topics", "--bootstrap-server", bootstrap, "--create", "--topic", topic_name, "--partitions", "3"))
    produce(bootstrap, topic_name, 30)
    group = "interop-group"
    consume_and_commit(bootstrap, topic_name, group, 20)
    return bootstrap, topic_name, group


def test_describe_equals_kafkas_then_reset_and_delete(group_with_offsets, java_client) -> None:
    bootstrap, topic, group = group_with_offsets
    for view in ([], ["--members"], ["--members", "--verbose"], ["--state"], ["--verbose"]):
        args = ["--bootstrap-server", bootstrap, "--describe", "--group", group, *view]
        ours = ok(run_tool("consumer_groups", *args))
        theirs = java_client.run(CONSUMER_GROUP_COMMAND, args, check=True)
        assert ours.stdout == theirs.stdout, f"{view}: expected Kafka's\n{theirs.stdout}\ngot\n{ours.stdout}"
        assert ours.stderr.strip() == java_stderr(theirs.stderr).strip()
    assert "has no active members" in ours.stderr

    listing = ["--bootstrap-server", bootstrap, "--list", "--state"]
    assert ok(run_tool("consumer_groups", *listing)).stdout == java_client.run(CONSUMER_GROUP_COMMAND, listing).stdout

    reset = ["--bootstrap-server", bootstrap, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest"]
    dry_run = java_client.run(CONSUMER_GROUP_COMMAND, [*reset, "--dry-run"], check=True).stdout
    executed = ok(run_tool("consumer_groups", *reset, "--execute")).stdout
    assert executed == dry_run
    assert committed(bootstrap, group, topic, 3) == {0: 0, 1: 0, 2: 0}

    deleted = ok(run_tool("consumer_groups", "--bootstrap-server", bootstrap, "--delete", "--group", group))
    assert deleted.stdout == f"Deletion of requested consumer groups ('{group}') was successful.\n"
    again = ok(run_tool("consumer_groups", "--bootstrap-server", bootstrap, "--describe", "--group", group))
    assert again.stdout == f"\nError: Consumer group '{group}' does not exist.\n"


def test_reset_is_refused_while_the_group_has_members(kraft_node, topic_name: str) -> None:
    from confluent_kafka import Consumer

    bootstrap = kraft_node.bootstrap
    ok(run_tool("topics", "--bootstrap-server", bootstrap, "--create", "--topic", topic_name, "--partitions", "2"))
    produce(bootstrap, topic_name, 4)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "busy", "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([topic_name])
        import time

        deadline = time.monotonic() + CONSUME_TIMEOUT_S
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(0.5)
        result = ok(run_tool("consumer_groups", "--bootstrap-server", bootstrap, "--reset-offsets", "--group", "busy",
                             "--all-topics", "--to-latest", "--execute"))
        assert result.stdout.startswith(
            "\nError: Assignments can only be reset if the group 'busy' is inactive, but the current state is Stable.\n")
        members = ok(run_tool("consumer_groups", "--bootstrap-server", bootstrap, "--describe", "--group", "busy",
                              "--members")).stdout.splitlines()
        assert members[1].split()[0] == "GROUP" and members[2].split()[-1] == "2", members
    finally:
        consumer.close()


def test_console_consumer_group_resumes_from_its_committed_offset(kraft_node, topic_name: str) -> None:
    bootstrap = kraft_node.bootstrap
    ok(run_tool("topics", "--bootstrap-server", bootstrap, "--create", "--topic", topic_name, "--partitions", "3"))
    produce(bootstrap, topic_name, 12)
    consume = ("console_consumer", "--bootstrap-server", bootstrap, "--topic", topic_name, "--group", "console",
               "--from-beginning", "--timeout-ms", "3000")
    first = ok(run_tool(*consume))
    assert sorted(first.stdout.split()) == sorted(f"v{i}" for i in range(12))
    assert "Processed a total of 12 messages" in first.stderr
    offsets = committed(bootstrap, "console", topic_name, 3)
    assert sum(offsets.values()) == 12, f"expected the log end offsets (12 records) committed, got {offsets}"

    produce(bootstrap, topic_name, 5, start=12)
    limited = ok(run_tool(*consume, "--max-messages", "2"))
    assert len(limited.stdout.split()) == 2
    rest = ok(run_tool(*consume))
    assert sorted(limited.stdout.split() + rest.stdout.split()) == sorted(f"v{i}" for i in range(12, 17)), \
        "expected the second and third runs to print exactly the five new records between them"
    described = ok(run_tool("consumer_groups", "--bootstrap-server", bootstrap, "--describe", "--group", "console"))
    lags = [line.split()[5] for line in described.stdout.splitlines()[2:]]
    assert lags == ["0", "0", "0"], described.stdout
