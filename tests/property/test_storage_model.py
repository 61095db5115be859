"""The log engine beside a plain model: a list of (first offset, last offset, tag) batches.

Rules append, read, reopen (clean, or after a process crash with a torn tail), truncate and
delete records; after every step the log's offsets must match the model. A failing run prints
the steps as Python calls that replay it.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from protocol.records import RecordInput, build_batch, crc_is_valid, decode_batch, iter_batches
from storage import LogConfig, OffsetOutOfRangeError, PartitionLog

CONFIG = LogConfig(segment_bytes=400, index_interval_bytes=64)


class LogModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="kraft-storage-model-")
        self.log = PartitionLog.open(self.directory, CONFIG)
        self.batches: list[tuple[int, int, bytes]] = []
        self.log_start_offset = 0
        self.next_tag = 0

    @property
    def log_end_offset(self) -> int:
        return self.batches[-1][1] + 1 if self.batches else self.log_start_offset

    def teardown(self) -> None:
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    @rule(count=st.integers(1, 4), value_bytes=st.integers(0, 120))
    def append(self, count: int, value_bytes: int) -> None:
        tag = b"%08d" % self.next_tag
        self.next_tag += 1
        entries = [RecordInput(key=tag, value=b"x" * value_bytes)] * count
        result = self.log.append(build_batch(entries, timestamp_ms=1_000 + self.next_tag), leader_epoch=1)
        assert result.first_offset == self.log_end_offset, f"expected {self.log_end_offset}, got {result}"
        self.batches.append((result.first_offset, result.last_offset, tag))

    @rule(data=st.data(), max_bytes=st.integers(1, 2_000))
    def read(self, data, max_bytes: int) -> None:
        offset = data.draw(st.integers(self.log_start_offset, self.log_end_offset), label="offset")
        records = self.log.read(offset, max_bytes).records
        expected = [batch for batch in self.batches if batch[1] >= offset]
        got = []
        for position, header in iter_batches(records):
            assert crc_is_valid(records, position, header)
            got.append((header.base_offset, header.last_offset, decode_batch(records, position)[1][0].key))
        assert got == expected[: len(got)], f"read({offset}) gave {got}, model has {expected}"
        if expected:
            assert got, f"read({offset}, {max_bytes}) returned nothing; min_one_message wants one batch"
        assert len(got) == 1 or len(records) <= max_bytes

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

    @rule(clean=st.booleans(), torn_bytes=st.integers(0, 70))
    def reopen(self, clean: bool, torn_bytes: int) -> None:
        if clean:
            self.log.close()
        elif torn_bytes:
            with open(self.log.active_segment.path, "ab") as file:
                file.write(bytes(range(torn_bytes)))
        self.log = PartitionLog.open(self.directory, CONFIG, clean_shutdown=clean,
                                     log_start_offset=self.log_start_offset,
                                     recovery_point=self.log.recovery_point if clean else 0)

    @precondition(lambda self: self.batches)
    @rule(data=st.data())
    def truncate(self, data) -> None:
        low = max(0, self.log_start_offset - 2)
        offset = data.draw(st.integers(low, self.log_end_offset), label="truncate_offset")
        self.log.truncate_to(offset)
        if offset >= self.log_end_offset:
            return
        if offset < self.log_start_offset:
            self.batches, self.log_start_offset = [], offset  # the log restarts empty there
        self.batches = [batch for batch in self.batches if batch[1] < offset]
        if self.batches and self.batches[-1][1] < self.log_start_offset:
            self.batches = []  # the batch holding ``offset`` straddled the log start

    @precondition(lambda self: self.batches)
    @rule(data=st.data())
    def delete_records(self, data) -> None:
        offset = data.draw(st.integers(self.log_start_offset, self.log_end_offset), label="delete_before")
        self.log.delete_records_before(offset)
        self.log_start_offset = max(self.log_start_offset, offset)

    @invariant()
    def offsets_match(self) -> None:
        assert self.log.log_end_offset == self.log_end_offset, (
            f"log end {self.log.log_end_offset}, model {self.log_end_offset}")
        assert self.log.log_start_offset == self.log_start_offset
        for segment in self.log.segments:
            assert os.path.getsize(segment.path) == segment.size_bytes


LogModel.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestLogModel = LogModel.TestCase
