"""Opening a partition directory: tidy leftovers, open or recover every segment, and work out
the offsets the log starts and ends at.

Rules (Kafka's LogLoader, simplified):
- A ``<base>.log.swap`` is a cleaned segment that was complete and fsynced before it got that
  name (storage.cleaner), so the swap is finished: every ``.log`` whose base offset lies in
  the swap's range [base, its next offset) is one it replaces and is deleted, the swap's
  indexes are dropped (they are rebuilt from the log) and it is renamed to ``<base>.log``.
- Other temp files (``.cleaned``, ``.deleted``, ``.tmp``, index ``.swap``) are removed: a
  ``.cleaned`` file is never the only copy of data. Index files without a ``.log`` are removed.
- After an unclean shutdown every segment from the one holding the recovery point onwards is
  scanned and repaired; in the one holding it, the scan starts at the last indexed batch below
  the recovery point (LogSegment.recover), so start-up reads the unflushed tail, not up to
  segment.bytes of flushed data. A segment that loses a torn tail makes every later segment
  unreachable, so those are deleted. Earlier segments, and all segments after a clean
  shutdown, are trusted when their indexes look sane, and scanned otherwise; the index entries
  of trusted inactive segments are read on first use (storage.index), so start-up does not
  grow with the data.
- Corrupt data never raises; only an unusable directory does (StorageError).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from protocol.records import BatchHeader
from storage.config import LogConfig
from storage.errors import StorageError
from storage.fs import FileSystem
from storage.segment import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    LogSegment,
    parse_segment_file_name,
    scan_batches,
    segment_file_name,
)

log = logging.getLogger(__name__)

SWAP_SUFFIX = ".swap"
TEMP_SUFFIXES = (".cleaned", SWAP_SUFFIX, ".deleted", ".tmp")


@dataclass(frozen=True, slots=True)
class LoadedSegments:
    segments: list[LogSegment]
    recovered_bytes_removed: int


def list_directory(fs: FileSystem, directory: str) -> list[str]:
    if not fs.is_directory(directory):
        raise StorageError(f"log directory {directory} does not exist or is not a directory")
    try:
        return fs.listdir(directory)
    except OSError as error:
        raise StorageError(f"cannot list log directory {directory}: {error}") from error


def complete_swaps(fs: FileSystem, directory: str, names: list[str]) -> bool:
    """Finish the segment swaps a crash interrupted (module rules); True if there were any."""
    bases = [base for name in names if (base := parse_segment_file_name(name, LOG_SUFFIX)) is not None]
    swapped = False
    for name in names:
        if not name.endswith(LOG_SUFFIX + SWAP_SUFFIX):
            continue
        base = parse_segment_file_name(name[: -len(SWAP_SUFFIX)], LOG_SUFFIX)
        if base is None:
            continue
        swap_path = os.path.join(directory, name)
        file = fs.open(swap_path, create=False)
        try:
            next_offset = base
            for location in scan_batches(file, 0, file.size(), verify=True, expected_offset=base):
                next_offset = location.header.next_offset
        finally:
            file.close()
        log.warning("completing the interrupted swap of cleaned segment %s in %s", name, directory)
        for replaced in [other for other in bases if base <= other < max(next_offset, base + 1)]:
            for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX):
                _remove_if_present(fs, os.path.join(directory, segment_file_name(replaced, suffix)))
        for suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX):
            _remove_if_present(fs, os.path.join(directory, segment_file_name(base, suffix) + SWAP_SUFFIX))
        fs.rename(swap_path, os.path.join(directory, segment_file_name(base, LOG_SUFFIX)))
        swapped = True
    if swapped:
        fs.fsync_directory(directory)
    return swapped


def _remove_if_present(fs: FileSystem, path: str) -> None:
    if fs.exists(path):
        fs.remove(path)


def remove_leftovers(fs: FileSystem, directory: str, names: list[str]) -> list[int]:
    """Finish swaps, delete temp files and orphan indexes; return the base offsets of the
    ``.log`` files."""
    if complete_swaps(fs, directory, names):
        names = list_directory(fs, directory)
    bases = sorted(base for name in names if (base := parse_segment_file_name(name, LOG_SUFFIX)) is not None)
    present = set(bases)
    for name in names:
        orphan = any(
            (base := parse_segment_file_name(name, suffix)) is not None and base not in present
            for suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX)
        )
        if orphan or name.endswith(TEMP_SUFFIXES):
            log.info("removing leftover file %s in %s", name, directory)
            fs.remove(os.path.join(directory, name))
    return bases


def open_segments(fs: FileSystem, directory: str, bases: list[int], config: LogConfig, now_ms: int, *,
                  recovery_point: int, clean_shutdown: bool,
                  on_recovered_batch: Callable[[BatchHeader], None]) -> LoadedSegments:
    """Open each segment, scanning those that may hold unflushed data (see module rules)."""
    first_to_recover = _first_unflushed(bases, recovery_point)
    segments: list[LogSegment] = []
    removed = 0
    for index, base in enumerate(bases):
        if segments and base < segments[-1].next_offset:
            log.warning("segment %d in %s overlaps its predecessor; deleting it and later ones", base, directory)
            _delete_bases(fs, directory, bases[index:], config, now_ms)
            break
        recover = not clean_shutdown and index >= first_to_recover
        segment = LogSegment.open(fs, directory, base, config, now_ms, recover=recover,
                                  on_batch=on_recovered_batch if recover else None,
                                  recovery_point=recovery_point if index == first_to_recover else None,
                                  lazy_indexes=index + 1 < len(bases))
        segments.append(segment)
        if recover:
            removed += _bytes_cut(segment)
        if recover and segment.truncated_bytes and index + 1 < len(bases):
            log.warning("segment %d in %s had a corrupt tail; deleting %d later segments",
                        base, directory, len(bases) - index - 1)
            _delete_bases(fs, directory, bases[index + 1:], config, now_ms)
            break
    return LoadedSegments(segments, removed)


def _bytes_cut(segment: LogSegment) -> int:
    if segment.truncated_bytes:
        log.warning("truncated %d bytes of torn or corrupt data from %s", segment.truncated_bytes, segment.path)
    return segment.truncated_bytes


def _first_unflushed(bases: list[int], recovery_point: int) -> int:
    """Index of the segment holding the recovery point (everything before it was flushed)."""
    first = 0
    for index, base in enumerate(bases):
        if base <= recovery_point:
            first = index
    return first


def _delete_bases(fs: FileSystem, directory: str, bases: list[int], config: LogConfig, now_ms: int) -> None:
    for base in bases:
        LogSegment(fs, directory, base, config, now_ms).delete()
