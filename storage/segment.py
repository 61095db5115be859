"""One log segment: a ``.log`` file of record batches exactly as appended, plus its sparse
``.index`` and ``.timeindex`` (see ``storage.index``).

A segment never decodes records; it reads batch headers only. Recovery keeps the longest prefix
of batches that are whole, CRC-valid and in offset order, truncates the rest, and rebuilds both
indexes from that prefix, so indexes are always derived data.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from protocol.records import (
    BATCH_HEADER_SIZE,
    BatchHeader,
    CorruptRecordError,
    InvalidRecordError,
    crc_is_valid,
    read_header,
)
from storage.config import INT_MAX, LogConfig
from storage.fs import FileSystem
from storage.index import OffsetIndex, TimeIndex

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
# Bytes read per system call when scanning headers; recovery reads whole files this way.
SCAN_CHUNK_BYTES = 1024 * 1024
# Lookups scan at most one index interval plus a batch, so they read less at a time.
LOOKUP_CHUNK_BYTES = 16 * 1024
NO_TIMESTAMP = -1


def segment_file_name(base_offset: int, suffix: str) -> str:
    """Kafka's names: the base offset zero-padded to 20 digits, then the suffix."""
    return f"{base_offset:020d}{suffix}"


def parse_segment_file_name(name: str, suffix: str) -> int | None:
    stem = name[: -len(suffix)]
    if name.endswith(suffix) and len(stem) == 20 and stem.isdigit():
        return int(stem)
    return None


@dataclass(frozen=True, slots=True)
class BatchLocation:
    position: int
    header: BatchHeader


def scan_batches(file, start: int, end: int, *, verify: bool, chunk_bytes: int = SCAN_CHUNK_BYTES,
                 expected_offset: int = 0) -> Iterator[BatchLocation]:
    """Yield the batches from ``start`` up to ``end``, stopping quietly at the first one that is
    not whole (and, with ``verify``, not CRC-valid or not in offset order): the caller sees where
    the good prefix ends from the last batch yielded."""
    buffer, buffer_start = b"", start
    position = start
    while position + BATCH_HEADER_SIZE <= end:
        relative = position - buffer_start
        if relative + BATCH_HEADER_SIZE > len(buffer):
            buffer, buffer_start, relative = file.pread(min(chunk_bytes, end - position), position), position, 0
        try:
            header = read_header(buffer, relative)
        except (CorruptRecordError, InvalidRecordError):
            return
        if position + header.size_bytes > end or header.last_offset_delta < 0:
            return
        if verify:
            if header.base_offset < expected_offset:
                return
            if relative + header.size_bytes > len(buffer):
                buffer, buffer_start, relative = file.pread(header.size_bytes, position), position, 0
            if not crc_is_valid(buffer, relative, header):
                return
            expected_offset = header.next_offset
        yield BatchLocation(position, header)
        position += header.size_bytes


