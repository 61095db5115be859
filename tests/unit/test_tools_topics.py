"""kafka-topics' pure parts: topic filters, output lines, Java HashMap order, argument checks."""

from __future__ import annotations

import uuid

import pytest

from tools import topics
from tools.admin import ConfigEntry, PartitionInfo, TopicInfo, default_message, topic_id_text
from tools.common import ToolError, UsageError

CONFIG_NAMES = (
    "cleanup.policy,compression.type,delete.retention.ms,file.delete.delay.ms,flush.messages,flush.ms,"
    "index.interval.bytes,max.compaction.lag.ms,max.message.bytes,message.timestamp.type,"
    "min.cleanable.dirty.ratio,min.compaction.lag.ms,min.insync.replicas,preallocate,retention.bytes,"
    "retention.ms,segment.bytes,segment.index.bytes,segment.jitter.ms,segment.ms,unclean.leader.election.enable"
).split(",")
# Printed by Java 17's HashMap after inserting CONFIG_NAMES in order (new HashMap<>()).
JAVA_CONFIG_ORDER = (
    "compression.type,file.delete.delay.ms,max.compaction.lag.ms,max.message.bytes,min.compaction.lag.ms,"
    "message.timestamp.type,min.insync.replicas,preallocate,segment.jitter.ms,index.interval.bytes,"
    "min.cleanable.dirty.ratio,unclean.leader.election.enable,delete.retention.ms,retention.bytes,cleanup.policy,"
    "flush.ms,retention.ms,segment.bytes,segment.ms,flush.messages,segment.index.bytes"
).split(",")


def test_java_hash_map_order_matches_java() -> None:
    assert topics.java_hash_map_order(CONFIG_NAMES) == JAVA_CONFIG_ORDER
    names = ["alpha", "beta", "demo", "other.t", "jt", "pt", "big", "zeta"]
    # new HashMap<>(8) filled in this order, as Kafka's Admin builds describeTopics' result.
    assert topics.java_hash_map_order(names, initial_capacity=len(names)) == [
        "zeta", "big", "pt", "alpha", "other.t", "jt", "demo", "beta",
    ]
    assert topics.java_string_hash("foobar") == (-1268878963) & 0xFFFFFFFF


def test_topic_filter_is_kafkas_include_list() -> None:
    internal = {"__consumer_offsets"}
    names = ["__consumer_offsets", "demo", "demo2", "other.t", "a"]
    assert topics.select_topics(names, None, False, internal) == sorted(names)
    assert topics.select_topics(names, None, True, internal) == ["a", "demo", "demo2", "other.t"]
    assert topics.select_topics(names, "demo", False, internal) == ["demo"], "whole-name match"
    assert topics.select_topics(names, " 'demo.*, a' ", False, internal) == ["a", "demo", "demo2"]
    with pytest.raises(ToolError, match="is an invalid regex"):
        topics.topic_filter("(")


def test_describe_lines() -> None:
    topic_id = uuid.UUID("217212b7-c1dd-4d3a-9d9f-1cb5495596e0")
    partitions = (
        PartitionInfo(0, 1, (1, 2), (1, 2), (), ()),
        PartitionInfo(1, -1, (2, 3), (), None, None),
    )
    info = TopicInfo("demo", topic_id, False, partitions)
    configs = [ConfigEntry("retention.ms", "1000", 1), ConfigEntry("cleanup.policy", "delete", 5),
               ConfigEntry("segment.bytes", "1073741824", 4)]
    assert topics.topic_line(info, configs) == (
        f"Topic: demo\tTopicId: {topic_id_text(topic_id)}\tPartitionCount: 2\tReplicationFactor: 2"
        "\tConfigs: retention.ms=1000,segment.bytes=1073741824"  # HashMap order, defaults left out
    )
    assert topics.partition_line("demo", partitions[0]) == (
        "\tTopic: demo\tPartition: 0\tLeader: 1\tReplicas: 1,2\tIsr: 1,2\tElr: \tLastKnownElr: "
    )
    assert topics.partition_line("demo", partitions[1]) == (
        "\tTopic: demo\tPartition: 1\tLeader: none\tReplicas: 2,3\tIsr: \tElr: N/A\tLastKnownElr: N/A"
    )
    assert topic_id_text(uuid.UUID(int=0)) is None
    assert topic_id_text(uuid.UUID(bytes=bytes(range(16)))) == "AAECAwQFBgcICQoLDA0ODw"


def test_topic_configs_are_split_like_kafka() -> None:
    assert topics.parse_topic_configs(["retention.ms = 10", "a=b"]) == {"retention.ms": "10", "a": "b"}
    for bad in ("novalue", "a=b=c"):
        with pytest.raises(ToolError, match='must be in the format "key=val"'):
            topics.parse_topic_configs([bad])


@pytest.mark.parametrize("argv, message", [
    (["--bootstrap-server", "b:1"], "exactly one action"),
    (["--bootstrap-server", "b:1", "--list", "--describe"], "exactly one action"),
    (["--bootstrap-server", "b:1", "--create"], r'Missing required argument "\[topic\]"'),
    (["--bootstrap-server", "b:1", "--alter", "--topic", "t"], r'Missing required argument "\[partitions\]"'),
    (["--bootstrap-server", "b:1", "--list", "--partitions", "3"], "can't be used with option"),
    (["--bootstrap-server", "b:1", "--create", "--topic", "t", "--if-exists"], "can't be used with option"),
])
def test_argument_checks(argv: list[str], message: str) -> None:
    args = topics.build_parser().parse_args(argv)
    with pytest.raises(UsageError, match=message):
        topics.check_arguments(args)


def test_errors_print_kafkas_prefix_on_stdout(capsys) -> None:
    assert topics.main(["--bootstrap-server", "127.0.0.1:1", "--create", "--topic", "t", "--partitions", "0"]) == 1
    assert capsys.readouterr().out == "Error while executing topic command : The partitions must be greater than 0\n"


def test_default_messages_come_from_kafkas_error_texts() -> None:
    from kio.schema.errors import ErrorCode

    assert default_message(ErrorCode.topic_already_exists) == "Topic with this name already exists."
    assert default_message(ErrorCode.unknown_topic_or_partition) == "This server does not host this topic-partition."
