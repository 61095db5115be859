"""Log compaction (``cleanup.policy`` compact): keep the latest record per key, as Kafka's
LogCleaner does, without ever renumbering an offset.

Rules:
- The cleanable range ends at the first uncleanable offset: the base of the first segment that
  is active, reaches above the high watermark or the first offset of a transaction still open,
  or is younger than ``min.compaction.lag.ms`` (by its largest timestamp). Only whole segments
  below it are rewritten.
- The dirty section starts at the first dirty offset (``cleaner-offset-checkpoint``; the log
  start when unknown or out of range). A log is cleaned when dirty bytes / (clean + dirty
  bytes) >= ``min.cleanable.dirty.ratio``, or when a dirty segment is older than
  ``max.compaction.lag.ms``.
- The offset map holds, per key, the last offset in the dirty section. Every segment from the
  log start to the end of the range is rewritten keeping a record when it has no key, its key
  is not in the map, or it is at or after the map's offset.
- A tombstone (null value) that survives is removed once it has been through one cleaning (it
  lies below the previous first dirty offset) and its segment's largest timestamp is older
  than ``delete.retention.ms``; until then consumers can still see the delete.
- Transactions: records of aborted transactions are removed (their abort marker lies in the
  range); control batches are always kept (a marker is small and keeping it is always safe).
- A batch whose records all survive is copied byte for byte. Otherwise it is re-encoded with
  the same base offset, last offset delta, producer id, epoch, base sequence, leader epoch,
  compression, transactional flag and timestamp type, so producer state and sequences read
  from the log are unchanged. A batch left with no records is kept empty when it is the last
  batch of its producer id (idempotent producers keep their sequence), and dropped otherwise.
- Crash safety: each group of segments (at most ``segment.bytes`` and one index worth) is
  written to ``<base>.log.cleaned`` (+ indexes), fsynced, renamed to ``.swap`` (directory
  fsynced), then the old segments are deleted and the swap renamed to the final names. A crash
  leaves either the old segments (``.cleaned`` is deleted on open) or a complete ``.swap``,
  which storage.log_loader finishes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import crc32c

from protocol.records import (
    ATTRIBUTES_OFFSET,
    CRC_OFFSET,
    CRC_START_OFFSET,
    MAX_TIMESTAMP_OFFSET,
    TIMESTAMP_LOG_APPEND_TIME,
    TIMESTAMP_TYPE_MASK,
    BatchHeader,
    Record,
    RecordInput,
    build_batch,
    decode_batch,
    read_header,
)
from storage.config import INT_MAX
from storage.segment import BatchLocation, LogSegment

CLEANER_OFFSET_CHECKPOINT = "cleaner-offset-checkpoint"
CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"
CONTROL_TYPE_ABORT = 0


@dataclass(frozen=True, slots=True)
class CleanResult:
    first_dirty_offset: int
    segments_before: int
    segments_after: int
    records_removed: int
    bytes_before: int
    bytes_after: int


@dataclass(frozen=True, slots=True)
class _Plan:
    first_dirty_offset: int
    end_offset: int
    segments: list[LogSegment]
    dirty: list[LogSegment]
    aborted: frozenset[tuple[int, int]]  # (producer id, base offset) of aborted data batches


def _batches(segment: LogSegment) -> Iterator[tuple[BatchLocation, bytes]]:
    for location in segment.batches():
        yield location, segment.read_bytes(location.position, location.header.size_bytes)


def _transactions(segments: list[LogSegment]) -> tuple[frozenset[tuple[int, int]], int | None]:
    """Aborted transactional batches, and the first offset of a transaction left open."""
    open_batches: dict[int, list[int]] = {}
    aborted: set[tuple[int, int]] = set()
    for segment in segments:
        for location, data in _batches(segment):
            header = location.header
            if not header.is_transactional:
                continue
            if not header.is_control:
                open_batches.setdefault(header.producer_id, []).append(header.base_offset)
                continue
            batch_offsets = open_batches.pop(header.producer_id, [])
            _, records = decode_batch(data)
            if records and records[0].key and len(records[0].key) >= 4 and \
                    struct.unpack_from(">h", records[0].key, 2)[0] == CONTROL_TYPE_ABORT:
                aborted.update((header.producer_id, offset) for offset in batch_offsets)
    first_open = min((offsets[0] for offsets in open_batches.values()), default=None)
    return frozenset(aborted), first_open


def plan_cleaning(log, first_dirty_offset: int, now_ms: int) -> _Plan | None:
    """The range to clean (module rules), or None when the log is not worth cleaning now."""
    config = log.config
    segments = log.segments[:-1]
    if not segments:
        return None
    aborted, first_open = _transactions(segments)
    limit = min(log.high_watermark, first_open if first_open is not None else log.log_end_offset)
    cleanable: list[LogSegment] = []
    for index, segment in enumerate(segments):
        upper_bound = log.segments[index + 1].base_offset
        if upper_bound > limit or now_ms - _largest_timestamp_ms(segment) < config.min_compaction_lag_ms:
            break
        cleanable.append(segment)
    if not cleanable:
        return None
    end_offset = log.segments[len(cleanable)].base_offset
    if not log.log_start_offset <= first_dirty_offset <= log.log_end_offset:
        first_dirty_offset = log.log_start_offset
    if first_dirty_offset >= end_offset:
        return None
    dirty = [segment for segment in cleanable if segment.next_offset > first_dirty_offset]
    dirty_bytes = sum(segment.size_bytes for segment in dirty)
    total_bytes = sum(segment.size_bytes for segment in cleanable)
    overdue = any(now_ms - _largest_timestamp_ms(segment) > config.max_compaction_lag_ms for segment in dirty)
    if not overdue and (total_bytes == 0 or dirty_bytes / total_bytes < config.min_cleanable_dirty_ratio):
        return None
    return _Plan(first_dirty_offset, end_offset, cleanable, dirty, aborted)


def _largest_timestamp_ms(segment: LogSegment) -> int:
    return segment.max_timestamp_ms if segment.max_timestamp_ms >= 0 else segment.created_ms


def build_offset_map(plan: _Plan) -> dict[bytes, int]:
    """Key -> last offset of that key in the dirty section."""
    offsets: dict[bytes, int] = {}
    for segment in plan.dirty:
        for location, data in _batches(segment):
            header = location.header
            if header.is_control or (header.producer_id, header.base_offset) in plan.aborted:
                continue
            if header.last_offset < plan.first_dirty_offset:
                continue
            for record in decode_batch(data)[1]:
                if record.key is not None and record.offset >= plan.first_dirty_offset:
                    offsets[record.key] = record.offset
    return offsets


def clean_log(log, first_dirty_offset: int, now_ms: int) -> CleanResult | None:
    """Compact ``log`` once if it is due (module rules); None when nothing was done."""
    plan = plan_cleaning(log, first_dirty_offset, now_ms)
    if plan is None:
        return None
    offsets = build_offset_map(plan)
    last_batch_of_producer = {
        producer_id: entry.batches[-1].last_offset
        for producer_id, entry in log.producer_state.entries().items() if entry.batches
    }
    removed = 0
    bytes_before = sum(segment.size_bytes for segment in plan.segments)
    cleaned_segments = []
    for group in _groups(plan.segments, log.config):
        retention_expired = now_ms - max(_largest_timestamp_ms(s) for s in group) > log.config.delete_retention_ms
        cleaned = LogSegment.create(log._fs, log.directory, group[0].base_offset, log.config, now_ms,
                                    temp_suffix=CLEANED_SUFFIX)
        for segment in group:
            for location, data in _batches(segment):
                drop_tombstones = retention_expired and location.header.last_offset < plan.first_dirty_offset
                kept, removed_here = _filter_batch(location.header, data, offsets, plan, drop_tombstones,
                                                   last_batch_of_producer)
                removed += removed_here
                if kept is not None:
                    cleaned.append(kept, [BatchLocation(0, read_header(kept))])
        cleaned.on_become_inactive()
        cleaned.flush()
        cleaned.rename_temp_suffix(SWAP_SUFFIX)
        log._fs.fsync_directory(log.directory)
        log.replace_segments(group, cleaned)
        cleaned_segments.append(cleaned)
    return CleanResult(plan.end_offset, len(plan.segments), len(cleaned_segments), removed, bytes_before,
                       sum(segment.size_bytes for segment in cleaned_segments))


def _groups(segments: list[LogSegment], config) -> Iterator[list[LogSegment]]:
    """Consecutive segments that fit one segment: size, index entries, 32-bit offsets."""
    group: list[LogSegment] = []
    for segment in segments:
        if group:
            size = sum(s.size_bytes for s in group) + segment.size_bytes
            entries = sum(len(s.offset_index) + len(s.time_index) for s in group) + \
                len(segment.offset_index) + len(segment.time_index)
            if size > config.segment_bytes or entries >= group[0].offset_index.entries_max or \
                    segment.next_offset - group[0].base_offset > INT_MAX:
                yield group
                group = []
        group.append(segment)
    if group:
        yield group


def _filter_batch(header: BatchHeader, data: bytes, offsets: dict[bytes, int], plan: _Plan,
                  drop_tombstones: bool, last_batch_of_producer: dict[int, int]) -> tuple[bytes | None, int]:
    """The batch to write in place of ``data`` (itself, re-encoded, empty or None) and how many
    records it lost."""
    if header.is_control:
        return data, 0
    records = decode_batch(data)[1]
    if (header.producer_id, header.base_offset) in plan.aborted:
        kept: list[Record] = []
    else:
        kept = [record for record in records if _keep(record, offsets, drop_tombstones)]
    if len(kept) == len(records):
        return data, 0
    removed = len(records) - len(kept)
    if not kept and last_batch_of_producer.get(header.producer_id) != header.last_offset:
        return None, removed
    return _rebuild(header, kept), removed


def _keep(record: Record, offsets: dict[bytes, int], drop_tombstones: bool) -> bool:
    if record.key is None:
        return True
    if record.offset < offsets.get(record.key, -1):
        return False
    return record.value is not None or not drop_tombstones


def _rebuild(header: BatchHeader, records: list[Record]) -> bytes:
    entries = [RecordInput(key=r.key, value=r.value, headers=r.headers, timestamp_ms=r.timestamp,
                           offset_delta=r.offset - header.base_offset) for r in records]
    batch = bytearray(build_batch(
        entries, base_offset=header.base_offset, compression=header.compression,
        timestamp_ms=header.max_timestamp, producer_id=header.producer_id,
        producer_epoch=header.producer_epoch, base_sequence=header.base_sequence,
        partition_leader_epoch=header.partition_leader_epoch, is_transactional=header.is_transactional,
        last_offset_delta=header.last_offset_delta))
    if header.timestamp_type == TIMESTAMP_LOG_APPEND_TIME:
        batch[ATTRIBUTES_OFFSET + 1] |= TIMESTAMP_TYPE_MASK
        struct.pack_into(">q", batch, MAX_TIMESTAMP_OFFSET, header.max_timestamp)
        struct.pack_into(">I", batch, CRC_OFFSET, crc32c.crc32c(memoryview(batch)[CRC_START_OFFSET:]))
    return bytes(batch)
