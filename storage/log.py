"""A partition's log: an ordered list of segments, the last one active, plus the state that is
derived from it (leader-epoch cache, producer state) and the offsets the broker tracks.

Offsets: ``log_start_offset`` <= ``high_watermark`` <= ``log_end_offset`` (LEO, the next offset
to assign); ``recovery_point`` is the offset below which everything is fsynced.

Threading: a PartitionLog is not thread-safe. The broker serialises calls per partition (for
example by running ``flush`` in a worker thread while holding the partition's lock).
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass

from protocol.records import (
    TIMESTAMP_LOG_APPEND_TIME,
    BatchHeader,
    CorruptRecordError,
    InvalidRecordError,
    decode_batch,
    read_header,
    stamp_batch,
    stamp_log_append_time,
    validate_batches,
)
from storage.config import LogConfig
from storage.errors import NonMonotonicOffsetError, OffsetOutOfRangeError, RecordTooLargeError, StorageError
from storage.fs import REAL_FILE_SYSTEM, FileSystem
from storage.leader_epoch import LeaderEpochCache
from storage.log_loader import list_directory, open_segments, remove_leftovers
from storage.producer_state import ProducerStateManager
from storage.retention import count_below_log_start, count_by_size, count_by_time
from storage.segment import NO_TIMESTAMP, BatchLocation, LogSegment


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Offsets given to an append. ``log_append_time_ms`` is -1 unless the topic uses
    LogAppendTime. ``duplicate`` means an idempotent retry: nothing was written and the offsets
    are those of the original batch."""

    first_offset: int
    last_offset: int
    max_timestamp_ms: int
    offset_of_max_timestamp: int
    log_append_time_ms: int
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Whole batches as stored. ``path``/``position``/``length`` locate the same bytes in a
    segment file for ``os.sendfile`` (``path`` is None when nothing was read)."""

    records: bytes
    path: str | None
    position: int
    length: int
    log_start_offset: int
    log_end_offset: int
    high_watermark: int


class PartitionLog:
    def __init__(self, directory: str, config: LogConfig, fs: FileSystem, clock: Callable[[], int]) -> None:
        self.directory = directory
        self._config = config
        self._fs = fs
        self._clock = clock
        self._segments: list[LogSegment] = []
        self.log_start_offset = 0
        self.recovery_point = 0
        self._high_watermark = 0
        self.last_flush_ms = clock()
        self.offline_error: str | None = None
        # Called once with the reason when an I/O error takes this log offline; the LogManager
        # uses it to take the whole log directory offline, as Kafka's LogDirFailureChannel does.
        self.on_offline: Callable[[str], None] | None = None
        self.leader_epoch_cache = LeaderEpochCache(fs, directory)
        self.producer_state = ProducerStateManager(fs, directory)

    @classmethod
    def open(cls, directory: str, config: LogConfig, fs: FileSystem = REAL_FILE_SYSTEM, *,
             recovery_point: int = 0, log_start_offset: int = 0, high_watermark: int = 0,
             clean_shutdown: bool = False, clock: Callable[[], int] = wall_clock_ms) -> PartitionLog:
        """Open (creating if empty) and recover the log in ``directory``; see storage.log_loader."""
        log = cls(directory, config, fs, clock)
        bases = remove_leftovers(fs, directory, list_directory(fs, directory))
        cache, cache_ok = LeaderEpochCache.load(fs, directory)
        log.leader_epoch_cache = cache

        def on_recovered_batch(header: BatchHeader) -> None:
            cache.assign(header.partition_leader_epoch, header.base_offset, persist=False)

        loaded = open_segments(fs, directory, bases, config, clock(), recovery_point=recovery_point,
                               clean_shutdown=clean_shutdown, on_recovered_batch=on_recovered_batch)
        log._segments = loaded.segments or [LogSegment.create(fs, directory, log_start_offset, config, clock())]
        if log.log_end_offset < log_start_offset:
            # A crash lost data up to a log start that was checkpointed (DeleteRecords): restart
            # there rather than hand out offsets that were already deleted again.
            log._restart_at(log_start_offset)
        end = log.log_end_offset
        log.log_start_offset = min(max(log_start_offset, log._segments[0].base_offset), end)
        log.recovery_point = min(recovery_point, end)
        log._high_watermark = min(max(high_watermark, log.log_start_offset), end)
        if not cache_ok:
            log._rebuild_leader_epoch_cache()
        cache.truncate_from_end(end)
        cache.truncate_from_start(log.log_start_offset)
        cache.persist()
        log._reload_producer_state()
        return log

    @property
    def config(self) -> LogConfig:
        return self._config

    @config.setter
    def config(self, config: LogConfig) -> None:
        """A topic config change applies to every segment (roll and index rules) at once."""
        self._config = config
        for segment in self._segments:
            segment.config = config

    # ----- offsets and segments -------------------------------------------------------------

    @property
    def log_end_offset(self) -> int:
        return self._segments[-1].next_offset

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    @high_watermark.setter
    def high_watermark(self, offset: int) -> None:
        """Set by the broker; clamped into [log_start_offset, log_end_offset]."""
        self._high_watermark = min(max(offset, self.log_start_offset), self.log_end_offset)

    @property
    def active_segment(self) -> LogSegment:
        return self._segments[-1]

    @property
    def segments(self) -> list[LogSegment]:
        return list(self._segments)

    @property
    def size_bytes(self) -> int:
        return sum(segment.size_bytes for segment in self._segments)

    @property
    def needs_flush(self) -> bool:
        """flush.messages or flush.ms is due; the broker then calls ``flush`` off its event loop."""
        unflushed = self.log_end_offset - self.recovery_point
        return unflushed > 0 and not self.is_offline and (unflushed >= self.config.flush_messages
                                  or self._clock() - self.last_flush_ms >= self.config.flush_ms)

    # ----- appending --------------------------------------------------------------------------

    def append(self, records: bytes | bytearray, *, leader_epoch: int) -> AppendResult:
        """Append a producer's batches as leader: validate, check producer sequences, assign
        offsets from the log end (and LogAppendTime if configured), write, index."""
        batches = self._validate(records)
        for position, header in batches:
            if header.size_bytes > self.config.max_message_bytes:
                raise RecordTooLargeError(
                    f"batch of {header.size_bytes} bytes exceeds max.message.bytes {self.config.max_message_bytes}")
        producer_append = self.producer_state.begin_append()
        next_offset = self.log_end_offset
        for _, header in batches:
            duplicate = producer_append.check(header, next_offset)
            if duplicate is not None:
                return AppendResult(duplicate.first_offset, duplicate.last_offset, duplicate.timestamp_ms,
                                    duplicate.last_offset, NO_TIMESTAMP, duplicate=True)
            next_offset += header.last_offset_delta + 1
        buffer = bytearray(records)
        append_time_ms = self._clock() if self.config.uses_log_append_time else NO_TIMESTAMP
        stamped = []
        next_offset = self.log_end_offset
        for position, header in batches:
            stamp_batch(buffer, position, next_offset, leader_epoch)
            if append_time_ms != NO_TIMESTAMP:
                stamp_log_append_time(buffer, position, append_time_ms)
            stamped.append(BatchLocation(position, read_header(buffer, position)))
            next_offset += header.last_offset_delta + 1
        result = self._write(buffer, stamped, append_time_ms)
        self.producer_state.commit(producer_append)
        return result

    def append_with_offsets(self, records: bytes | bytearray) -> AppendResult:
        """Append batches that already carry offsets and leader epochs (a follower copying its
        leader). Offsets must rise from the log end; gaps are allowed, as after compaction."""
        batches = self._validate(records)
        expected = self.log_end_offset
        for position, header in batches:
            if header.base_offset < expected:
                raise NonMonotonicOffsetError(
                    f"batch at byte {position} starts at offset {header.base_offset}, expected at least {expected}")
            expected = header.next_offset
        locations = [BatchLocation(position, header) for position, header in batches]
        result = self._write(records, locations, NO_TIMESTAMP)
        for location in locations:
            self.producer_state.replay(location.header)
        return result

    append_as_follower = append_with_offsets

    @staticmethod
    def _validate(records: bytes | bytearray) -> list[tuple[int, BatchHeader]]:
        batches = validate_batches(records)
        if not batches:
            raise InvalidRecordError("an append must hold at least one record batch")
        return batches

    def _check_online(self) -> None:
        if self.offline_error is not None:
            raise StorageError(f"log is offline after an I/O error: {self.offline_error}")

    @property
    def is_offline(self) -> bool:
        return self.offline_error is not None

    def take_offline(self, reason: str) -> None:
        """From now on every append, read and flush fails with StorageError, until a restart
        recovers the log from the disk. Idempotent; the first reason is kept."""
        if self.offline_error is not None:
            return
        self.offline_error = reason
        if self.on_offline is not None:
            self.on_offline(reason)

    def _write(self, data: bytes | bytearray, batches: list[BatchLocation], append_time_ms: int) -> AppendResult:
        first, last = batches[0].header, batches[-1].header
        newest = max(batches, key=lambda location: location.header.max_timestamp).header
        self._check_online()
        try:
            segment = self.active_segment
            if segment.should_roll(len(data), newest.max_timestamp, last.last_offset, self._clock()):
                segment = self.roll()
            segment.append(data, batches)
        except OSError as error:
            # A full disk or an I/O error may leave a partial write behind, beyond what the
            # segment accounts for. As Kafka does, the log goes offline instead of guessing:
            # nothing more is written or read until a restart recovers it from the disk.
            self.take_offline(f"{self.directory}: {error}")
            raise StorageError(f"append failed, log is offline until restart: {self.offline_error}") from error
        for location in batches:
            self.leader_epoch_cache.assign(location.header.partition_leader_epoch, location.header.base_offset)
        return AppendResult(first.base_offset, last.last_offset, newest.max_timestamp, newest.last_offset,
                            append_time_ms)

    def roll(self) -> LogSegment:
        """Start a new active segment at the log end (no-op when the active one is empty).
        The finished segment is flushed first, as Kafka does after a roll, so the recovery
        point reaches the new segment: a crash can then only lose data of the active segment,
        and an inactive segment that recovery finds short is never mistaken for a whole one."""
        active = self.active_segment
        if active.size_bytes == 0:
            return active
        active.on_become_inactive()
        self.flush()
        segment = LogSegment.create(self._fs, self.directory, self.log_end_offset, self.config, self._clock())
        self._segments.append(segment)
        return segment

    # ----- reading ----------------------------------------------------------------------------

    def read(self, start_offset: int, max_bytes: int, *, max_offset: int | None = None,
             min_one_message: bool = True) -> ReadResult:
        """Whole batches from the one holding ``start_offset``, up to ``max_bytes`` (but at least
        one batch with ``min_one_message``), only batches wholly below ``max_offset`` (e.g. the
        high watermark), and from one segment only, so the result is one file range."""
        self._check_online()
        end = self.log_end_offset
        if not self.log_start_offset <= start_offset <= end:
            raise OffsetOutOfRangeError(start_offset, self.log_start_offset, end)
        if start_offset < end and (max_offset is None or start_offset < max_offset):
            first = bisect_right([segment.base_offset for segment in self._segments], start_offset) - 1
            for segment in self._segments[max(first, 0):]:
                location = segment.find_batch(start_offset)
                if location is not None:
                    data = segment.read_from(location, max_bytes, max_offset, min_one_message)
                    return self._read_result(data, segment.path if data else None, location.position)
        return self._read_result(b"", None, 0)

    def _read_result(self, data: bytes, path: str | None, position: int) -> ReadResult:
        return ReadResult(data, path, position, len(data), self.log_start_offset, self.log_end_offset,
                          self._high_watermark)

    def offset_for_timestamp(self, timestamp_ms: int) -> tuple[int, int] | None:
        """ListOffsets by timestamp: (offset, timestamp) of the first record at or after
        ``timestamp_ms`` (at or after the log start), or None when there is none."""
        for segment in self._segments:
            if segment.max_timestamp_ms < timestamp_ms:
                continue
            indexed = segment.time_index.lookup_before(timestamp_ms)
            start = max(segment.base_offset if indexed is None else indexed, self.log_start_offset)
            location = segment.find_batch(start)
            if location is None:
                continue
            for batch in segment.batches(location.position):
                header = batch.header
                if header.max_timestamp >= timestamp_ms and header.last_offset >= self.log_start_offset:
                    return self._first_record_at(segment, batch, timestamp_ms)
        return None

    def _first_record_at(self, segment: LogSegment, location: BatchLocation, timestamp_ms: int) -> tuple[int, int]:
        """Refine a batch to its first record at or after the timestamp; decoding one batch is
        the price of Kafka's record-level answer. A batch that will not decode answers with its
        own offsets rather than failing the request."""
        header = location.header
        fallback = (max(header.base_offset, self.log_start_offset), header.max_timestamp)
        if header.timestamp_type == TIMESTAMP_LOG_APPEND_TIME:
            return fallback
        try:
            _, records = decode_batch(segment.read_bytes(location.position, header.size_bytes))
        except (CorruptRecordError, InvalidRecordError):
            return fallback
        for record in records:
            if record.timestamp >= timestamp_ms and record.offset >= self.log_start_offset:
                return record.offset, record.timestamp
        return fallback

    def max_timestamp_entry(self) -> tuple[int, int] | None:
        """(offset, timestamp) of the record with the largest timestamp (the first of equals),
        for ListOffsets MAX_TIMESTAMP; None for an empty log."""
        best = max(self._segments, key=lambda segment: segment.max_timestamp_ms)
        if best.max_timestamp_ms == NO_TIMESTAMP or best.offset_of_max_timestamp < self.log_start_offset:
            return None
        location = best.find_batch(best.offset_of_max_timestamp)
        if location is None:
            return best.offset_of_max_timestamp, best.max_timestamp_ms
        return self._first_record_at(best, location, best.max_timestamp_ms)

    def assign_epoch_start(self, epoch: int) -> None:
        """A new leader's epoch starts at the log end, before it appends anything in it, so a
        follower that diverged in an epoch this log never had learns where to truncate."""
        self.leader_epoch_cache.assign(epoch, self.log_end_offset)

    @property
    def latest_epoch(self) -> int:
        return self.leader_epoch_cache.latest_epoch

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch: (epoch, end offset); (-1, -1) when the epoch is unknown."""
        return self.leader_epoch_cache.end_offset_for_epoch(epoch, self.log_end_offset)

    # ----- durability, truncation, deletion ------------------------------------------------

    def flush(self) -> None:
        """Fsync everything up to the log end, then advance the recovery point to it. A failed
        fsync takes the log offline: the kernel may already have dropped the dirty pages it
        could not write, so a retry that succeeds would not mean the data is on disk."""
        self._check_online()
        end = self.log_end_offset
        try:
            for segment in self._segments:
                if segment.next_offset > self.recovery_point or segment is self.active_segment:
                    segment.flush()
            self._fs.fsync_directory(self.directory)
            self.producer_state.take_snapshot(end)
        except OSError as error:
            self.take_offline(f"{self.directory}: {error}")
            raise StorageError(f"flush failed, log is offline until restart: {self.offline_error}") from error
        self.recovery_point = max(self.recovery_point, end)
        self.last_flush_ms = self._clock()

    def truncate_to(self, offset: int) -> None:
        """Remove everything at or after ``offset`` (a batch holding it goes whole, so the log
        end may land below ``offset``, but never below the log start). Below the log start,
        the log restarts empty at ``offset``, as Kafka's truncateFullyAndStartAt does.
        The recovery point drops with the log end: checkpoint it before the log grows again
        (LogManager.truncate_to does), since recovery trusts what lies below it."""
        if offset >= self.log_end_offset:
            return
        if offset < self.log_start_offset:
            self._restart_at(offset)
        else:
            while len(self._segments) > 1 and self._segments[-1].base_offset > offset:
                self._segments.pop().delete()
            self.active_segment.truncate_to(offset)
            if self.log_end_offset < self.log_start_offset:
                # The batch holding ``offset`` began below the log start: nothing visible is left.
                self._restart_at(self.log_start_offset)
        # Truncated data must not come back after a crash: a follower would then hold records
        # its leader does not have.
        self.active_segment.flush()
        self._fs.fsync_directory(self.directory)
        end = self.log_end_offset
        self.recovery_point = min(self.recovery_point, end)
        self._high_watermark = min(self._high_watermark, end)
        self.leader_epoch_cache.truncate_from_end(end)
        self.producer_state.delete_snapshots_after(end)
        self._reload_producer_state()

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Drop every segment and start empty at ``offset`` (which may lie past the log end)."""
        self._check_online()
        self._restart_at(offset)
        self._fs.fsync_directory(self.directory)
        self.recovery_point = offset
        self._high_watermark = offset
        self.producer_state.clear()

    def _restart_at(self, offset: int) -> None:
        for segment in self._segments:
            segment.delete()
        self._segments = [LogSegment.create(self._fs, self.directory, offset, self.config, self._clock())]
        self.log_start_offset = offset
        self.leader_epoch_cache.clear()
        self.leader_epoch_cache.persist()
        self.producer_state.delete_snapshots_after(-1)

    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: move the log start up to ``offset`` and delete segments wholly below
        it. Checking ``offset`` against the high watermark is the broker's job. Returns the new
        log start offset."""
        end = self.log_end_offset
        if not 0 <= offset <= end:
            raise OffsetOutOfRangeError(offset, self.log_start_offset, end)
        if offset <= self.log_start_offset:
            return self.log_start_offset
        self.log_start_offset = offset
        self._high_watermark = max(self._high_watermark, offset)
        if offset == end:
            self.roll()
        doomed = 0
        while len(self._segments) > 1 and self._segments[1].base_offset <= offset:
            self._segments.pop(0).delete()
            doomed += 1
        if doomed:
            # A deleted segment must not come back after a crash with the log start below it.
            self._fs.fsync_directory(self.directory)
        self.leader_epoch_cache.truncate_from_start(offset)
        self.producer_state.remove_before(offset)
        return offset

    def apply_retention(self, now_ms: int | None = None) -> int:
        """Delete whole segments by retention.ms, retention.bytes and the log start offset
        (rules in storage.retention); returns how many segments went."""
        now_ms = self._clock() if now_ms is None else now_ms
        deleted = 0
        for count_prefix in (
            lambda: count_by_time(self._segments, self._config, now_ms, self._high_watermark, self.log_end_offset),
            lambda: count_by_size(self._segments, self._config, self._high_watermark, self.log_end_offset),
            lambda: count_below_log_start(self._segments, self.log_start_offset, self._high_watermark,
                                          self.log_end_offset),
        ):
            deleted += self._delete_oldest_segments(count_prefix())
        return deleted

    def _delete_oldest_segments(self, count: int) -> int:
        """Delete the first ``count`` segments (rolling first if that is all of them) and move
        the log start offset up to the new first segment."""
        if count <= 0:
            return 0
        if count >= len(self._segments):
            self.roll()
        doomed, self._segments = self._segments[:count], self._segments[count:]
        self.log_start_offset = max(self.log_start_offset, self._segments[0].base_offset)
        self._high_watermark = max(self._high_watermark, self.log_start_offset)
        self.recovery_point = max(self.recovery_point, self.log_start_offset)
        for segment in doomed:
            segment.delete()
        self._fs.fsync_directory(self.directory)
        self.leader_epoch_cache.truncate_from_start(self.log_start_offset)
        self.producer_state.remove_before(self.log_start_offset)
        return len(doomed)

    def replace_segments(self, old: list[LogSegment], cleaned: LogSegment) -> None:
        """Put a cleaned segment (complete, fsynced, named ``.swap``) in place of ``old``, the
        consecutive segments it was made from; see storage.cleaner for the crash rules."""
        first = self._segments.index(old[0])
        assert self._segments[first:first + len(old)] == old, "cleaned segments must be consecutive"
        assert cleaned.base_offset == old[0].base_offset and self._segments[-1] not in old
        for segment in old:
            segment.delete()
        cleaned.rename_temp_suffix("")
        self._fs.fsync_directory(self.directory)
        self._segments[first:first + len(old)] = [cleaned]

    def close(self, *, flush: bool = True) -> None:
        """A clean close: final time-index entry, flush, producer snapshot, close files.
        ``flush=False`` only closes the files (the log is about to be deleted). An offline log
        writes nothing more: the next start recovers it from what is on disk."""
        if flush and not self.is_offline:
            self.active_segment.on_become_inactive()
            self.flush()
            self.producer_state.take_snapshot(self.log_end_offset, force=True)
        for segment in self._segments:
            segment.close()

    # ----- derived state ----------------------------------------------------------------------

    def _rebuild_leader_epoch_cache(self) -> None:
        self.leader_epoch_cache.clear()
        for segment in self._segments:
            for location in segment.batches():
                self.leader_epoch_cache.assign(location.header.partition_leader_epoch,
                                               location.header.base_offset, persist=False)

    def _reload_producer_state(self) -> None:
        """Newest snapshot at or below the log end, then replay batch headers after it."""
        snapshot_offset = self.producer_state.load(self.log_end_offset)
        start = self._segments[0].base_offset if snapshot_offset is None else snapshot_offset
        for segment in self._segments:
            location = segment.find_batch(start)
            if location is None:
                continue
            for batch in segment.batches(location.position):
                if batch.header.base_offset >= start:
                    self.producer_state.replay(batch.header)

    def __repr__(self) -> str:
        return (f"PartitionLog({self.directory!r}, log_start_offset={self.log_start_offset}, "
                f"log_end_offset={self.log_end_offset}, segments={len(self._segments)})")
