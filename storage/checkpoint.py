"""Kafka's checkpoint text files, written atomically and read forgivingly.

Format (``CheckpointFile.java``): line 1 is the version ``0``, line 2 the entry count, then one
entry per line with space-separated fields. Offset checkpoints hold ``<topic> <partition>
<offset>``; the leader-epoch checkpoint holds ``<epoch> <start_offset>``.

A checkpoint only saves work: every value in it can be recovered from the log (at the cost of a
longer scan). So a corrupt or half-written file is logged and read as empty, never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from storage.fs import FileSystem, read_whole_file, write_file_atomically

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 0
# A checkpoint lists partitions or epochs; anything larger than this is not one of ours.
CHECKPOINT_BYTES_MAX = 64 * 1024 * 1024

RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT = "log-start-offset-checkpoint"
REPLICATION_OFFSET_CHECKPOINT = "replication-offset-checkpoint"
LEADER_EPOCH_CHECKPOINT = "leader-epoch-checkpoint"

TopicPartition = tuple[str, int]


class _MalformedCheckpoint(ValueError):
    pass


def write_entries(fs: FileSystem, path: str, entries: Sequence[Sequence[object]]) -> None:
    lines = [str(CHECKPOINT_VERSION), str(len(entries))]
    lines.extend(" ".join(str(field) for field in entry) for entry in entries)
    write_file_atomically(fs, path, ("\n".join(lines) + "\n").encode("utf-8"))


def read_entries(fs: FileSystem, path: str, field_count: int) -> list[list[str]] | None:
    """The entries, or None when the file is missing or malformed (which is logged)."""
    if not fs.exists(path):
        return None
    try:
        data = read_whole_file(fs, path)
        if len(data) > CHECKPOINT_BYTES_MAX:
            raise _MalformedCheckpoint(f"{len(data)} bytes is larger than {CHECKPOINT_BYTES_MAX}")
        return _parse(data.decode("utf-8"), field_count)
    except (_MalformedCheckpoint, UnicodeDecodeError, OSError) as error:
        log.warning("ignoring unreadable checkpoint %s (recovering from the log instead): %s", path, error)
        return None


def _parse(text: str, field_count: int) -> list[list[str]]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) < 2 or lines[0].strip() != str(CHECKPOINT_VERSION):
        raise _MalformedCheckpoint(f"expected version {CHECKPOINT_VERSION} and a count in the first two lines")
    try:
        count = int(lines[1])
    except ValueError as error:
        raise _MalformedCheckpoint(f"entry count {lines[1]!r} is not a number") from error
    entries = [line.split() for line in lines[2:]]
    if count != len(entries):
        raise _MalformedCheckpoint(f"header says {count} entries, file has {len(entries)}")
    for entry in entries:
        if len(entry) != field_count:
            raise _MalformedCheckpoint(f"entry {' '.join(entry)!r} does not have {field_count} fields")
    return entries


def write_offsets(fs: FileSystem, path: str, offsets: Mapping[TopicPartition, int]) -> None:
    entries = [(topic, partition, offset) for (topic, partition), offset in sorted(offsets.items())]
    write_entries(fs, path, entries)


def read_offsets(fs: FileSystem, path: str) -> dict[TopicPartition, int]:
    """``{(topic, partition): offset}``; empty when the file is missing or corrupt."""
    entries = read_entries(fs, path, 3)
    if entries is None:
        return {}
    try:
        return {(topic, int(partition)): int(offset) for topic, partition, offset in entries}
    except ValueError as error:
        log.warning("ignoring checkpoint %s with a non-numeric field: %s", path, error)
        return {}
