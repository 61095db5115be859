"""A metadata snapshot rebuilds exactly the image it was taken from."""

from __future__ import annotations

import random

from hypothesis import given, settings, strategies as st

from kraft.config import parse_server_config
from kraft.controller.control import ConfigChange, ControllerError, ControllerLogic, NewTopic
from kraft.metadata import FeatureLevelRecord, MetadataImage, RegisterBrokerRecord
from kraft.metadata.snapshot import decode_snapshot, encode_snapshot

CONFIG = parse_server_config({
    "process.roles": "broker,controller", "node.id": "1", "controller.quorum.voters": "1@localhost:9093",
    "listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "controller.listener.names": "CONTROLLER",
})


@given(st.lists(st.sampled_from(["create", "delete", "config", "grow", "pids"]), max_size=20), st.integers(0, 99))
@settings(max_examples=60, deadline=None)
def test_snapshot_round_trip_equals_the_image(operations, seed):
    rng = random.Random(seed)
    logic = ControllerLogic(CONFIG, random.Random(seed))
    image = MetadataImage().apply([FeatureLevelRecord("metadata.version", 25)] + [
        RegisterBrokerRecord(b, f"inc-{b}", b, (("PLAINTEXT", "h", 9000 + b, "PLAINTEXT"),), "rack-a", b == 3)
        for b in (1, 2, 3)], 3)
    for operation in operations:
        name = rng.choice(["a", "b", "c"])
        try:
            if operation == "create":
                records = logic.create_topics(image, [NewTopic(name, 3, 2, configs={"retention.ms": "9"})])[0]
            elif operation == "delete":
                records = logic.delete_topics(image, [name])[0]
            elif operation == "config":
                records = logic.alter_topic_configs(image, name, [ConfigChange("segment.ms", "100000")], True)
            elif operation == "grow":
                records = logic.create_partitions(image, name, 5, None, False)
            else:
                records = logic.allocate_producer_ids(image, 1, 1)[0]
        except ControllerError:
            continue
        image = image.apply(records, image.offset + len(records))
    rebuilt = decode_snapshot(encode_snapshot(image), image.offset)
    assert rebuilt.offset == image.offset
    assert dict(rebuilt.features) == dict(image.features)
    assert dict(rebuilt.brokers) == dict(image.brokers)
    assert dict(rebuilt.topic_ids_by_name) == dict(image.topic_ids_by_name)
    assert {k: dict(v.partitions) for k, v in rebuilt.topics_by_id.items()} == \
        {k: dict(v.partitions) for k, v in image.topics_by_id.items()}
    assert {k: dict(v) for k, v in rebuilt.configs.items()} == {k: dict(v) for k, v in image.configs.items() if v}
    assert rebuilt.next_producer_id == image.next_producer_id
