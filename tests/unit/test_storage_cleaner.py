"""Compaction: the latest record per key survives with its offset, tombstones go after
delete.retention.ms, the dirty ratio and compaction lag are honoured, aborted transactions go,
control batches and producers' last batches stay, and a crash mid-clean recovers."""

from __future__ import annotations

import dataclasses
import os
import struct

import pytest

from protocol.records import RecordInput, build_batch, decode_batch, iter_batches
from storage import LogConfig, LogManager, PartitionLog
from storage.cleaner import CLEANER_OFFSET_CHECKPOINT, clean_log

NOW_MS = 10 * 86_400_000
COMPACT = LogConfig(segment_bytes=300, index_interval_bytes=64, cleanup_policy="compact",
                    min_cleanable_dirty_ratio=0.0, delete_retention_ms=1_000)


def record_batch(pairs: list[tuple[bytes | None, bytes | None]], timestamp_ms: int = NOW_MS - 60_000, **kwargs) -> bytes:
    return build_batch([RecordInput(key=key, value=value) for key, value in pairs], timestamp_ms=timestamp_ms, **kwargs)


def open_log(path, config: LogConfig = COMPACT) -> PartitionLog:
    return PartitionLog.open(str(path), config, clock=lambda: NOW_MS)


def append_all(log: PartitionLog, pairs: list[tuple[bytes | None, bytes | None]]) -> None:
    for pair in pairs:
        log.append(record_batch([pair]), leader_epoch=0)
    log.high_watermark = log.log_end_offset


def contents(log: PartitionLog) -> list[tuple[int, bytes | None, bytes | None]]:
    """Every record from the log start, as (offset, key, value)."""
    result, offset = [], log.log_start_offset
    while offset < log.log_end_offset:
        data = log.read(offset, 1 << 20).records
        if not data:
            break
        for position, header in iter_batches(data):
            result.extend((r.offset, r.key, r.value) for r in decode_batch(data, position)[1])
            offset = header.next_offset
    return result


def latest_per_key(records, below: int) -> dict:
    latest = {}
    for offset, key, value in records:
        if offset < below:
            latest[key] = (offset, key, value)
    return latest


def test_the_latest_record_per_key_survives_with_its_offset(tmp_path):
    log = open_log(tmp_path)
    pairs = [(b"k%d" % (index % 3), b"v%d" % index) for index in range(20)]
    append_all(log, pairs)
    before = contents(log)
    active_base = log.active_segment.base_offset
    segments_before = len(log.segments)
    result = clean_log(log, 0, NOW_MS)
    assert result is not None and result.first_dirty_offset == active_base
    after = contents(log)
    kept_below = [r for r in after if r[0] < active_base]
    assert sorted(kept_below) == sorted(latest_per_key(before, active_base).values()), after
    assert [r for r in after if r[0] >= active_base] == [r for r in before if r[0] >= active_base]
    assert len(log.segments) <= segments_before, "groups are planned by size before cleaning"
    assert log.log_end_offset == 20 and log.log_start_offset == 0
    offsets = [r[0] for r in after]
    assert offsets == sorted(offsets), "offsets stay monotonic"
    assert clean_log(log, result.first_dirty_offset, NOW_MS) is None, "nothing new is dirty"
    log.close()
    reopened = open_log(tmp_path)
    assert contents(reopened) == after, "a cleaned log reopens (and recovers) to the same records"
    reopened.close()


def test_reads_from_a_removed_offset_start_at_the_next_record(tmp_path):
    log = open_log(tmp_path)
    append_all(log, [(b"a", b"1"), (b"a", b"2"), (b"b", b"3"), (b"a", b"4")] * 3)
    clean_log(log, 0, NOW_MS)
    first = contents(log)[0]
    data = log.read(0, 1 << 20).records
    header = next(iter_batches(data))[1]
    assert header.last_offset >= first[0] > 0 or first[0] == 0
    log.close()


def test_tombstones_survive_one_cleaning_then_go_after_delete_retention(tmp_path):
    log = open_log(tmp_path)
    append_all(log, [(b"a", b"1"), (b"b", b"2"), (b"a", None)] + [(b"x%d" % i, b"y") for i in range(8)])
    first = clean_log(log, 0, NOW_MS)
    assert (2, b"a", None) in contents(log), "a new tombstone stays for consumers to see"
    append_all(log, [(b"z%d" % i, b"y") for i in range(6)])
    second = clean_log(log, first.first_dirty_offset, NOW_MS)
    assert second is not None
    assert all(key != b"a" for _, key, _ in contents(log)), "the tombstone went after delete.retention.ms"
    assert (1, b"b", b"2") in contents(log)
    log.close()


def test_min_cleanable_dirty_ratio_and_min_compaction_lag(tmp_path):
    log = open_log(tmp_path, dataclasses.replace(COMPACT, min_cleanable_dirty_ratio=0.99))
    append_all(log, [(b"k", b"v")] * 10)
    first = clean_log(log, 0, NOW_MS)
    assert first is not None, "everything is dirty at first: ratio 1.0"
    append_all(log, [(b"k", b"v")] * 2)
    assert clean_log(log, first.first_dirty_offset, NOW_MS) is None, "a little dirt is below the ratio"
    log.config = dataclasses.replace(COMPACT, min_compaction_lag_ms=120_000)
    assert clean_log(log, first.first_dirty_offset, NOW_MS) is None, "records a minute old are too young"
    log.close()


def test_compaction_stops_at_the_high_watermark(tmp_path):
    log = open_log(tmp_path)
    append_all(log, [(b"k", b"v%d" % i) for i in range(10)])
    log.high_watermark = 5
    result = clean_log(log, 0, NOW_MS)
    assert result is not None and result.first_dirty_offset == 4, "only the segment [0, 3] is committed"
    assert [r[0] for r in contents(log)] == [3] + list(range(4, 10))
    log.close()


