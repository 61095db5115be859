"""LogManager: layout, start-up recovery, checkpoints, clean shutdown, locking, deletion."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from protocol.records import RecordInput, build_batch
from storage import REAL_FILE_SYSTEM, LogConfig, LogManager, StorageError
from storage.checkpoint import read_offsets

CONFIG = LogConfig(segment_bytes=1024, index_interval_bytes=128)
TOPIC_ID = uuid.UUID(int=0xFEED)


def batch(count: int = 2) -> bytes:
    return build_batch([RecordInput(value=b"value")] * count, timestamp_ms=1_000)


@pytest.fixture
def log_dirs(tmp_path):
    return [str(tmp_path / "a"), str(tmp_path / "b")]


def test_partitions_spread_over_log_dirs_with_kafka_names(log_dirs):
    manager = LogManager(log_dirs, CONFIG)
    first = manager.get_or_create("orders", 0, TOPIC_ID)
    second = manager.get_or_create("orders", 1, TOPIC_ID)
    assert {os.path.dirname(first.directory), os.path.dirname(second.directory)} == set(log_dirs)
    assert os.path.basename(first.directory) == "orders-0"
    assert manager.get_or_create("orders", 0, TOPIC_ID) is first
    assert manager.get("orders", 7) is None
    assert manager.topic_id("orders", 0) == TOPIC_ID
    with pytest.raises(StorageError, match="topic id"):
        manager.get_or_create("orders", 0, uuid.UUID(int=1))
    manager.close()


def test_close_then_load_restores_every_log_and_its_offsets(log_dirs):
    manager = LogManager(log_dirs, CONFIG)
    for partition in range(3):
        partition_log = manager.get_or_create("events", partition, TOPIC_ID)
        for _ in range(20 + partition):
            partition_log.append(batch(), leader_epoch=1)
        partition_log.high_watermark = 10 + partition
        partition_log.delete_records_before(4)
    manager.close()
    for log_dir in log_dirs:
        marker = json.loads(open(os.path.join(log_dir, ".kafka_cleanshutdown")).read())
        assert marker == {"version": 0, "brokerEpoch": 0}
    manager = LogManager(log_dirs, CONFIG)
    manager.load_all()
    assert sorted(manager.logs()) == [("events", 0), ("events", 1), ("events", 2)]
    for partition in range(3):
        partition_log = manager.get("events", partition)
        assert partition_log.log_end_offset == 2 * (20 + partition)
        assert (partition_log.log_start_offset, partition_log.high_watermark) == (4, 10 + partition)
        assert partition_log.recovery_point == partition_log.log_end_offset
    assert not any(os.path.exists(os.path.join(log_dir, ".kafka_cleanshutdown")) for log_dir in log_dirs), (
        "the marker must go once loaded, so a later crash is not taken for a clean stop")
    manager.close()


def test_unclean_start_recovers_a_torn_tail(log_dirs):
    manager = LogManager(log_dirs[:1], CONFIG)
    partition_log = manager.get_or_create("t", 0)
    for _ in range(5):
        partition_log.append(batch(), leader_epoch=0)
    manager.flush_all()
    manager.checkpoint()
    with open(partition_log.active_segment.path, "ab") as file:
        file.write(b"\x00" * 17)
    _release_without_close(manager)
    manager = LogManager(log_dirs[:1], CONFIG)
    manager.load_all()
    recovered = manager.get("t", 0)
    assert recovered.log_end_offset == 10
    assert os.path.getsize(recovered.active_segment.path) == recovered.active_segment.size_bytes
    manager.close()


def _release_without_close(manager: LogManager) -> None:
    """Simulate a dead process: drop the locks without flushing or marking a clean stop."""
    for fd in manager._lock_fds:
        os.close(fd)
    manager._lock_fds.clear()


def test_a_second_manager_on_the_same_directory_is_refused(log_dirs):
    manager = LogManager(log_dirs, CONFIG)
    with pytest.raises(StorageError, match="is locked by another process"):
        LogManager(log_dirs[1:], CONFIG)
    manager.close()
    LogManager(log_dirs, CONFIG).close()


def test_checkpoint_files_hold_every_partition(log_dirs):
    manager = LogManager(log_dirs[:1], CONFIG)
    partition_log = manager.get_or_create("t", 0)
    partition_log.append(batch(3), leader_epoch=0)
    partition_log.flush()
    partition_log.high_watermark = 2
    manager.checkpoint()
    read = lambda name: read_offsets(manager._fs, os.path.join(log_dirs[0], name))  # noqa: E731
    assert read("recovery-point-offset-checkpoint") == {("t", 0): 3}
    assert read("replication-offset-checkpoint") == {("t", 0): 2}
    assert read("log-start-offset-checkpoint") == {("t", 0): 0}
    manager.close()


def test_delete_removes_the_directory_and_its_checkpoint_entries(log_dirs):
    manager = LogManager(log_dirs[:1], CONFIG)
    manager.get_or_create("gone", 0).append(batch(), leader_epoch=0)
    manager.get_or_create("kept", 0)
    assert manager.delete("gone", 0)
    assert not manager.delete("gone", 0)
    assert sorted(os.listdir(log_dirs[0])) == [".lock", "kept-0", "log-start-offset-checkpoint",
                                                "recovery-point-offset-checkpoint", "replication-offset-checkpoint"]
    manager.close()


def test_load_removes_half_deleted_directories_and_skips_foreign_ones(log_dirs):
    leftover = os.path.join(log_dirs[0], "gone-0.0123abcd-delete")
    os.makedirs(leftover)
    open(os.path.join(leftover, "00000000000000000000.log"), "wb").close()
    os.makedirs(os.path.join(log_dirs[0], "__cluster_metadata-0"))
    os.makedirs(os.path.join(log_dirs[0], "not a partition"))
    manager = LogManager(log_dirs[:1], CONFIG)
    manager.load_all()
    assert not os.path.exists(leftover)
    assert manager.logs() == {}
    manager.close()


def test_per_topic_configs_apply_on_load(log_dirs):
    manager = LogManager(log_dirs[:1], CONFIG)
    manager.get_or_create("t", 0)
    manager.close()
    manager = LogManager(log_dirs[:1], CONFIG)
    special = LogConfig(segment_bytes=4096)
    manager.load_all({"t": special})
    assert manager.get("t", 0).config is special
    manager.close()


def test_truncation_checkpoints_the_lowered_recovery_point_at_once(log_dirs):
    """Recovery trusts what lies below the checkpointed recovery point; after a truncation the
    old checkpoint would cover data written again and never fsynced."""
    manager = LogManager(log_dirs[:1], CONFIG)
    log = manager.get_or_create("orders", 0)
    for _ in range(10):
        log.append(batch(), leader_epoch=0)
    log.flush()
    manager.checkpoint()
    path = os.path.join(manager.log_dirs[0], "recovery-point-offset-checkpoint")
    assert read_offsets(REAL_FILE_SYSTEM, path) == {("orders", 0): 20}
    manager.truncate_to("orders", 0, 6)
    assert log.log_end_offset == 6 and read_offsets(REAL_FILE_SYSTEM, path) == {("orders", 0): 6}
    manager.close()
