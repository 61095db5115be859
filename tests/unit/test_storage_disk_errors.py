"""A full disk or an EIO on append fails that append with StorageError (the broker answers
KAFKA_STORAGE_ERROR), takes the log and its whole log directory offline (other directories go
on), and never costs data already acknowledged."""

from __future__ import annotations

import errno
import os

import pytest

from protocol.records import RecordInput, build_batch, decode_batch, iter_batches
from storage import LogConfig, LogManager, PartitionLog, StorageError
from storage.sim_fs import SimFileSystem

DIRECTORY = "/data/t-0"
CONFIG = LogConfig(segment_bytes=400, index_interval_bytes=64)


def batch(value: bytes) -> bytes:
    return build_batch([RecordInput(key=b"k", value=value)], timestamp_ms=1_000)


def values(log: PartitionLog) -> list[bytes]:
    result, offset = [], log.log_start_offset
    while offset < log.log_end_offset:
        data = log.read(offset, 1 << 20).records
        for position, header in iter_batches(data):
            result += [record.value for record in decode_batch(data, position)[1]]
            offset = header.next_offset
    return result


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EIO])
@pytest.mark.parametrize("crash", [False, True])
def test_a_failed_append_takes_the_log_offline_and_keeps_acknowledged_data(error, crash):
    fs = SimFileSystem()
    fs.make_directory(DIRECTORY)
    log = PartitionLog.open(DIRECTORY, CONFIG, fs)
    acknowledged = [b"v%d" % index for index in range(6)]
    for value in acknowledged:
        log.append(batch(value), leader_epoch=0)
    log.flush()
    fs.inject_error("write", error, path_contains=".log")
    with pytest.raises(StorageError, match="offline"):
        log.append(batch(b"lost"), leader_epoch=0)
    with pytest.raises(StorageError, match="offline"):
        log.read(0, 100)
    with pytest.raises(StorageError, match="offline"):
        log.append(batch(b"after"), leader_epoch=0)
    if crash:
        fs.crash()
    else:
        log.close(flush=False)
    reopened = PartitionLog.open(DIRECTORY, CONFIG, fs, recovery_point=log.recovery_point)
    assert values(reopened) == acknowledged, "a restart recovers exactly the acknowledged records"
    assert reopened.append(batch(b"next"), leader_epoch=0).first_offset == len(acknowledged)
    reopened.close()


# ----- a failing log directory goes offline as a whole (LogManager) -------------------------------


def manager_on(fs: SimFileSystem, tmp_path) -> LogManager:
    """Two log dirs on the simulated disk; the fcntl lock files use the real ``tmp_path``."""
    log_dirs = [str(tmp_path / "a"), str(tmp_path / "b")]
    for log_dir in log_dirs:
        os.makedirs(log_dir, exist_ok=True)
    manager = LogManager(log_dirs, CONFIG, fs=fs)
    manager.load_all()
    return manager


def logs_in_two_dirs(manager: LogManager) -> dict[str, PartitionLog]:
    """Partitions land in the dir holding fewest: t-0 and t-2 in ``a``, t-1 in ``b``."""
    logs = {name: manager.get_or_create("t", index) for index, name in enumerate(("a0", "b1", "a2"))}
    assert [manager.log_dir_of("t", index) for index in range(3)] == [manager.log_dirs[0], manager.log_dirs[1],
                                                                      manager.log_dirs[0]]
    return logs


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EIO])
def test_an_append_error_takes_the_whole_log_dir_offline_and_spares_the_others(tmp_path, error):
    fs = SimFileSystem()
    manager = manager_on(fs, tmp_path)
    logs = logs_in_two_dirs(manager)
    for name, log in logs.items():
        log.append(batch(name.encode()), leader_epoch=0)
    manager.flush_all()
    manager.checkpoint()
    dir_a, dir_b = manager.log_dirs
    fs.inject_error("write", error, path_contains="t-0/")
    with pytest.raises(StorageError, match="offline"):
        logs["a0"].append(batch(b"lost"), leader_epoch=0)
    assert list(manager.offline_log_dirs()) == [dir_a] and manager.is_offline(dir_a) and not manager.is_offline(dir_b)
    for operation in (lambda: logs["a2"].append(batch(b"x"), leader_epoch=0), lambda: logs["a2"].read(0, 100),
                      logs["a2"].flush):
        with pytest.raises(StorageError, match=f"log directory {dir_a} is offline"):
            operation()
    assert logs["b1"].append(batch(b"b1 again"), leader_epoch=0).first_offset == 1, "the other dir goes on"
    assert values(logs["b1"]) == [b"b1", b"b1 again"]
    assert manager.get_or_create("t", 3).directory.startswith(dir_b), "new partitions avoid the offline dir"
    recovery_points_a = fs.file_bytes(os.path.join(dir_a, "recovery-point-offset-checkpoint"))
    manager.flush_all()
    manager.checkpoint()
    assert manager.apply_retention() == 0
    manager.close()
    assert fs.file_bytes(os.path.join(dir_a, "recovery-point-offset-checkpoint")) == recovery_points_a, (
        "nothing more is written to an offline dir")
    assert not fs.exists(os.path.join(dir_a, ".kafka_cleanshutdown")), "an offline dir must be recovered at start"
    assert fs.exists(os.path.join(dir_b, ".kafka_cleanshutdown"))

    restarted = manager_on(fs, tmp_path)
    assert restarted.offline_log_dirs() == {}, "a restart brings the dir back"
    assert {index: values(restarted.get("t", index)) for index in range(3)} == {
        0: [b"a0"], 1: [b"b1", b"b1 again"], 2: [b"a2"]}, "the acknowledged records, nothing of the failed append"
    assert restarted.get("t", 0).append(batch(b"next"), leader_epoch=0).first_offset == 1
    restarted.close()


def test_a_failed_fsync_takes_the_log_dir_offline(tmp_path):
    fs = SimFileSystem()
    manager = manager_on(fs, tmp_path)
    logs = logs_in_two_dirs(manager)
    logs["a2"].append(batch(b"unflushed"), leader_epoch=0)
    fs.inject_error("fsync", errno.EIO, path_contains="t-2/")
    with pytest.raises(StorageError, match="flush failed"):
        logs["a2"].flush()
    assert manager.is_offline(manager.log_dirs[0]) and logs["a0"].is_offline and not logs["b1"].is_offline
    assert not logs["a2"].needs_flush, "the node's flush loop leaves an offline log alone"
    manager.close()


def test_a_checkpoint_that_cannot_be_written_takes_its_dir_offline_after_writing_the_others(tmp_path):
    fs = SimFileSystem()
    manager = manager_on(fs, tmp_path)
    logs = logs_in_two_dirs(manager)
    logs["b1"].append(batch(b"b1"), leader_epoch=0)
    logs["b1"].flush()
    fs.inject_error("create", errno.ENOSPC, path_contains=os.path.join(manager.log_dirs[0], "recovery-point"))
    with pytest.raises(StorageError, match="offline"):
        manager.checkpoint()
    assert list(manager.offline_log_dirs()) == [manager.log_dirs[0]]
    assert b"t 1 1" in fs.file_bytes(os.path.join(manager.log_dirs[1], "recovery-point-offset-checkpoint"))
    manager.close()
