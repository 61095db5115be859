"""PartitionLog: offsets, reads, rolls, timestamps, truncation and DeleteRecords."""

from __future__ import annotations

import os

import pytest

from protocol.records import (
    TIMESTAMP_LOG_APPEND_TIME,
    CorruptRecordError,
    InvalidRecordError,
    RecordInput,
    build_batch,
    crc_is_valid,
    iter_batches,
)
from storage import LogConfig, NonMonotonicOffsetError, OffsetOutOfRangeError, PartitionLog, RecordTooLargeError

SMALL = LogConfig(segment_bytes=1024, index_interval_bytes=128)


def batch(count: int = 1, timestamp_ms: int = 1_000, value_bytes: int = 10, **kwargs) -> bytes:
    entries = [RecordInput(key=b"k", value=bytes([65 + index % 26]) * value_bytes) for index in range(count)]
    return build_batch(entries, timestamp_ms=timestamp_ms, **kwargs)


def spans(data: bytes) -> list[tuple[int, int]]:
    return [(header.base_offset, header.last_offset) for _, header in iter_batches(data)]


class FakeClock:
    def __init__(self, now_ms: int = 1_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def log(tmp_path):
    opened = PartitionLog.open(str(tmp_path), SMALL)
    yield opened
    opened.close()


def fill(log: PartitionLog, batches: int, records_per_batch: int = 3, start_ms: int = 1_000) -> None:
    for index in range(batches):
        log.append(batch(records_per_batch, timestamp_ms=start_ms + index), leader_epoch=1)


def test_offsets_are_assigned_sequentially_from_the_log_end(log):
    first = log.append(batch(3), leader_epoch=0)
    second = log.append(batch(2), leader_epoch=0)
    assert (first.first_offset, first.last_offset) == (0, 2)
    assert (second.first_offset, second.last_offset) == (3, 4)
    assert log.log_end_offset == 5
    assert spans(log.read(0, 10_000).records) == [(0, 2), (3, 4)]


def test_append_stamps_offsets_and_epoch_without_breaking_the_crc(log):
    log.append(batch(2), leader_epoch=0)
    log.append(batch(2), leader_epoch=7)
    data = log.read(2, 10_000).records
    (position, header), = list(iter_batches(data))
    assert (header.base_offset, header.partition_leader_epoch) == (2, 7)
    assert crc_is_valid(data, position, header)


def test_append_across_rolls_reads_every_offset(log):
    fill(log, 40)
    assert len(log.segments) > 3, f"expected several segments, got {len(log.segments)}"
    for offset in range(log.log_end_offset):
        result = log.read(offset, 100_000)
        first_base, first_last = spans(result.records)[0]
        assert first_base <= offset <= first_last, f"read({offset}) began with batch {first_base}..{first_last}"


def test_read_returns_one_segment_and_locates_the_bytes(log):
    fill(log, 40)
    result = log.read(0, 1_000_000)
    assert result.path == log.segments[0].path
    with open(result.path, "rb") as file:
        file.seek(result.position)
        assert file.read(result.length) == result.records
    assert spans(result.records)[-1][1] + 1 == log.segments[1].base_offset


def test_read_from_the_middle_of_a_batch_returns_the_whole_batch(log):
    log.append(batch(5), leader_epoch=0)
    log.append(batch(5), leader_epoch=0)
    assert spans(log.read(7, 10_000).records) == [(5, 9)]
    assert spans(log.read(3, 10_000).records) == [(0, 4), (5, 9)]


def test_max_bytes_cuts_at_whole_batches_but_returns_at_least_one(log):
    sizes = [len(batch(3)) for _ in range(3)]
    fill(log, 3)
    assert spans(log.read(0, sizes[0] + sizes[1] - 1).records) == [(0, 2)]
    assert spans(log.read(0, 1).records) == [(0, 2)]
    assert log.read(0, 1, min_one_message=False).records == b""
    assert spans(log.read(0, sum(sizes)).records) == [(0, 2), (3, 5), (6, 8)]


def test_max_offset_excludes_batches_at_or_above_it(log):
    fill(log, 3)
    assert spans(log.read(0, 10_000, max_offset=6).records) == [(0, 2), (3, 5)]
    assert spans(log.read(0, 10_000, max_offset=5).records) == [(0, 2)]
    assert log.read(6, 10_000, max_offset=6).records == b""


def test_reads_outside_the_log_raise_offset_out_of_range(log):
    fill(log, 2)
    assert log.read(6, 100).records == b"", "reading at the log end is an empty answer, not an error"
    with pytest.raises(OffsetOutOfRangeError):
        log.read(7, 100)
    log.delete_records_before(3)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(2, 100)
    assert spans(log.read(3, 10_000).records)[0] == (3, 5)


def test_reopen_preserves_offsets_data_and_epochs(tmp_path):
    first = PartitionLog.open(str(tmp_path), SMALL)
    fill(first, 30)
    first.delete_records_before(10)
    everything = [first.read(offset, 100_000).records for offset in range(10, first.log_end_offset)]
    first.close()
    reopened = PartitionLog.open(str(tmp_path), SMALL, log_start_offset=10)
    assert (reopened.log_start_offset, reopened.log_end_offset) == (10, 90)
    assert [reopened.read(offset, 100_000).records for offset in range(10, 90)] == everything
    assert reopened.end_offset_for_epoch(1) == (1, 90)
    assert reopened.append(batch(1), leader_epoch=2).first_offset == 90
    reopened.close()


def test_invalid_input_raises_the_records_errors_and_writes_nothing(log):
    good = bytearray(batch(2))
    good[-1] ^= 0xFF
    with pytest.raises(CorruptRecordError):
        log.append(bytes(good), leader_epoch=0)
    with pytest.raises(CorruptRecordError):
        log.append(batch(2)[:-3], leader_epoch=0)
    with pytest.raises(InvalidRecordError):
        log.append(b"", leader_epoch=0)
    assert log.log_end_offset == 0 and log.active_segment.size_bytes == 0


def test_batches_above_max_message_bytes_are_refused(tmp_path):
    log = PartitionLog.open(str(tmp_path), LogConfig(max_message_bytes=200))
    with pytest.raises(RecordTooLargeError):
        log.append(batch(1, value_bytes=300), leader_epoch=0)
    log.close()


def test_roll_by_segment_ms_uses_batch_timestamps(tmp_path):
    log = PartitionLog.open(str(tmp_path), LogConfig(segment_ms=60_000))
    log.append(batch(1, timestamp_ms=0), leader_epoch=0)
    log.append(batch(1, timestamp_ms=59_000), leader_epoch=0)
    assert len(log.segments) == 1
    log.append(batch(1, timestamp_ms=61_000), leader_epoch=0)
    assert [segment.base_offset for segment in log.segments] == [0, 2]
    log.close()


def test_log_append_time_stamps_max_timestamp_and_recomputes_crc(tmp_path):
    clock = FakeClock(5_000_000)
    log = PartitionLog.open(str(tmp_path), LogConfig(message_timestamp_type="LogAppendTime"), clock=clock)
    result = log.append(batch(2, timestamp_ms=7), leader_epoch=0)
    assert result.log_append_time_ms == 5_000_000
    data = log.read(0, 10_000).records
    (position, header), = list(iter_batches(data))
    assert header.timestamp_type == TIMESTAMP_LOG_APPEND_TIME and header.max_timestamp == 5_000_000
    assert crc_is_valid(data, position, header)
    log.close()


def test_follower_append_keeps_offsets_and_refuses_going_backwards(log):
    log.append_with_offsets(batch(3, base_offset=0, partition_leader_epoch=4))
    log.append_with_offsets(batch(2, base_offset=10, partition_leader_epoch=5))
    assert log.log_end_offset == 12
    assert spans(log.read(0, 10_000).records) == [(0, 2), (10, 11)]
    assert spans(log.read(5, 10_000).records) == [(10, 11)]
    assert log.end_offset_for_epoch(4) == (4, 10)
    with pytest.raises(NonMonotonicOffsetError):
        log.append_with_offsets(batch(1, base_offset=11))


def test_offset_for_timestamp_finds_the_first_record_at_or_after(log):
    for index in range(30):
        entries = [RecordInput(value=b"v", timestamp_ms=10_000 + 10 * index + delta) for delta in range(3)]
        log.append(build_batch(entries), leader_epoch=0)
    assert log.offset_for_timestamp(0) == (0, 10_000)
    assert log.offset_for_timestamp(10_001) == (1, 10_001)
    assert log.offset_for_timestamp(10_101) == (31, 10_101)
    assert log.offset_for_timestamp(10_105) == (33, 10_110)
    assert log.offset_for_timestamp(10_292) == (89, 10_292)
    assert log.offset_for_timestamp(10_293) is None
    assert log.max_timestamp_entry() == (89, 10_292)
    log.delete_records_before(31)
    assert log.offset_for_timestamp(0) == (31, 10_101)


def test_offset_for_timestamp_survives_reopen(tmp_path):
    log = PartitionLog.open(str(tmp_path), SMALL)
    fill(log, 40, start_ms=50_000)
    expected = [log.offset_for_timestamp(ts) for ts in range(49_999, 50_041)]
    log.close()
    log = PartitionLog.open(str(tmp_path), SMALL, clean_shutdown=True)
    assert [log.offset_for_timestamp(ts) for ts in range(49_999, 50_041)] == expected
    assert log.max_timestamp_entry() == (117, 50_039)
    log.close()


def test_truncate_to_removes_whole_batches_and_derived_state(log):
    fill(log, 30)
    log.append(batch(3), leader_epoch=2)
    log.high_watermark = 93
    log.truncate_to(91)
    assert log.log_end_offset == 90, "the batch holding offset 91 goes whole"
    assert log.high_watermark == 90
    assert log.end_offset_for_epoch(2) == (-1, -1)
    assert log.end_offset_for_epoch(1) == (1, 90)
    log.truncate_to(40)
    assert log.log_end_offset == 39
    assert spans(log.read(36, 10_000).records)[-1] == (36, 38)
    assert log.append(batch(1), leader_epoch=3).first_offset == 39
    assert all(segment.base_offset <= 39 for segment in log.segments)


def test_truncate_below_log_start_restarts_empty(log):
    fill(log, 5)
    log.delete_records_before(9)
    log.truncate_to(3)
    assert (log.log_start_offset, log.log_end_offset) == (3, 3)
    assert log.append(batch(1), leader_epoch=0).first_offset == 3


def test_delete_records_before_moves_log_start_and_drops_whole_segments(log):
    fill(log, 40)
    second_base = log.segments[1].base_offset
    assert log.delete_records_before(second_base + 1) == second_base + 1
    assert log.segments[0].base_offset == second_base
    assert not os.path.exists(os.path.join(log.directory, f"{0:020d}.log"))
    with pytest.raises(OffsetOutOfRangeError):
        log.delete_records_before(log.log_end_offset + 1)
    log.delete_records_before(log.log_end_offset)
    assert len(log.segments) == 1 and log.active_segment.size_bytes == 0
    assert log.read(log.log_end_offset, 100).records == b""


def test_flush_advances_the_recovery_point(log):
    fill(log, 3)
    assert log.recovery_point == 0
    log.flush()
    assert log.recovery_point == 9


def test_needs_flush_follows_flush_messages(tmp_path):
    log = PartitionLog.open(str(tmp_path), LogConfig(flush_messages=5))
    log.append(batch(3), leader_epoch=0)
    assert not log.needs_flush
    log.append(batch(3), leader_epoch=0)
    assert log.needs_flush
    log.flush()
    assert not log.needs_flush
    log.close()
