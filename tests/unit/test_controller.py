"""The controller's pure decision logic and the metadata image it decides against."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st

from kio.schema.errors import ErrorCode

from kraft.config import parse_server_config
from kraft.controller.control import ConfigChange, ControllerError, ControllerLogic, NewTopic, place_replicas
from kraft.metadata import (
    MetadataImage, RegisterBrokerRecord, decode_record, encode_record,
)

CONFIG = parse_server_config({
    "process.roles": "broker,controller", "node.id": "1", "controller.quorum.voters": "1@localhost:9093",
    "listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "controller.listener.names": "CONTROLLER",
    "num.partitions": "3",
})


def image_with_brokers(*broker_ids: int, fenced: tuple[int, ...] = ()) -> MetadataImage:
    records = [RegisterBrokerRecord(b, f"incarnation-{b}", 0, (("PLAINTEXT", "localhost", 9092 + b, "PLAINTEXT"),),
                                    None, fenced=b in fenced) for b in broker_ids]
    return MetadataImage().apply(records, len(records) - 1)


def apply(image: MetadataImage, records: list) -> MetadataImage:
    return image.apply(records, image.offset + len(records))


def test_create_topic_uses_broker_defaults_and_records_every_fact():
    logic = ControllerLogic(CONFIG, random.Random(1))
    records, results = logic.create_topics(image_with_brokers(1), [NewTopic("orders", configs={"retention.ms": "1000"})])
    assert results[0].error_code == ErrorCode.none and results[0].num_partitions == 3
    image = apply(image_with_brokers(1), records)
    topic = image.topic("orders")
    assert topic is not None and sorted(topic.partitions) == [0, 1, 2]
    assert all(p.replicas == (1,) and p.isr == (1,) and p.leader == 1 for p in topic.partitions.values())
    assert image.topic_configs("orders") == {"retention.ms": "1000"}


@pytest.mark.parametrize("topic, code", [
    (NewTopic("", 1, 1), ErrorCode.invalid_topic_exception),
    (NewTopic("..", 1, 1), ErrorCode.invalid_topic_exception),
    (NewTopic("a" * 250, 1, 1), ErrorCode.invalid_topic_exception),
    (NewTopic("white space", 1, 1), ErrorCode.invalid_topic_exception),
    (NewTopic("t", 0, 1), ErrorCode.invalid_partitions),
    (NewTopic("t", 1, 0), ErrorCode.invalid_replication_factor),
    (NewTopic("t", 1, 2), ErrorCode.invalid_replication_factor),
    (NewTopic("t", 1, 1, configs={"retention.ms": "soon"}), ErrorCode.invalid_config),
    (NewTopic("t", 1, 1, configs={"no.such.config": "1"}), ErrorCode.invalid_config),
    (NewTopic("t", assignments={0: (9,)}), ErrorCode.invalid_replica_assignment),
    (NewTopic("t", assignments={1: (1,)}), ErrorCode.invalid_replica_assignment),
    (NewTopic("t", 1, 1, assignments={0: (1,)}), ErrorCode.invalid_request),
])
def test_create_topic_refusals_produce_no_records(topic, code):
    records, results = ControllerLogic(CONFIG).create_topics(image_with_brokers(1), [topic])
    assert records == [], f"expected no records for a refused topic, got {records}"
    assert results[0].error_code == code, f"expected {code.name}, got {results[0].error_code.name}: {results[0].error_message}"


def test_existing_topic_and_duplicates_in_one_request():
    logic = ControllerLogic(CONFIG)
    image = apply(image_with_brokers(1), logic.create_topics(image_with_brokers(1), [NewTopic("t")])[0])
    records, results = logic.create_topics(image, [NewTopic("t"), NewTopic("u"), NewTopic("u")])
    assert [r.error_code for r in results] == [ErrorCode.topic_already_exists, ErrorCode.none, ErrorCode.invalid_request]
    assert {type(r).__name__ for r in records} >= {"TopicRecord", "PartitionRecord"}


def test_validate_only_writes_nothing():
    records, results = ControllerLogic(CONFIG).create_topics(image_with_brokers(1), [NewTopic("t")], validate_only=True)
    assert records == [] and results[0].error_code == ErrorCode.none


@given(brokers=st.integers(1, 7), partitions=st.integers(1, 60), seed=st.integers(0, 1000))
@settings(max_examples=60, deadline=None)
def test_placement_spreads_leaders_evenly_and_never_repeats_a_broker(brokers, partitions, seed):
    replication = min(brokers, 3)
    placed = place_replicas(list(range(1, brokers + 1)), 0, partitions, replication, random.Random(seed))
    assert all(len(set(replicas)) == replication for replicas in placed)
    leaders = Counter(replicas[0] for replicas in placed)
    assert max(leaders.values()) - min(leaders.get(b, 0) for b in range(1, brokers + 1)) <= 1


def test_fenced_brokers_get_no_new_partitions():
    image = image_with_brokers(1, 2, 3, fenced=(2,))
    records, results = ControllerLogic(CONFIG).create_topics(image, [NewTopic("t", 6, 2)])
    assert results[0].error_code == ErrorCode.none
    assert all(2 not in r.replicas for r in records if type(r).__name__ == "PartitionRecord")


def test_create_partitions_and_delete_topic():
    logic = ControllerLogic(CONFIG)
    image = image_with_brokers(1)
    image = apply(image, logic.create_topics(image, [NewTopic("t", 2, 1)])[0])
    image = apply(image, logic.create_partitions(image, "t", 5, None, False))
    assert sorted(image.topic("t").partitions) == [0, 1, 2, 3, 4]
    with pytest.raises(ControllerError) as refused:
        logic.create_partitions(image, "t", 3, None, False)
    assert refused.value.error_code == ErrorCode.invalid_partitions
    records, results = logic.delete_topics(image, ["t", "missing"])
    assert [r.error_code for r in results] == [ErrorCode.none, ErrorCode.unknown_topic_or_partition]
    image = apply(image, records)
    assert image.topic("t") is None and image.topic_configs("t") == {}


def test_incremental_config_operations():
    logic = ControllerLogic(CONFIG)
    image = image_with_brokers(1)
    image = apply(image, logic.create_topics(image, [NewTopic("t", 1, 1, configs={"cleanup.policy": "delete"})])[0])
    changes = [ConfigChange("cleanup.policy", "compact", 2), ConfigChange("retention.ms", "5", 0)]
    image = apply(image, logic.alter_topic_configs(image, "t", changes, incremental=True))
    assert image.topic_configs("t") == {"cleanup.policy": "delete,compact", "retention.ms": "5"}
    image = apply(image, logic.alter_topic_configs(image, "t", [ConfigChange("cleanup.policy", "delete", 3),
                                                                ConfigChange("retention.ms", None, 1)], True))
    assert image.topic_configs("t") == {"cleanup.policy": "compact"}
    image = apply(image, logic.alter_topic_configs(image, "t", [ConfigChange("segment.ms", "100000")], False))
    assert image.topic_configs("t") == {"segment.ms": "100000"}, "legacy AlterConfigs replaces every override"
    with pytest.raises(ControllerError):
        logic.alter_topic_configs(image, "t", [ConfigChange("segment.ms", "-5")], True)


def test_producer_id_blocks_never_overlap():
    logic = ControllerLogic(CONFIG)
    image = image_with_brokers(1)
    starts = []
    for _ in range(3):
        records, start = logic.allocate_producer_ids(image, 1, 0)
        starts.append(start)
        image = apply(image, records)
    assert starts == sorted(set(starts)) and starts[1] - starts[0] >= 1000


@given(st.lists(st.sampled_from(["create", "delete", "config", "grow"]), max_size=25), st.integers(0, 99))
@settings(max_examples=50, deadline=None)
def test_replaying_records_one_by_one_or_in_one_batch_gives_the_same_image(operations, seed):
    logic = ControllerLogic(CONFIG, random.Random(seed))
    image = image_with_brokers(1, 2)
    history = []
    names = [f"t{i}" for i in range(4)]
    rng = random.Random(seed)
    for operation in operations:
        name = rng.choice(names)
        try:
            if operation == "create":
                records = logic.create_topics(image, [NewTopic(name, 2, 2)])[0]
            elif operation == "delete":
                records = logic.delete_topics(image, [name])[0]
            elif operation == "config":
                records = logic.alter_topic_configs(image, name, [ConfigChange("retention.ms", str(rng.randrange(99)))], True)
            else:
                records = logic.create_partitions(image, name, 5, None, False)
        except ControllerError:
            continue
        records = [decode_record(encode_record(r)) for r in records]
        history += records
        image = apply(image, records)
    replayed = apply(image_with_brokers(1, 2), history)
    assert replayed.topic_ids_by_name == image.topic_ids_by_name
    assert {k: dict(v.partitions) for k, v in replayed.topics_by_id.items()} == \
        {k: dict(v.partitions) for k, v in image.topics_by_id.items()}
    assert replayed.configs == image.configs
