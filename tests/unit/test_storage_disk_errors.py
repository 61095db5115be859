"""A full disk or an EIO on append fails that append with StorageError (the broker answers
KAFKA_STORAGE_ERROR), takes the log offline, and never costs data already acknowledged."""

from __future__ import annotations

import errno

import pytest

from protocol.records import RecordInput, build_batch, decode_batch, iter_batches
from storage import LogConfig, PartitionLog, StorageError
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
