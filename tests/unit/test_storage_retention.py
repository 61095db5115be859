"""Retention: whole segments by retention.ms / retention.bytes, never above the high
watermark, log start offset moved up; segment.ms roll; LogManager.apply_retention."""

from __future__ import annotations

import dataclasses

import pytest

from protocol.records import RecordInput, build_batch
from storage import LogConfig, LogManager, PartitionLog

DAY_MS = 24 * 3600 * 1000
BASE = LogConfig(segment_bytes=350, index_interval_bytes=64, retention_ms=DAY_MS)


class FakeClock:
    def __init__(self, now_ms: int = 10 * DAY_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def batch(timestamp_ms: int, value_bytes: int = 90) -> bytes:
    return build_batch([RecordInput(key=b"k", value=b"v" * value_bytes)], timestamp_ms=timestamp_ms)


def open_log(tmp_path, config: LogConfig = BASE, clock: FakeClock | None = None) -> PartitionLog:
    return PartitionLog.open(str(tmp_path), config, clock=clock or FakeClock())


def fill(log: PartitionLog, timestamps: list[int]) -> None:
    for timestamp in timestamps:
        log.append(batch(timestamp), leader_epoch=0)
    log.high_watermark = log.log_end_offset


def bases(log: PartitionLog) -> list[int]:
    return [segment.base_offset for segment in log.segments]


def test_time_retention_deletes_old_segments_and_moves_the_log_start(tmp_path):
    clock = FakeClock()
    log = open_log(tmp_path, clock=clock)
    now = clock.now_ms
    # Two batches per 300-byte segment: segments [0,1] [2,3] [4,5] [6].
    fill(log, [now - 3 * DAY_MS, now - 3 * DAY_MS, now - 2 * DAY_MS, now - 2 * DAY_MS, now, now, now])
    assert bases(log) == [0, 2, 4, 6], "expected two 161-byte batches per 350-byte segment"
    assert log.apply_retention(now) == 2
    assert bases(log) == [4, 6]
    assert log.log_start_offset == 4
    assert log.read(4, 10_000).records, "the newest data stays readable"
    assert log.apply_retention(now) == 0, "a second pass finds nothing more"
    log.close()


def test_time_retention_stops_at_the_first_young_segment(tmp_path):
    clock = FakeClock()
    log = open_log(tmp_path, clock=clock)
    now = clock.now_ms
    fill(log, [now - 3 * DAY_MS, now - 3 * DAY_MS, now, now, now - 3 * DAY_MS, now - 3 * DAY_MS, now])
    assert log.apply_retention(now) == 1, "only the prefix of old segments goes"
    assert bases(log) == [2, 4, 6]
    log.close()


def test_nothing_at_or_above_the_high_watermark_is_deleted(tmp_path):
    clock = FakeClock()
    log = open_log(tmp_path, clock=clock)
    old = clock.now_ms - 3 * DAY_MS
    fill(log, [old] * 7)
    log.high_watermark = 3
    assert log.apply_retention() == 1, "segment [2,3] reaches offset 3, not yet committed"
    assert log.log_start_offset == 2
    log.high_watermark = log.log_end_offset
    assert log.apply_retention() == 3, "the expired non-empty active segment rolls and goes too"
    assert log.log_start_offset == log.log_end_offset == 7
    assert log.active_segment.size_bytes == 0
    assert log.apply_retention() == 0, "an empty active segment is never deleted"
    assert log.append(batch(clock.now_ms), leader_epoch=0).first_offset == 7
    log.close()


def test_size_retention_keeps_the_log_at_or_above_the_limit(tmp_path):
    config = dataclasses.replace(BASE, retention_ms=-1, retention_bytes=700)
    log = open_log(tmp_path, config)
    fill(log, [1_000] * 7)  # 4 segments: 322, 322, 322, 161 bytes = 1127
    assert log.apply_retention() == 1, "1127 - 322 = 805 >= 700, but 805 - 322 < 700"
    assert log.size_bytes == 805
    assert log.log_start_offset == 2
    log.close()


def test_compact_only_topics_ignore_time_and_size_retention(tmp_path):
    config = dataclasses.replace(BASE, retention_bytes=0, cleanup_policy="compact")
    log = open_log(tmp_path, config)
    fill(log, [1_000] * 7)
    assert log.apply_retention() == 0
    log.config = dataclasses.replace(config, cleanup_policy="compact,delete")
    assert log.apply_retention() == 4
    log.close()


def test_retention_survives_a_reopen(tmp_path):
    clock = FakeClock()
    log = open_log(tmp_path, clock=clock)
    old = clock.now_ms - 3 * DAY_MS
    fill(log, [old, old, old, old, clock.now_ms])
    log.apply_retention()
    start = log.log_start_offset
    log.close()
    reopened = PartitionLog.open(str(tmp_path), BASE, clock=clock, clean_shutdown=True, high_watermark=5)
    assert reopened.log_start_offset == start == 4, "the first segment's base offset bounds the log start"
    reopened.close()


def test_segment_ms_rolls_by_the_first_batch_timestamp(tmp_path):
    config = dataclasses.replace(BASE, segment_bytes=1_000_000, segment_ms=60_000)
    log = open_log(tmp_path, config)
    for timestamp in (0, 30_000, 60_000, 60_001, 61_000, 120_002):
        log.append(batch(timestamp, value_bytes=1), leader_epoch=0)
    assert bases(log) == [0, 3, 5], "rolls when a batch is more than segment.ms after the first"
    log.close()


def test_a_config_change_reaches_existing_segments(tmp_path):
    log = open_log(tmp_path, dataclasses.replace(BASE, segment_bytes=1_000_000))
    fill(log, [1_000] * 3)
    assert len(log.segments) == 1
    log.config = BASE
    fill(log, [1_000] * 2)
    assert len(log.segments) == 2, "the new segment.bytes applies to the active segment"
    log.close()


def test_log_manager_applies_retention_and_keeps_topic_configs_after_restart(tmp_path):
    clock = FakeClock()
    manager = LogManager([str(tmp_path)], LogConfig(), clock=clock)
    log = manager.get_or_create("t", 0, config=BASE)
    fill(log, [clock.now_ms - 3 * DAY_MS] * 4 + [clock.now_ms])
    manager.close()
    manager = LogManager([str(tmp_path)], LogConfig(), clock=clock)
    manager.load_all()
    log = manager.get_or_create("t", 0, config=BASE)
    assert log.config == BASE, "the broker's topic config replaces the default a loaded log starts with"
    assert manager.apply_retention() == 2
    assert log.log_start_offset == 4
    manager.close()


@pytest.mark.parametrize("policy", ["delete", "compact,delete"])
def test_retention_applies_with_delete_in_the_policy(tmp_path, policy):
    config = dataclasses.replace(BASE, cleanup_policy=policy, retention_bytes=0, retention_ms=-1)
    log = open_log(tmp_path, config)
    fill(log, [1_000] * 5)
    assert log.apply_retention() == 3
    assert log.log_start_offset == log.log_end_offset
    log.close()
