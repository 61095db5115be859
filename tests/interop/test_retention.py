"""Retention and DeleteRecords against a real node: the background retention check deletes
expired segments and moves the log start offset; kafka-delete-records prints Kafka's output."""

from __future__ import annotations

import json
import time

import pytest

from protocol.records import RecordInput, build_batch
from tests.interop.test_broker_apis import create_topic, list_offset, produce
from tests.interop.test_tools import ok, run_tool

pytestmark = pytest.mark.interop
WAIT_S = 20


def wait_for_log_start(bootstrap: str, topic: str, expected: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while (start := list_offset(bootstrap, topic, -2).offset) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert start == expected, f"expected the log start offset to reach {expected} within {WAIT_S} s, it is {start}"


def test_retention_ms_deletes_expired_segments_in_the_background(kraft_node_factory, topic_name: str) -> None:
    node = kraft_node_factory(overrides={"log.retention.check.interval.ms": "200"})
    create_topic(node.bootstrap, topic_name, configs={"internal.segment.bytes": "100", "retention.ms": "3600000"})
    for index in range(4):
        batch = build_batch([RecordInput(key=b"k", value=b"old-%d" % index)], timestamp_ms=1_000 + index)
        assert produce(node.bootstrap, topic_name, batch).error_code == 0
    wait_for_log_start(node.bootstrap, topic_name, 4)
    fresh = build_batch([RecordInput(key=b"k", value=b"new")], timestamp_ms=int(time.time() * 1000))
    assert produce(node.bootstrap, topic_name, fresh).base_offset == 4
    time.sleep(1.0)
    assert list_offset(node.bootstrap, topic_name, -2).offset == 4, "a fresh record outlives retention checks"
    node.kill9()
    node.restart()
    assert list_offset(node.bootstrap, topic_name, -2).offset == 4, "the log start survives kill -9"
    assert list_offset(node.bootstrap, topic_name, -1).offset == 5


def test_kafka_delete_records_tool(kraft_node, topic_name: str, tmp_path) -> None:
    bootstrap = ("--bootstrap-server", kraft_node.bootstrap)
    ok(run_tool("topics", *bootstrap, "--create", "--topic", topic_name, "--partitions", "2"))
    ok(run_tool("console_producer", *bootstrap, "--topic", topic_name, "--property", "parse.key=true",
                stdin="".join(f"k\tv{index}\n" for index in range(5))))
    offsets = tmp_path / "offsets.json"

    def delete(entries: list[dict], version: int = 1) -> str:
        offsets.write_text(json.dumps({"partitions": entries, "version": version}))
        return ok(run_tool("delete_records", *bootstrap, "--offset-json-file", str(offsets)))

    # One key: all five records are in one partition.
    partition = 0 if list_offset(kraft_node.bootstrap, topic_name, -1, partition=0).offset == 5 else 1
    output = delete([{"topic": topic_name, "partition": partition, "offset": 3}])
    assert output == (f"Executing records delete operation\nRecords delete operation completed:\n"
                      f"partition: {topic_name}-{partition}\tlow_watermark: 3\n")
    assert list_offset(kraft_node.bootstrap, topic_name, -2, partition=partition).offset == 3
    output = delete([{"topic": topic_name, "partition": partition, "offset": -1}])
    assert output.endswith(f"partition: {topic_name}-{partition}\tlow_watermark: 5\n"), output
    output = delete([{"topic": topic_name, "partition": partition, "offset": 99},
                     {"topic": "no-such-topic", "partition": 0, "offset": 1}])
    assert (f"partition: {topic_name}-{partition}\terror: org.apache.kafka.common.errors."
            "OffsetOutOfRangeException: ") in output, output
    assert ("partition: no-such-topic-0\terror: org.apache.kafka.common.errors."
            "UnknownTopicOrPartitionException: ") in output, output

    offsets.write_text(json.dumps({"partitions": [{"topic": topic_name, "partition": 0, "offset": 1}] * 2,
                                   "version": 1}))
    duplicate = run_tool("delete_records", *bootstrap, "--offset-json-file", str(offsets))
    assert duplicate.returncode == 1
    assert f"Offset json file contains duplicate topic partitions: {topic_name}-0" in duplicate.stderr
    offsets.write_text(json.dumps({"partitions": [], "version": 2}))
    unsupported = run_tool("delete_records", *bootstrap, "--offset-json-file", str(offsets))
    assert unsupported.returncode == 1 and "Not supported version field value 2" in unsupported.stderr


def test_compacted_topic_keeps_the_latest_value_per_key(kraft_node_factory, topic_name: str) -> None:
    node = kraft_node_factory(overrides={"log.retention.check.interval.ms": "200"})
    create_topic(node.bootstrap, topic_name, configs={
        "cleanup.policy": "compact", "internal.segment.bytes": "200", "min.cleanable.dirty.ratio": "0.01"})
    for index in range(12):
        batch = build_batch([RecordInput(key=b"k%d" % (index % 2), value=b"v%d" % index)])
        assert produce(node.bootstrap, topic_name, batch).base_offset == index
    bootstrap = ("--bootstrap-server", node.bootstrap)
    deadline = time.monotonic() + WAIT_S
    while True:
        consumed = ok(run_tool("console_consumer", *bootstrap, "--topic", topic_name, "--from-beginning",
                               "--timeout-ms", "1500", "--property", "print.key=true",
                               "--property", "print.offset=true"))
        lines = consumed.splitlines()
        if len(lines) < 12 or time.monotonic() > deadline:
            break
    assert len(lines) < 12, f"expected the cleaner to remove superseded records, consumed {lines}"
    values = {line.split("\t")[1]: line.split("\t")[2] for line in lines}
    assert values == {"k0": "v10", "k1": "v11"}, f"the latest value per key survives: {lines}"
    offsets = [int(line.split("\t")[0].removeprefix("Offset:")) for line in lines]
    assert offsets == sorted(offsets) and offsets[-2:] == [10, 11], lines
    assert (node.data_dir / "cleaner-offset-checkpoint").exists()
