"""The metadata loader: committed entries (one controller write each) and snapshots in, images out."""

from __future__ import annotations

import msgpack
import pytest

from kraft.metadata import (
    ConfigRecord, MetadataLoader, MetadataRecordError, PartitionRecord, TOPIC_RESOURCE, TopicRecord,
    decode_records, encode_record, encode_records,
)
from kraft.metadata.snapshot import encode_snapshot
from kraft.raft.log import Entry

TOPIC = [TopicRecord("orders", "id-1"), ConfigRecord(TOPIC_RESOURCE, "orders", "retention.ms", "1000"),
         PartitionRecord("id-1", 0, (1,), (1,), 1), PartitionRecord("id-1", 1, (1,), (1,), 1)]


def test_a_write_of_several_records_is_one_entry_and_round_trips():
    payload = encode_records(TOPIC)
    assert decode_records(payload) == TOPIC
    assert encode_records(TOPIC[:1]) == encode_record(TOPIC[0])  # one record keeps the one-record form
    assert decode_records(encode_record(TOPIC[2])) == [TOPIC[2]]


def test_an_unreadable_entry_names_its_offset():
    loader = MetadataLoader()
    with pytest.raises(MetadataRecordError, match="offset 3"):
        loader.apply_entries([Entry(3, 1, msgpack.packb([999, 0, {}]))])


def test_a_write_is_applied_whole_and_control_entries_move_the_offset():
    loader = MetadataLoader()
    delta = loader.apply_entries([Entry(0, 1, b"LeaderChange", control=True)])
    assert delta is None and loader.image.offset == 0 and loader.applied_offset == 0
    delta = loader.apply_entries([Entry(1, 1, encode_records(TOPIC))])
    assert delta.partitions == {("id-1", 0), ("id-1", 1)} and delta.topic_configs == {"orders"}
    assert len(loader.image.topic("orders").partitions) == 2 and loader.image.offset == 1
    assert loader.apply_entries([Entry(1, 1, encode_records(TOPIC))]) is None  # already applied: skipped
    loader.apply_entries([Entry(2, 1, b"LeaderChange", control=True)])
    assert loader.image.offset == 2


def test_an_image_loaded_from_a_snapshot_equals_the_one_built_from_the_log():
    built = MetadataLoader()
    built.apply_entries([Entry(0, 1, encode_records(TOPIC)),
                         Entry(1, 1, encode_records([ConfigRecord(TOPIC_RESOURCE, "orders", "retention.ms", None)])),
                         Entry(2, 2, b"LeaderChange", control=True)])
    assert built.image.configs == {}  # no overrides left: no entry, as a snapshot has none
    loaded = MetadataLoader()
    loaded.load_snapshot(encode_snapshot(built.image), end_offset=3)
    assert loaded.image == built.image and loaded.applied_offset == 2
