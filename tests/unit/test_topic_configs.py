"""Topic configs are checked as Kafka 4.x's LogConfig checks them: the same names, the same
validators at their boundaries (the last value refused and the first accepted) and the same
messages, which reach a client as INVALID_CONFIG. The expected texts are Kafka's own
ConfigException messages (``Invalid value V for configuration K: ...``)."""

from __future__ import annotations

import pytest
from kio.schema.errors import ErrorCode

from kraft.config import (
    BROKER_CONFIGS,
    TOPIC_CONFIGS,
    ConfigError,
    parse_server_config,
    validate_topic_configs,
)
from kraft.controller.control import ConfigChange, ControllerError, ControllerLogic, NewTopic
from kraft.metadata import MetadataImage
from tests.support.kraft_node import base_properties

LONG_MAX = 2**63 - 1

# Kafka 4.x's topic configs (LogConfig.CONFIG, 4.1 and later): every one is known here.
KAFKA_TOPIC_CONFIGS = {
    "cleanup.policy", "compression.type", "compression.gzip.level", "compression.lz4.level",
    "compression.zstd.level", "delete.retention.ms", "file.delete.delay.ms", "flush.messages", "flush.ms",
    "follower.replication.throttled.replicas", "index.interval.bytes", "leader.replication.throttled.replicas",
    "local.retention.bytes", "local.retention.ms", "max.compaction.lag.ms", "max.message.bytes",
    "message.timestamp.after.max.ms", "message.timestamp.before.max.ms", "message.timestamp.type",
    "min.cleanable.dirty.ratio", "min.compaction.lag.ms", "min.insync.replicas", "preallocate",
    "remote.log.copy.disable", "remote.log.delete.on.disable", "remote.storage.enable", "retention.bytes",
    "retention.ms", "segment.bytes", "segment.index.bytes", "segment.jitter.ms", "segment.ms",
    "unclean.leader.election.enable",
}

# (key, the largest refused value, its message, the smallest accepted value)
LOWER_BOUNDS = [
    ("segment.bytes", "1048575", "Value must be at least 1048576", "1048576"),
    ("segment.ms", "0", "Value must be at least 1", "1"),
    ("segment.jitter.ms", "-1", "Value must be at least 0", "0"),
    ("segment.index.bytes", "3", "Value must be at least 4", "4"),
    ("flush.messages", "0", "Value must be at least 1", "1"),
    ("flush.ms", "-1", "Value must be at least 0", "0"),
    ("retention.ms", "-2", "Value must be at least -1", "-1"),
    ("max.message.bytes", "-1", "Value must be at least 0", "0"),
    ("index.interval.bytes", "-1", "Value must be at least 0", "0"),
    ("delete.retention.ms", "-1", "Value must be at least 0", "0"),
    ("min.compaction.lag.ms", "-1", "Value must be at least 0", "0"),
    ("max.compaction.lag.ms", "0", "Value must be at least 1", "1"),
    ("file.delete.delay.ms", "-1", "Value must be at least 0", "0"),
    ("min.cleanable.dirty.ratio", "-0.1", "Value must be at least 0", "0"),
    ("min.insync.replicas", "0", "Value must be at least 1", "1"),
    ("compression.lz4.level", "0", "Value must be at least 1", "1"),
    ("compression.zstd.level", "-131073", "Value must be at least -131072", "-131072"),
    ("message.timestamp.before.max.ms", "-1", "Value must be at least 0", "0"),
    ("message.timestamp.after.max.ms", "-1", "Value must be at least 0", "0"),
    ("local.retention.ms", "-3", "Value must be at least -2", "-2"),
    ("local.retention.bytes", "-3", "Value must be at least -2", "-2"),
]
UPPER_BOUNDS = [
    ("min.cleanable.dirty.ratio", "1.1", "Value must be no more than 1", "1"),
    ("compression.lz4.level", "18", "Value must be no more than 17", "17"),
    ("compression.zstd.level", "23", "Value must be no more than 22", "22"),
]


def message(key: str, value: str, problem: str) -> str:
    return f"Invalid value {value} for configuration {key}: {problem}"


def refused(configs: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as raised:
        validate_topic_configs(configs)
    return str(raised.value)


def test_every_kafka_topic_config_is_known_and_nothing_else() -> None:
    assert set(TOPIC_CONFIGS) == KAFKA_TOPIC_CONFIGS


@pytest.mark.parametrize(("key", "bad", "problem", "good"), LOWER_BOUNDS + UPPER_BOUNDS)
def test_boundaries_and_messages_match_kafka(key: str, bad: str, problem: str, good: str) -> None:
    shown = str(float(bad)) if TOPIC_CONFIGS[key].type == "double" else bad
    assert refused({key: bad}) == message(key, shown, problem)
    assert validate_topic_configs({key: good}) == {key: good}


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("segment.bytes", "65536", message("segment.bytes", "65536", "Value must be at least 1048576")),
    ("segment.bytes", "abc", message("segment.bytes", "abc", "Not a number of type INT")),
    ("segment.bytes", "3000000000", message("segment.bytes", "3000000000", "Not a number of type INT")),
    ("segment.bytes", "1.5", message("segment.bytes", "1.5", "Not a number of type INT")),
    ("retention.ms", "1e3", message("retention.ms", "1e3", "Not a number of type LONG")),
    ("retention.ms", str(LONG_MAX + 1), message("retention.ms", str(LONG_MAX + 1), "Not a number of type LONG")),
    ("min.cleanable.dirty.ratio", "half", message("min.cleanable.dirty.ratio", "half", "Not a number of type DOUBLE")),
    ("preallocate", "yes", message("preallocate", "yes", "Expected value to be either true or false")),
    ("compression.type", "zip", message("compression.type", "zip",
                                        "String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer")),
    ("message.timestamp.type", "createtime", message("message.timestamp.type", "createtime",
                                                     "String must be one of: CreateTime, LogAppendTime")),
    ("cleanup.policy", "Compact", message("cleanup.policy", "Compact", "String must be one of: compact, delete")),
    ("cleanup.policy", "compact,", "Configuration 'cleanup.policy' values must not be empty."),
    ("compression.gzip.level", "0", message("compression.gzip.level", "0",
                                            "Value must be between 1 and 9 or equal to -1")),
    ("leader.replication.throttled.replicas", "foo", message(
        "leader.replication.throttled.replicas", "[foo]", "leader.replication.throttled.replicas must be the"
        " literal '*' or a list of replicas in the following format:"
        " [partitionId]:[brokerId],[partitionId]:[brokerId],...")),
])
def test_refusals_carry_kafkas_message(key: str, value: str, expected: str) -> None:
    assert refused({key: value}) == expected


