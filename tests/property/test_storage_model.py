"""The log engine beside a plain model, on a simulated disk (storage.sim_fs).

The model is the list of visible records ``(offset, key, value)`` plus the log start and end
offsets. Rules: append, read at any offset, flush, roll, truncate, DeleteRecords, retention
(by time and by size), compaction, clean reopen, and power loss that drops everything not
fsynced (profile ``lose``) or, in a second machine, tears the last write (``torn``).

Invariants after every step: the log's offsets match the model; what is read equals the
model's records from the batch read on; offsets rise strictly, and are contiguous until
compaction makes gaps; every index entry points at a batch that ends at its offset; each
segment's size equals its file's. A failing run prints its steps as Python calls.
"""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from protocol.records import RecordInput, build_batch, decode_batch, iter_batches, read_header
from storage import LogConfig, OffsetOutOfRangeError, PartitionLog
from storage.cleaner import clean_log
from storage.sim_fs import SimFileSystem

DIRECTORY = "/data/topic-0"
RETENTION_MS = 1_000_000
CONFIG = LogConfig(segment_bytes=400, index_interval_bytes=64, cleanup_policy="compact,delete",
                   retention_ms=RETENTION_MS, min_cleanable_dirty_ratio=0.0, delete_retention_ms=5_000)
KEYS = [b"k%d" % index for index in range(4)]
Entry = tuple[int, bytes, "bytes | None"]