class LogSegment:
    """A segment's files and the facts about them the log needs without rereading them."""

    def __init__(self, fs: FileSystem, directory: str, base_offset: int, config: LogConfig, now_ms: int,
                 temp_suffix: str = "") -> None:
        """``temp_suffix`` (``.cleaned``, ``.swap``) names files the cleaner is still writing."""
        self.base_offset = base_offset
        self._directory = directory
        self.path = os.path.join(directory, segment_file_name(base_offset, LOG_SUFFIX) + temp_suffix)
        self._fs = fs
        self.config = config
        self._file = fs.open(self.path)
        index_path, time_index_path = (
            os.path.join(directory, segment_file_name(base_offset, suffix) + temp_suffix)
            for suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX))
        self._indexes_existed = fs.exists(index_path) and fs.exists(time_index_path)
        self.offset_index = OffsetIndex(fs, index_path, base_offset, config.segment_index_bytes)
        self.time_index = TimeIndex(fs, time_index_path, base_offset, config.segment_index_bytes)
        self.offset_index.on_corrupt = self.time_index.on_corrupt = self._rebuild_indexes
        self.created_ms = now_ms
        self.truncated_bytes = 0
        self._reset_state()

    def _reset_state(self) -> None:
        self.size_bytes = 0
        self.next_offset = self.base_offset
        self.max_timestamp_ms = NO_TIMESTAMP
        self.offset_of_max_timestamp = -1
        self.first_batch_timestamp_ms: int | None = None
        self._bytes_since_index_entry = 0

    @classmethod
    def create(cls, fs: FileSystem, directory: str, base_offset: int, config: LogConfig, now_ms: int,
               temp_suffix: str = "") -> LogSegment:
        segment = cls(fs, directory, base_offset, config, now_ms, temp_suffix)
        segment._file.truncate(0)
        segment.offset_index.reset()
        segment.time_index.reset()
        return segment

    @classmethod
    def open(cls, fs: FileSystem, directory: str, base_offset: int, config: LogConfig, now_ms: int, *,
             recover: bool, on_batch: Callable[[BatchHeader], None] | None = None,
             recovery_point: int | None = None, lazy_indexes: bool = False) -> LogSegment:
        """Open an existing segment. With ``recover`` (or when its indexes are not sane) scan and
        repair it, calling ``on_batch`` for each batch scanned; ``recovery_point`` lets the scan
        start near that offset (see ``recover``). ``lazy_indexes`` reads a trusted segment's
        index entries on first use rather than now (storage.index)."""
        segment = cls(fs, directory, base_offset, config, now_ms)
        if recover:
            segment.recover(on_batch, recovery_point=recovery_point)
        elif not segment._load_trusted(lazy_indexes):
            segment.recover(on_batch)
        return segment

    # ----- loading and recovery -------------------------------------------------------------

    def _load_trusted(self, lazy_indexes: bool = False) -> bool:
        """Trust the indexes if both files exist, are sane, and the log's tail agrees with them.
        With ``lazy_indexes`` only their lengths and last entries are checked now."""
        file_bytes = self._file.size()
        if file_bytes and not self._indexes_existed:
            return False
        if not (self.offset_index.load(lazy=lazy_indexes) and self.time_index.load(lazy=lazy_indexes)):
            return False
        last = self.offset_index.last_entry()
        if last is not None and last[1] >= file_bytes:
            return False
        self.size_bytes = file_bytes
        if not self._reload_tail():
            return False
        time_last = self.time_index.last_entry()
        return time_last is None or time_last[1] < self.next_offset

    def _reload_tail(self) -> bool:
        """Recompute next offset and max timestamp from the last index entry to the end of the
        file; False when the batches there do not tile the file or disagree with the index."""
        entry_offset, position = self.offset_index.last_entry() or (self.base_offset, 0)
        self.next_offset = self.base_offset
        self.max_timestamp_ms, self.offset_of_max_timestamp = NO_TIMESTAMP, -1
        time_last = self.time_index.last_entry()
        if time_last is not None:
            self.max_timestamp_ms, self.offset_of_max_timestamp = time_last
        end = position
        # Headers only: small reads, so a segment of 1 MiB batches costs a few KiB, not a batch.
        for location in scan_batches(self._file, position, self.size_bytes, verify=False,
                                     chunk_bytes=LOOKUP_CHUNK_BYTES):
            header = location.header
            if end == position and self.offset_index.last_entry() and header.last_offset != entry_offset:
                return False
            self.next_offset = header.next_offset
            self._note_timestamp(header)
            end = location.position + header.size_bytes
        self._bytes_since_index_entry = self.size_bytes - position
        self._load_first_batch_timestamp()
        return end == self.size_bytes

    def _load_first_batch_timestamp(self) -> None:
        self.first_batch_timestamp_ms = None
        if self.size_bytes >= BATCH_HEADER_SIZE:
            try:
                self.first_batch_timestamp_ms = read_header(self._file.pread(BATCH_HEADER_SIZE, 0)).max_timestamp
            except (CorruptRecordError, InvalidRecordError):
                self.first_batch_timestamp_ms = None

    def recover(self, on_batch: Callable[[BatchHeader], None] | None = None, *,
                recovery_point: int | None = None) -> int:
        """Keep the longest valid prefix, truncate the rest and rebuild the indexes.
        Returns the number of bytes cut off.

        With a ``recovery_point`` (everything below it was fsynced, indexes included, and has
        not changed since), the scan starts at the last indexed batch below it instead of at
        the start of the file, so recovery reads the unflushed tail, not the whole segment
        (see ``_resume_below``). ``on_batch`` then sees only the batches scanned."""
        file_bytes = self._file.size()
        resumed = None if recovery_point is None else self._resume_below(recovery_point, file_bytes)
        if resumed is None:
            self._reset_state()
            self.offset_index.reset()
            self.time_index.reset()
        start, expected_offset = resumed or (0, self.base_offset)
        for location in scan_batches(self._file, start, file_bytes, verify=True, expected_offset=expected_offset):
            if location.header.last_offset - self.base_offset > INT_MAX:
                break
            self._account_batch(location.position, location.header)
            if on_batch is not None:
                on_batch(location.header)
        self.truncated_bytes = file_bytes - self.size_bytes
        if self.truncated_bytes:
            self._file.truncate(self.size_bytes)
        return self.truncated_bytes

    def _resume_below(self, recovery_point: int, file_bytes: int) -> tuple[int, int] | None:
        """Set the state as of the start of the last indexed batch wholly below the recovery
        point and return (its position, its base offset), or None when the indexes cannot say.

        Why this is safe: an index entry is written with its batch and fsynced with it, so the
        entries of batches below the recovery point are on disk and agree with bytes that are
        too. The batch at the entry is scanned again (and checked against the entry); what
        follows it is verified as in a full recovery. The time index keeps only entries that
        point before that batch: each names a batch below it and that batch's timestamp, the
        running maximum up to there. Torn or garbage index entries can only follow the fsynced
        ones, so the sane prefix of each index file is enough."""
        if not (self._indexes_existed and self.offset_index.load(sane_prefix=True)
                and self.time_index.load(sane_prefix=True)):
            return None
        self.offset_index.truncate_to(recovery_point)
        last = self.offset_index.last_entry()
        if last is None or last[1] + BATCH_HEADER_SIZE > file_bytes:
            return None
        last_offset, position = last
        try:
            header = read_header(self._file.pread(BATCH_HEADER_SIZE, position))
        except (CorruptRecordError, InvalidRecordError):
            return None
        if header.last_offset != last_offset or header.base_offset < self.base_offset:
            return None
        self._reset_state()
        # The batch's own entries go too; scanning it again adds them back the same way.
        self.offset_index.truncate_to(header.base_offset)
        self.time_index.truncate_to(header.base_offset)
        self.size_bytes, self.next_offset = position, header.base_offset
        time_last = self.time_index.last_entry()
        if time_last is not None:
            self.max_timestamp_ms, self.offset_of_max_timestamp = time_last
        self._load_first_batch_timestamp()
        # There was an entry at this batch, so the scan must make one there again.
        self._bytes_since_index_entry = self.config.index_interval_bytes + 1
        return position, header.base_offset

    def _rebuild_indexes(self) -> None:
        """Rebuild both indexes from the log, which was trusted (a lazily loaded index turned
        out corrupt on first use); the log itself is left as it is."""
        size_bytes, next_offset = self.size_bytes, self.next_offset
        self._reset_state()
        self.offset_index.reset()
        self.time_index.reset()
        for location in scan_batches(self._file, 0, size_bytes, verify=False):
            self._account_batch(location.position, location.header)
        assert (self.size_bytes, self.next_offset) == (size_bytes, next_offset), (
            f"{self.path}: rebuilt indexes cover {self.size_bytes} bytes to offset {self.next_offset}, "
            f"the segment {size_bytes} bytes to {next_offset}")

    # ----- appending --------------------------------------------------------------------------

    def append(self, data: bytes | bytearray | memoryview, batches: list[BatchLocation]) -> int:
        """Write ``data`` (whole batches; positions in ``batches`` are relative to it) at the end
        and index it. Returns the file position the data starts at."""
        start = self.size_bytes
        self._file.pwrite(data, start)
        for location in batches:
            self._account_batch(start + location.position, location.header)
        assert self.size_bytes == start + len(data), f"{self.path}: batches cover {self.size_bytes - start} of {len(data)} bytes"
        return start

    def _account_batch(self, position: int, header: BatchHeader) -> None:
        """Everything a batch changes: size, next offset, timestamps and (every index interval)
        one entry in each index, pointing at this batch, as Kafka's LogSegment.append does."""
        if self.first_batch_timestamp_ms is None:
            self.first_batch_timestamp_ms = header.max_timestamp
        self._note_timestamp(header)
        if self._bytes_since_index_entry > self.config.index_interval_bytes:
            self.offset_index.append(header.last_offset, position)
            self.time_index.maybe_append(self.max_timestamp_ms, self.offset_of_max_timestamp)
            self._bytes_since_index_entry = 0
        self._bytes_since_index_entry += header.size_bytes
        self.size_bytes = position + header.size_bytes
        self.next_offset = header.next_offset

    def _note_timestamp(self, header: BatchHeader) -> None:
        if header.max_timestamp > self.max_timestamp_ms:
            self.max_timestamp_ms = header.max_timestamp
            self.offset_of_max_timestamp = header.last_offset

    def should_roll(self, incoming_bytes: int, incoming_max_timestamp_ms: int, last_offset: int, now_ms: int) -> bool:
        """Kafka's roll rules: size, age (by the first batch's timestamp when there is one),
        a full index, or an offset too far from the base for a 32-bit relative offset."""
        if self.size_bytes == 0:
            return False
        if self.size_bytes + incoming_bytes > self.config.segment_bytes:
            return True
        if self.first_batch_timestamp_ms is not None and incoming_max_timestamp_ms >= 0:
            waited_ms = incoming_max_timestamp_ms - self.first_batch_timestamp_ms
        else:
            waited_ms = now_ms - self.created_ms
        if waited_ms > self.config.segment_ms:
            return True
        return (self.offset_index.is_full or self.time_index.is_full
                or last_offset - self.base_offset > INT_MAX)

    def on_become_inactive(self) -> None:
        """Record the final max timestamp, so a reopened segment knows it from its time index."""
        if self.max_timestamp_ms >= 0:
            self.time_index.maybe_append(self.max_timestamp_ms, self.offset_of_max_timestamp)

    # ----- reading ----------------------------------------------------------------------------

    def batches(self, start_position: int = 0) -> Iterator[BatchLocation]:
        return scan_batches(self._file, start_position, self.size_bytes, verify=False)

    def find_batch(self, offset: int) -> BatchLocation | None:
        """The first batch whose last offset is at or after ``offset``, or None."""
        if offset >= self.next_offset:
            return None
        _, position = self.offset_index.lookup(offset)
        for location in scan_batches(self._file, position, self.size_bytes, verify=False,
                                     chunk_bytes=LOOKUP_CHUNK_BYTES):
            if location.header.last_offset >= offset:
                return location
        return None

    def read_from(self, location: BatchLocation, max_bytes: int, max_offset: int | None,
                  min_one_message: bool) -> bytes:
        """Whole batches from ``location`` on, within ``max_bytes`` and below ``max_offset``."""
        first = location.header
        if max_offset is not None and first.last_offset >= max_offset:
            return b""
        if first.size_bytes > max_bytes:
            return self._file.pread(first.size_bytes, location.position) if min_one_message else b""
        data = self._file.pread(min(max_bytes, self.size_bytes - location.position), location.position)
        length = 0
        while length + BATCH_HEADER_SIZE <= len(data):
            header = read_header(data, length)
            if length + header.size_bytes > len(data):
                break
            if max_offset is not None and header.last_offset >= max_offset:
                break
            length += header.size_bytes
        return data if length == len(data) else data[:length]

    def read_bytes(self, position: int, length: int) -> bytes:
        return self._file.pread(length, position)

    def fileno(self) -> int | None:
        return self._file.fileno()

    # ----- truncation, durability, deletion ------------------------------------------------

    def truncate_to(self, offset: int) -> int:
        """Remove every batch ending at or after ``offset`` (a batch holding ``offset`` goes
        whole). Returns the bytes removed."""
        location = self.find_batch(offset)
        if location is None:
            return 0
        removed = self.size_bytes - location.position
        self._file.truncate(location.position)
        self.offset_index.truncate_to(location.header.base_offset)
        self.time_index.truncate_to(location.header.base_offset)
        self.size_bytes = location.position
        if not self._reload_tail():
            self.recover()
        return removed

    def flush(self) -> None:
        self._file.fsync()
        self.offset_index.flush()
        self.time_index.flush()

    def close(self) -> None:
        self._file.close()
        self.offset_index.close()
        self.time_index.close()

    def rename_temp_suffix(self, temp_suffix: str) -> None:
        """Rename the (open) files to carry ``temp_suffix`` ("" for the final names): indexes
        first, the ``.log`` last, so the ``.log``'s name tells how far a crash got."""
        for item in (self.offset_index, self.time_index, self):
            name = os.path.basename(item.path)
            stem = name[: name.index(".")]
            suffix = name[len(stem):].split(".")[1]
            target = os.path.join(self._directory, f"{stem}.{suffix}{temp_suffix}")
            self._fs.rename(item.path, target)
            item.path = target

    def delete(self) -> None:
        """Remove the files; the ``.log`` goes first, so a crash leaves only orphan indexes,
        which the next open deletes."""
        self.close()
        for path in (self.path, self.offset_index.path, self.time_index.path):
            if self._fs.exists(path):
                self._fs.remove(path)
