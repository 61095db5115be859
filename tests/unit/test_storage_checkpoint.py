"""Checkpoint files, the leader-epoch cache, partition.metadata and LogConfig."""

from __future__ import annotations

import os
import uuid

import pytest

from storage import InvalidConfigurationError, LogConfig
from storage.checkpoint import read_offsets, write_offsets
from storage.fs import REAL_FILE_SYSTEM as FS
from storage.leader_epoch import LeaderEpochCache
from storage.partition_metadata import (
    decode_topic_id,
    encode_topic_id,
    read_partition_metadata,
    write_partition_metadata,
)


def test_offset_checkpoint_round_trip_in_kafka_format(tmp_path):
    path = str(tmp_path / "recovery-point-offset-checkpoint")
    write_offsets(FS, path, {("orders", 1): 42, ("orders", 0): 7, ("a-b", 3): 0})
    assert open(path).read() == "0\n3\na-b 3 0\norders 0 7\norders 1 42\n"
    assert read_offsets(FS, path) == {("orders", 1): 42, ("orders", 0): 7, ("a-b", 3): 0}
    assert not os.path.exists(path + ".tmp")


def test_rewriting_a_checkpoint_replaces_it_whole(tmp_path):
    path = str(tmp_path / "cp")
    write_offsets(FS, path, {("t", partition): partition for partition in range(100)})
    write_offsets(FS, path, {("t", 0): 5})
    assert read_offsets(FS, path) == {("t", 0): 5}


@pytest.mark.parametrize("content", [
    b"", b"0\n", b"1\n0\n", b"0\n2\nt 0 1\n", b"0\nx\n", b"0\n1\nt zero 1\n", b"0\n1\nt 0\n", b"\xff\xfe",
])
def test_a_corrupt_checkpoint_reads_as_empty(tmp_path, content, caplog):
    path = tmp_path / "cp"
    path.write_bytes(content)
    assert read_offsets(FS, str(path)) == {}
    assert "checkpoint" in caplog.text


def test_a_missing_checkpoint_reads_as_empty(tmp_path):
    assert read_offsets(FS, str(tmp_path / "absent")) == {}


def test_leader_epoch_cache_answers_offset_for_leader_epoch(tmp_path):
    cache = LeaderEpochCache(FS, str(tmp_path))
    assert cache.end_offset_for_epoch(0, 0) == (-1, -1)
    for epoch, start in [(1, 0), (3, 10), (6, 25)]:
        assert cache.assign(epoch, start)
    assert not cache.assign(2, 30), "an older epoch never enters the cache"
    assert cache.end_offset_for_epoch(6, 40) == (6, 40)
    assert cache.end_offset_for_epoch(3, 40) == (3, 25)
    assert cache.end_offset_for_epoch(4, 40) == (3, 25), "an unknown epoch answers the floor epoch"
    assert cache.end_offset_for_epoch(0, 40) == (0, 0), "below every epoch: the first start offset"
    assert cache.end_offset_for_epoch(7, 40) == (-1, -1)
    assert cache.epoch_for_offset(12) == 3
    assert open(cache.path).read() == "0\n3\n1 0\n3 10\n6 25\n"
    reloaded, readable = LeaderEpochCache.load(FS, str(tmp_path))
    assert readable and reloaded.entries() == [(1, 0), (3, 10), (6, 25)]


def test_leader_epoch_cache_truncation(tmp_path):
    cache = LeaderEpochCache(FS, str(tmp_path), [(1, 0), (3, 10), (6, 25)])
    cache.truncate_from_end(25)
    assert cache.entries() == [(1, 0), (3, 10)]
    cache.truncate_from_start(12)
    assert cache.entries() == [(3, 12)]
    cache.assign(4, 11)
    assert cache.entries() == [(4, 11)], "a new epoch drops entries starting at or after it"


def test_partition_metadata_round_trip(tmp_path):
    topic_id = uuid.UUID("a3c1f8a2-0000-4000-8000-00000000beef")
    write_partition_metadata(FS, str(tmp_path), topic_id)
    text = (tmp_path / "partition.metadata").read_text()
    assert text == f"version: 0\ntopic_id: {encode_topic_id(topic_id)}"
    assert read_partition_metadata(FS, str(tmp_path)) == topic_id
    assert encode_topic_id(uuid.UUID(int=1)) == "AAAAAAAAAAAAAAAAAAAAAQ", "Kafka's METADATA_TOPIC_ID"
    assert decode_topic_id("AAAAAAAAAAAAAAAAAAAAAQ") == uuid.UUID(int=1)
    (tmp_path / "partition.metadata").write_text("version: 9\ntopic_id: zz")
    assert read_partition_metadata(FS, str(tmp_path)) is None


def test_log_config_from_topic_configs():
    defaults = LogConfig(segment_bytes=2048)
    config = LogConfig.from_topic_configs(
        {"segment.ms": "1000", "message.timestamp.type": "LogAppendTime", "cleanup.policy": "compact, delete",
         "min.insync.replicas": "2", "max.message.bytes": "500"}, defaults)
    assert (config.segment_bytes, config.segment_ms, config.max_message_bytes) == (2048, 1000, 500)
    assert config.uses_log_append_time and config.cleanup_policy == "compact,delete"
    assert LogConfig().segment_bytes == 2**30 and LogConfig().index_interval_bytes == 4096
    with pytest.raises(InvalidConfigurationError, match="segment.bytes"):
        LogConfig.from_topic_configs({"segment.bytes": "lots"})
    with pytest.raises(InvalidConfigurationError, match="message.timestamp.type"):
        LogConfig.from_topic_configs({"message.timestamp.type": "WallClock"})
    with pytest.raises(InvalidConfigurationError, match="segment.bytes"):
        LogConfig(segment_bytes=0)