def test_an_idempotent_producers_last_batch_stays_empty(tmp_path):
    log = open_log(tmp_path)
    log.append(record_batch([(b"k", b"old")], producer_id=7, producer_epoch=0, base_sequence=0), leader_epoch=0)
    append_all(log, [(b"k", b"new%d" % i) for i in range(6)])
    clean_log(log, 0, NOW_MS)
    data = log.read(0, 1 << 20).records
    first = next(iter_batches(data))[1]
    assert (first.base_offset, first.records_count, first.producer_id, first.base_sequence) == (0, 0, 7, 0)
    assert log.producer_state.entry(7).last_sequence == 0
    log.close()


def control_batch(offset: int, producer_id: int, abort: bool) -> bytes:
    key = struct.pack(">hh", 0, 0 if abort else 1)
    return build_batch([RecordInput(key=key, value=struct.pack(">hi", 0, 0))], base_offset=offset,
                       timestamp_ms=NOW_MS - 60_000, producer_id=producer_id, producer_epoch=0,
                       is_transactional=True, is_control=True)


def test_aborted_transactions_go_and_control_batches_stay(tmp_path):
    log = open_log(tmp_path)
    batches = [
        build_batch([RecordInput(key=b"t", value=b"aborted")], base_offset=0, timestamp_ms=NOW_MS - 60_000,
                    producer_id=5, producer_epoch=0, base_sequence=0, is_transactional=True),
        control_batch(1, 5, abort=True),
        build_batch([RecordInput(key=b"u", value=b"committed")], base_offset=2, timestamp_ms=NOW_MS - 60_000,
                    producer_id=6, producer_epoch=0, base_sequence=0, is_transactional=True),
        control_batch(3, 6, abort=False),
    ]
    for batch in batches:
        log.append_with_offsets(batch)
    append_all(log, [(b"x%d" % i, b"y") for i in range(6)])
    clean_log(log, 0, NOW_MS)
    records = contents(log)
    assert (0, b"t", b"aborted") not in records
    assert (2, b"u", b"committed") in records
    headers = [location.header for segment in log.segments for location in segment.batches()]
    assert [h.base_offset for h in headers if h.is_control] == [1, 3]
    log.close()


def test_an_open_transaction_bounds_the_cleanable_range(tmp_path):
    log = open_log(tmp_path)
    append_all(log, [(b"k", b"1"), (b"k", b"2")])
    log.append_with_offsets(build_batch([RecordInput(key=b"k", value=b"txn")], base_offset=2,
                                        timestamp_ms=NOW_MS - 60_000, producer_id=9, producer_epoch=0,
                                        base_sequence=0, is_transactional=True))
    append_all(log, [(b"k", b"v%d" % i) for i in range(8)])
    result = clean_log(log, 0, NOW_MS)
    assert result is None or result.first_dirty_offset <= 2
    assert (2, b"k", b"txn") in contents(log)
    log.close()


@pytest.mark.parametrize("crash_at", ["cleaned", "swap"])
def test_a_crash_mid_clean_recovers_a_valid_log(tmp_path, monkeypatch, crash_at):
    log = open_log(tmp_path)
    append_all(log, [(b"k%d" % (i % 2), b"v%d" % i) for i in range(12)])
    before = contents(log)

    class Crash(Exception):
        pass

    def crash(*args, **kwargs):
        raise Crash

    if crash_at == "cleaned":
        monkeypatch.setattr("storage.segment.LogSegment.rename_temp_suffix", crash)
    else:
        monkeypatch.setattr(PartitionLog, "replace_segments", crash)
    with pytest.raises(Crash):
        clean_log(log, 0, NOW_MS)
    monkeypatch.undo()
    names = os.listdir(tmp_path)
    assert any(name.endswith(".log." + crash_at) for name in names), names
    reopened = PartitionLog.open(str(tmp_path), COMPACT, clock=lambda: NOW_MS)
    names = os.listdir(tmp_path)
    assert not any(name.endswith((".cleaned", ".swap")) for name in names), names
    after = contents(reopened)
    if crash_at == "cleaned":
        assert after == before, "an unfinished .cleaned file is dropped"
    else:
        assert set(after) <= set(before) and len(after) < len(before), "a complete .swap is finished"
        assert latest_per_key(after, 99) == latest_per_key(before, 99), "the latest record per key stays"
        offsets = [r[0] for r in after]
        assert offsets == sorted(set(offsets))
    reopened.close()


def test_log_manager_cleans_compacted_topics_and_checkpoints(tmp_path):
    manager = LogManager([str(tmp_path)], LogConfig(), clock=lambda: NOW_MS)
    compacted = manager.get_or_create("c", 0, config=COMPACT)
    plain = manager.get_or_create("d", 0, config=dataclasses.replace(COMPACT, cleanup_policy="delete"))
    append_all(compacted, [(b"k", b"v%d" % i) for i in range(10)])
    append_all(plain, [(b"k", b"v%d" % i) for i in range(10)])
    assert manager.clean_compacted() == 1
    assert len(contents(plain)) == 10
    first_dirty = manager.first_dirty_offset("c", 0)
    with open(tmp_path / CLEANER_OFFSET_CHECKPOINT) as handle:
        assert handle.read() == f"0\n1\nc 0 {first_dirty}\n"
    manager.close()
    manager = LogManager([str(tmp_path)], LogConfig(), clock=lambda: NOW_MS)
    manager.load_all({"c": COMPACT})
    assert manager.first_dirty_offset("c", 0) == first_dirty
    manager.close()