@pytest.mark.parametrize(("key", "value"), [
    ("compression.gzip.level", "-1"), ("compression.gzip.level", "9"), ("cleanup.policy", "compact,delete"),
    ("cleanup.policy", ""), ("cleanup.policy", "compact,compact"), ("preallocate", " TRUE "),
    ("leader.replication.throttled.replicas", "*"), ("follower.replication.throttled.replicas", "0:1,1:2"),
    ("retention.bytes", "-5"), ("segment.bytes", " +01048576 "), ("retention.ms", str(LONG_MAX)),
    ("internal.segment.bytes", "100"),
])
def test_values_kafka_accepts_are_accepted(key: str, value: str) -> None:
    assert validate_topic_configs({key: value}) == {key: value.strip()}


def test_names_and_checks_across_keys() -> None:
    assert refused({"retention.ms": "1", "segment.bytez": "1"}) == "Unknown topic config name: segment.bytez"
    assert refused({"message.format.version": "3.0"}) == "Unknown topic config name: message.format.version"
    assert refused({"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"}) == (
        "conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)")
    assert refused({"remote.storage.enable": "true"}) == (
        "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage.")


def _logic() -> tuple[ControllerLogic, MetadataImage]:
    from tests.unit.test_controller import CONFIG, image_with_brokers

    return ControllerLogic(CONFIG), image_with_brokers(1)


def test_create_topics_answers_invalid_config_before_other_checks() -> None:
    controller, image = _logic()
    bad_config_and_bad_rf = NewTopic("t", 1, 7, configs={"segment.bytes": "65536"})
    _, results = controller.create_topics(image, [bad_config_and_bad_rf], validate_only=False)
    assert (results[0].error_code, results[0].error_message) == (
        ErrorCode.invalid_config, "Invalid value 65536 for configuration segment.bytes: Value must be at least 1048576")
    _, results = controller.create_topics(image, [NewTopic("t", 1, 1, configs={"retention.ms": None})], False)
    assert (results[0].error_code, results[0].error_message) == (
        ErrorCode.invalid_config, "Null value not supported for topic configs: retention.ms")


def test_alter_configs_validates_values_then_existence_and_list_operations() -> None:
    controller, image = _logic()
    with pytest.raises(ControllerError) as raised:
        controller.alter_topic_configs(image, "missing", [ConfigChange("segment.bytes", "1", 0)], True)
    assert raised.value.error_code == ErrorCode.invalid_config
    with pytest.raises(ControllerError) as raised:
        controller.alter_topic_configs(image, "missing", [ConfigChange("segment.bytes", "1048576", 0)], True)
    assert (raised.value.error_code, raised.value.message) == (
        ErrorCode.unknown_topic_or_partition, "The topic 'missing' does not exist.")
    with pytest.raises(ControllerError) as raised:
        controller.alter_topic_configs(image, "missing", [ConfigChange("compression.type", "gzip", 2)], True)
    assert (raised.value.error_code, raised.value.message) == (
        ErrorCode.invalid_config, "Can't APPEND to key compression.type because its type is not LIST.")


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("log.segment.bytes", "1048575", "Invalid value 1048575 for configuration log.segment.bytes:"
                                     " Value must be at least 1048576"),
    ("log.cleaner.min.cleanable.ratio", "2", "Invalid value 2.0 for configuration log.cleaner.min.cleanable.ratio:"
                                             " Value must be no more than 1"),
    ("log.retention.ms", "0", "requirement failed: log.retention.ms must be unlimited (-1) or, greater than or"
                              " equal to 1"),
    ("log.roll.ms", "0", "requirement failed: log.roll.ms must be greater than or equal to 1"),
    ("node.id", "-1", "Invalid value -1 for configuration node.id: Value must be at least 0"),
    ("compression.zstd.level", "23", "Invalid value 23 for configuration compression.zstd.level:"
                                     " Value must be no more than 22"),
])
def test_broker_configs_use_kafkas_bounds(tmp_path, key: str, value: str, expected: str) -> None:
    properties = base_properties(1, tmp_path)
    properties[key] = value
    with pytest.raises(ConfigError) as raised:
        parse_server_config(properties)
    assert str(raised.value) == expected


def test_broker_accepts_what_kafka_accepts(tmp_path) -> None:
    properties = base_properties(1, tmp_path)
    properties.update({"log.segment.bytes": "1048576", "log.retention.ms": "-1", "default.replication.factor": "0"})
    config = parse_server_config(properties)
    assert config["log.segment.bytes"] == 1048576 and "default.replication.factor" in BROKER_CONFIGS
