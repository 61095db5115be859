"""Image deltas: a batch of metadata records says what it changed, and the broker's
subscribers act on that alone.

- Following deltas batch by batch leaves the ReplicaManager exactly where a full rescan of
  the final image does (hosted partitions, their states, their log configs), for any
  sequence of topic creations, partition changes, config changes and deletions.
- A batch that touches one partition of a 10,000-partition image costs far less than one
  that touches all of them: the work follows the change, not the size of the image.
"""

from __future__ import annotations

import time
import types

from hypothesis import given, settings, strategies as st

from kraft.broker.replicas import ReplicaManager
from kraft.config import parse_server_config
from kraft.metadata import (
    FULL_DELTA, TOPIC_RESOURCE, ConfigRecord, MetadataImage, PartitionChangeRecord, PartitionRecord,
    RemoveTopicRecord, TopicRecord,
)

CONFIG = parse_server_config({
    "process.roles": "broker,controller", "node.id": "1", "controller.quorum.voters": "1@localhost:9093",
    "listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "controller.listener.names": "CONTROLLER"})


class FakeLogs:
    """The LogManager calls ReplicaManager makes, without a disk."""

    def __init__(self) -> None:
        self.live: dict[tuple[str, int], object] = {}

    def get_or_create(self, topic, index, topic_id, config):
        log = types.SimpleNamespace(high_watermark=0, log_end_offset=0, config=config, is_offline=False,
                                    assign_epoch_start=lambda epoch: None)
        self.live[(topic, index)] = log
        return log

    def delete(self, topic, index) -> None:
        self.live.pop((topic, index), None)


def hosted(replicas: ReplicaManager) -> dict:
    return {(p.topic, p.index): (p.topic_id, p.state, p.log.config) for p in replicas.all_partitions()}


def topic_id(number: int) -> str:
    return f"00000000-0000-0000-0000-{number:012d}"


# One step: (kind, topic number, partition, a value)
steps = st.lists(st.tuples(
    st.sampled_from(["create", "change_leader", "change_replicas", "config", "remove"]),
    st.integers(0, 3), st.integers(0, 2), st.integers(1, 3)), max_size=30)


def records_for(image: MetadataImage, kind: str, number: int, index: int, value: int, created: dict) -> list:
    name = f"t{number}"
    current = created.get(name)
    if kind == "create" and current is None:
        created["ids issued"] = created.get("ids issued", 0) + 1  # topic ids are never reused
        created[name] = new_id = topic_id(created["ids issued"])
        return [TopicRecord(name, new_id)] + [
            PartitionRecord(new_id, i, (1, 2) if (i + value) % 2 else (2, 3), (1, 2), 1 if (i + value) % 2 else 2)
            for i in range(3)]
    if current is None:
        return []
    if kind == "change_leader":
        return [PartitionChangeRecord(current, index, leader=value)]
    if kind == "change_replicas":
        return [PartitionChangeRecord(current, index, replicas=(value, value % 3 + 1), isr=(value,))]
    if kind == "config":
        return [ConfigRecord(TOPIC_RESOURCE, name, "retention.ms", str(value * 1000))]
    del created[name]
    return [RemoveTopicRecord(current)]


@settings(max_examples=200, deadline=None)
@given(steps, st.integers(1, 4))
def test_following_deltas_ends_where_a_full_rescan_does(operations, batch_size: int) -> None:
    following = ReplicaManager(1, CONFIG, FakeLogs())
    image = MetadataImage()
    following.apply_image(FULL_DELTA, image)
    created: dict[str, str] = {}
    for start in range(0, len(operations), batch_size):
        batch = []
        for kind, number, index, value in operations[start:start + batch_size]:
            batch += records_for(image.apply(batch, image.offset + 1) if batch else image, kind, number, index,
                                 value, created)
        if batch:
            image, delta = image.apply_delta(batch, image.offset + len(batch))
            following.apply_image(delta, image)
    rescanned = ReplicaManager(1, CONFIG, FakeLogs())
    rescanned.apply_image(FULL_DELTA, image)
    assert hosted(following) == hosted(rescanned)
    assert set(following.logs.live) == set(rescanned.logs.live), "a log kept or deleted that should not be"


def test_a_delta_names_what_changed() -> None:
    image = MetadataImage().apply([TopicRecord("a", topic_id(1)), PartitionRecord(topic_id(1), 0, (1,), (1,), 1),
                                   TopicRecord("b", topic_id(2)), PartitionRecord(topic_id(2), 0, (1,), (1,), 1)], 3)
    _, delta = image.apply_delta([PartitionChangeRecord(topic_id(1), 0, leader=2),
                                  ConfigRecord(TOPIC_RESOURCE, "b", "retention.ms", "1"),
                                  RemoveTopicRecord(topic_id(2))], 6)
    assert not delta.full
    assert delta.partitions == {(topic_id(1), 0)}
    assert dict(delta.removed_topics) == {topic_id(2): "b"} and delta.topic_configs == {"b"}
    assert delta.touches_topic(topic_id(1)) and delta.touches_topic(topic_id(2))
    assert not delta.touches_topic(topic_id(3))


TOPICS, PARTITIONS_PER_TOPIC = 100, 100  # 10,000 partitions, every one hosted here
REPEATS = 5


def _large_image() -> MetadataImage:
    records = []
    for number in range(TOPICS):
        records.append(TopicRecord(f"t{number}", topic_id(number)))
        records += [PartitionRecord(topic_id(number), i, (1,), (1,), 1) for i in range(PARTITIONS_PER_TOPIC)]
    return MetadataImage().apply(records, len(records) - 1)


def _cost_s(image: MetadataImage, replicas: ReplicaManager, batch: list) -> float:
    """The least CPU time of a few runs: applying the batch to the image plus the subscriber."""
    best = float("inf")
    for _ in range(REPEATS):
        started = time.process_time()
        new_image, delta = image.apply_delta(batch, image.offset + len(batch))
        replicas.apply_image(delta, new_image)
        best = min(best, time.process_time() - started)
        replicas.apply_image(FULL_DELTA, image)  # back to where it was, outside the measurement
    return best


def test_one_partition_of_ten_thousand_costs_far_less_than_all() -> None:
    image = _large_image()
    replicas = ReplicaManager(1, CONFIG, FakeLogs())
    replicas.apply_image(FULL_DELTA, image)
    assert len(replicas.all_partitions()) == TOPICS * PARTITIONS_PER_TOPIC
    one = [PartitionChangeRecord(topic_id(7), 3, isr=(1,))]
    every = [PartitionChangeRecord(topic_id(number), i, isr=(1,))
             for number in range(TOPICS) for i in range(PARTITIONS_PER_TOPIC)]
    one_s, every_s = _cost_s(image, replicas, one), _cost_s(image, replicas, every)
    assert one_s * 50 < every_s, (f"expected one partition's batch to cost under 1/50 of all 10,000's;"
                                  f" one took {one_s * 1e3:.3f} ms, all took {every_s * 1e3:.3f} ms")