class LogModel(RuleBasedStateMachine):
    crash_profile = "lose"

    def __init__(self) -> None:
        super().__init__()
        self.fs = SimFileSystem(seed=0)
        self.fs.make_directory(DIRECTORY)
        self.now_ms = 10 * RETENTION_MS
        self.log = self._open()
        self.records: list[Entry] = []
        self.log_start_offset = 0
        self.log_end_offset = 0
        self.first_dirty_offset = 0
        self.compacted = False

    def _open(self, **kwargs) -> PartitionLog:
        return PartitionLog.open(DIRECTORY, CONFIG, self.fs, clock=lambda: self.now_ms, **kwargs)

    def teardown(self) -> None:
        self.log.close(flush=False)

    def _drop_below(self, offset: int) -> None:
        self.records = [entry for entry in self.records if entry[0] >= offset]

    # ----- rules ------------------------------------------------------------------------------

    @rule(entries=st.lists(st.tuples(st.sampled_from(KEYS), st.one_of(st.none(), st.binary(max_size=60))),
                           min_size=1, max_size=4),
          age_ms=st.integers(0, 2 * RETENTION_MS))
    def append(self, entries, age_ms: int) -> None:
        batch = build_batch([RecordInput(key=key, value=value) for key, value in entries],
                            timestamp_ms=self.now_ms - age_ms)
        result = self.log.append(batch, leader_epoch=1)
        assert result.first_offset == self.log_end_offset, f"expected {self.log_end_offset}, got {result}"
        self.records += [(result.first_offset + index, key, value) for index, (key, value) in enumerate(entries)]
        self.log_end_offset = result.last_offset + 1
        self.log.high_watermark = self.log_end_offset

    @rule(data=st.data(), max_bytes=st.integers(1, 2_000))
    def read(self, data, max_bytes: int) -> None:
        offset = data.draw(st.integers(self.log_start_offset, self.log_end_offset), label="offset")
        records = self.log.read(offset, max_bytes).records
        expected_after = [entry for entry in self.records if entry[0] >= offset]
        if not records:
            assert not expected_after, f"read({offset}) returned nothing, the model has {expected_after[:3]}"
            return
        first = read_header(records)
        assert first.last_offset >= offset, f"read({offset}) began with a batch ending at {first.last_offset}"
        got = [(r.offset, r.key, r.value) for position, _ in iter_batches(records)
               for r in decode_batch(records, position)[1] if r.offset >= self.log_start_offset]
        expected = [entry for entry in self.records if entry[0] >= min(first.base_offset, offset)]
        assert got == expected[: len(got)], f"read({offset}) gave {got}, the model has {expected}"

    @rule(offset=st.integers(-3, 3))
    def read_out_of_range(self, offset: int) -> None:
        target = self.log_start_offset - 1 if offset < 0 else self.log_end_offset + 1 + offset
        try:
            self.log.read(target, 100)
        except OffsetOutOfRangeError:
            return
        raise AssertionError(f"read({target}) outside [{self.log_start_offset}, {self.log_end_offset}] did not raise")

    @rule()
    def flush(self) -> None:
        self.log.flush()

    @rule()
    def roll(self) -> None:
        self.log.roll()

    @rule()
    def reopen_clean(self) -> None:
        recovery_point = self.log.log_end_offset
        self.log.close()
        self.log = self._open(clean_shutdown=True, recovery_point=recovery_point,
                              log_start_offset=self.log_start_offset, high_watermark=self.log_end_offset)

    @rule()
    def crash(self) -> None:
        """Power loss: everything below the recovery point must survive, then some prefix."""
        durable_end = self.log.recovery_point
        self.fs.crash(self.crash_profile)
        self.log = self._open(recovery_point=durable_end, log_start_offset=self.log_start_offset,
                              high_watermark=self.log_end_offset)
        end = self.log.log_end_offset
        assert durable_end <= end <= self.log_end_offset, (
            f"after a crash the log ends at {end}; flushed up to {durable_end}, model end {self.log_end_offset}")
        if end < self.log_end_offset:
            self.records = [entry for entry in self.records if entry[0] < end]
            self.log_end_offset = end
        self.log_start_offset = max(self.log_start_offset, self.log.log_start_offset)
        self._drop_below(self.log_start_offset)
        self.log.high_watermark = self.log_end_offset

    @precondition(lambda self: self.log_end_offset > self.log_start_offset)
    @rule(data=st.data())
    def truncate(self, data) -> None:
        offset = data.draw(st.integers(max(0, self.log_start_offset - 2), self.log_end_offset), label="truncate_to")
        self.log.truncate_to(offset)
        end = self.log.log_end_offset
        if offset < self.log_start_offset:
            assert (self.log.log_start_offset, end) == (offset, offset), "below the start the log restarts"
            self.records, self.log_start_offset = [], offset
        else:
            assert end <= offset or offset >= self.log_end_offset, f"truncate_to({offset}) left the end at {end}"
            self.records = [entry for entry in self.records if entry[0] < end]
            self.log_start_offset = self.log.log_start_offset
        self.log_end_offset = end
        self.first_dirty_offset = min(self.first_dirty_offset, end)
        self.log.high_watermark = end

    @precondition(lambda self: self.log_end_offset > self.log_start_offset)
    @rule(data=st.data())
    def delete_records(self, data) -> None:
        offset = data.draw(st.integers(self.log_start_offset, self.log_end_offset), label="delete_before")
        self.log.delete_records_before(offset)
        self.log_start_offset = max(self.log_start_offset, offset)
        self._drop_below(self.log_start_offset)

    @rule(advance_ms=st.sampled_from([0, RETENTION_MS // 2, 2 * RETENTION_MS]))
    def retention_by_time(self, advance_ms: int) -> None:
        self.now_ms += advance_ms
        segments = self.log.segments
        expected = self.log_start_offset
        for index, segment in enumerate(segments):
            upper = segments[index + 1].base_offset if index + 1 < len(segments) else self.log_end_offset
            largest = segment.max_timestamp_ms if segment.max_timestamp_ms >= 0 else segment.created_ms
            if segment.size_bytes == 0 or upper > self.log.high_watermark or \
                    self.now_ms - largest <= RETENTION_MS:
                break
            expected = max(expected, upper)
        self.log.apply_retention()
        assert self.log.log_start_offset == expected, f"retention moved the start to {self.log.log_start_offset}, expected {expected}"
        self.log_start_offset = expected
        self._drop_below(expected)

    @rule(limit_bytes=st.integers(0, 2_000))
    def retention_by_size(self, limit_bytes: int) -> None:
        self.log.config = dataclasses.replace(CONFIG, retention_ms=-1, retention_bytes=limit_bytes)
        before = self.log.size_bytes
        self.log.apply_retention()
        self.log.config = CONFIG
        start = self.log.log_start_offset
        assert start >= self.log_start_offset and (self.log.size_bytes >= limit_bytes or before < limit_bytes or
                                                   start == self.log_end_offset), "size retention went too far"
        assert start <= self.log.high_watermark
        self.log_start_offset = start
        self._drop_below(start)

    @rule(advance_ms=st.sampled_from([0, 10_000]))
    def compact(self, advance_ms: int) -> None:
        self.now_ms += advance_ms
        result = clean_log(self.log, self.first_dirty_offset, self.now_ms)
        if result is None:
            return
        cleaned_below = result.first_dirty_offset
        before = [entry for entry in self.records if entry[0] < cleaned_below]
        latest = {key: entry for entry in before for key in [entry[1]]}
        after = [entry for entry in self._read_all() if entry[0] < cleaned_below]
        assert set(after) <= set(before), f"compaction invented records: {set(after) - set(before)}"
        for entry in after:
            assert latest[entry[1]] == entry, f"{entry} survived although {latest[entry[1]]} supersedes it"
        for entry in latest.values():
            assert entry in after or entry[2] is None, f"the latest record {entry} of its key was removed"
        self.records = after + [entry for entry in self.records if entry[0] >= cleaned_below]
        self.first_dirty_offset = cleaned_below
        self.compacted = True

    def _read_all(self) -> list[Entry]:
        result, offset = [], self.log_start_offset
        while offset < self.log_end_offset:
            records = self.log.read(offset, 1 << 20).records
            if not records:
                break
            for position, header in iter_batches(records):
                result += [(r.offset, r.key, r.value) for r in decode_batch(records, position)[1]
                           if r.offset >= self.log_start_offset]
                offset = header.next_offset
        return result

    # ----- invariants -------------------------------------------------------------------------

    @invariant()
    def offsets_match(self) -> None:
        assert self.log.log_end_offset == self.log_end_offset, (
            f"log end {self.log.log_end_offset}, model {self.log_end_offset}")
        assert self.log.log_start_offset == self.log_start_offset, (
            f"log start {self.log.log_start_offset}, model {self.log_start_offset}")
        offsets = [entry[0] for entry in self.records]
        assert offsets == sorted(set(offsets)), "offsets rise strictly"
        if not self.compacted and offsets:
            assert offsets == list(range(self.log_start_offset, self.log_end_offset)), "offsets are contiguous"

    @invariant()
    def indexes_agree_with_the_log(self) -> None:
        for segment in self.log.segments:
            assert len(self.fs.file_bytes(segment.path)) == segment.size_bytes, segment.path
            for offset, position in segment.offset_index.entries():
                header = read_header(segment.read_bytes(position, 61))
                assert header.last_offset == offset, f"{segment.path}: index ({offset}, {position}) -> {header}"
            previous = -1
            for timestamp, offset in segment.time_index.entries():
                assert previous < offset < segment.next_offset and timestamp <= segment.max_timestamp_ms
                previous = offset


class TornWriteModel(LogModel):
    crash_profile = "torn"


MODEL_SETTINGS = settings(max_examples=60, stateful_step_count=30, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
LogModel.TestCase.settings = MODEL_SETTINGS
TornWriteModel.TestCase.settings = MODEL_SETTINGS
TestLogModel = LogModel.TestCase
TestTornWriteModel = TornWriteModel.TestCase
