"""Idempotent-producer state of one partition: per producer id, its epoch and the metadata of
its last five batches, so a retried batch is answered with its original offsets instead of
being written twice, and a gap or a zombie producer is refused.

Rules (Kafka's ProducerStateManager for non-transactional idempotent producers, client origin):
- A batch equal in epoch, first and last sequence to one of the last five is a duplicate: nothing
  is written and the broker answers success with the original offsets.
- An epoch older than the producer's current one: InvalidProducerEpochError.
- A newer epoch must start at sequence 0, else OutOfOrderSequenceError.
- In the same epoch the first sequence must follow the last one (wrapping 2**31-1 -> 0), else
  OutOfOrderSequenceError.
- An unknown producer id is accepted with any sequence. Kafka does this since 2.5 (KIP-360):
  the producer's state may have been removed by retention or DeleteRecords, and the producer no
  longer gets UNKNOWN_PRODUCER_ID. ``ACCEPT_UNKNOWN_PRODUCER_SEQUENCE`` names the choice.
Replicated and recovered batches are applied without checks, as Kafka does for non-client
origins: the leader already checked them.

Checking and recording are two steps (``begin_append``/``ProducerAppend.check``, then
``commit``), so a failed append records nothing.

Snapshots are ``<20-digit offset>.snapshot`` files in Kafka's format (version 1, CRC32C, one
entry per producer with its last batch) holding the state of every batch below that offset. On
open the newest readable snapshot at or below the log end is loaded and the log after it is
replayed. A snapshot keeps only the last batch per producer, as Kafka's does, so after a restart
duplicates are recognised for the batches replayed from the log plus that one.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass, replace

import crc32c

from protocol.records import BatchHeader, InvalidRecordError
from storage.errors import InvalidProducerEpochError, OutOfOrderSequenceError
from storage.fs import FileSystem, read_whole_file, write_file_atomically

log = logging.getLogger(__name__)

BATCHES_RETAINED = 5
SNAPSHOTS_RETAINED = 3
SNAPSHOT_SUFFIX = ".snapshot"
SNAPSHOT_VERSION = 1
SNAPSHOT_BYTES_MAX = 256 * 1024 * 1024
NO_PRODUCER_ID = -1
SEQUENCE_MAX = 2**31 - 1
ACCEPT_UNKNOWN_PRODUCER_SEQUENCE = True

_SNAPSHOT_HEAD = struct.Struct(">hIi")  # version, crc, entry count
_SNAPSHOT_ENTRY = struct.Struct(">qhiqiqiq")
_CRC_START = 6  # the CRC covers everything after version and crc


@dataclass(frozen=True, slots=True)
class BatchMetadata:
    first_sequence: int
    last_sequence: int
    first_offset: int
    last_offset: int
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class ProducerEntry:
    producer_id: int
    producer_epoch: int
    batches: tuple[BatchMetadata, ...]

    @property
    def last_sequence(self) -> int:
        return self.batches[-1].last_sequence if self.batches else -1

    def find_duplicate(self, header: BatchHeader) -> BatchMetadata | None:
        if header.producer_epoch != self.producer_epoch:
            return None
        for batch in self.batches:
            if batch.first_sequence == header.base_sequence and batch.last_sequence == header.last_sequence:
                return batch
        return None

    def with_batch(self, header: BatchHeader, first_offset: int) -> ProducerEntry:
        batch = BatchMetadata(header.base_sequence, header.last_sequence, first_offset,
                              first_offset + header.last_offset_delta, header.max_timestamp)
        if header.producer_epoch != self.producer_epoch:
            return ProducerEntry(self.producer_id, header.producer_epoch, (batch,))
        return replace(self, batches=(self.batches + (batch,))[-BATCHES_RETAINED:])


def _in_sequence(last_sequence: int, next_sequence: int) -> bool:
    return next_sequence == last_sequence + 1 or (next_sequence == 0 and last_sequence == SEQUENCE_MAX)


class ProducerAppend:
    """The checked, not yet recorded, producer updates of one leader append."""

    def __init__(self, entries: dict[int, ProducerEntry]) -> None:
        self._committed = entries
        self.staged: dict[int, ProducerEntry] = {}

    def check(self, header: BatchHeader, first_offset: int) -> BatchMetadata | None:
        """Stage the batch; returns the original batch when it is a duplicate, raises when it
        must be refused."""
        producer_id = header.producer_id
        if producer_id == NO_PRODUCER_ID:
            return None
        if header.base_sequence < 0:
            raise InvalidRecordError(f"batch of idempotent producer {producer_id} carries no sequence")
        committed = self._committed.get(producer_id)
        duplicate = committed.find_duplicate(header) if committed else None
        if duplicate is not None:
            return duplicate
        entry = self.staged.get(producer_id, committed)
        _check_epoch_and_sequence(entry, header)
        base = entry or ProducerEntry(producer_id, header.producer_epoch, ())
        self.staged[producer_id] = base.with_batch(header, first_offset)
        return None


def _check_epoch_and_sequence(entry: ProducerEntry | None, header: BatchHeader) -> None:
    if entry is None:
        if header.base_sequence != 0 and not ACCEPT_UNKNOWN_PRODUCER_SEQUENCE:
            raise OutOfOrderSequenceError(
                f"unknown producer {header.producer_id} must start at sequence 0, not {header.base_sequence}")
        return
    if header.producer_epoch < entry.producer_epoch:
        raise InvalidProducerEpochError(
            f"producer {header.producer_id} epoch {header.producer_epoch} is older than {entry.producer_epoch}")
    if header.producer_epoch != entry.producer_epoch:
        if header.base_sequence != 0:
            raise OutOfOrderSequenceError(
                f"producer {header.producer_id} new epoch {header.producer_epoch} starts at sequence "
                f"{header.base_sequence}, expected 0")
    elif not _in_sequence(entry.last_sequence, header.base_sequence):
        raise OutOfOrderSequenceError(
            f"producer {header.producer_id} sent sequence {header.base_sequence} after {entry.last_sequence}")


def snapshot_file_name(offset: int) -> str:
    return f"{offset:020d}{SNAPSHOT_SUFFIX}"


def parse_snapshot_file_name(name: str) -> int | None:
    stem = name[: -len(SNAPSHOT_SUFFIX)]
    if name.endswith(SNAPSHOT_SUFFIX) and len(stem) == 20 and stem.isdigit():
        return int(stem)
    return None


class ProducerStateManager:
    def __init__(self, fs: FileSystem, directory: str) -> None:
        self._fs = fs
        self._directory = directory
        self._entries: dict[int, ProducerEntry] = {}
        self.snapshot_offset: int | None = None
        self._changed_since_snapshot = False

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, producer_id: int) -> ProducerEntry | None:
        return self._entries.get(producer_id)

    def entries(self) -> dict[int, ProducerEntry]:
        return dict(self._entries)

    def begin_append(self) -> ProducerAppend:
        return ProducerAppend(self._entries)

    def commit(self, append: ProducerAppend) -> None:
        if append.staged:
            self._entries.update(append.staged)
            self._changed_since_snapshot = True

    def replay(self, header: BatchHeader) -> None:
        """Apply a batch without checks (recovery, follower appends)."""
        if header.producer_id == NO_PRODUCER_ID or header.is_control:
            return
        entry = self._entries.get(header.producer_id) or ProducerEntry(header.producer_id, header.producer_epoch, ())
        self._entries[header.producer_id] = entry.with_batch(header, header.base_offset)
        self._changed_since_snapshot = True

    def remove_before(self, offset: int) -> None:
        """Forget producers whose last batch is below the new log start, as Kafka does; they
        may come back with any sequence (see the module rules)."""
        stale = [pid for pid, entry in self._entries.items() if entry.batches and entry.batches[-1].last_offset < offset]
        for producer_id in stale:
            del self._entries[producer_id]
        if stale:
            self._changed_since_snapshot = True

    def clear(self) -> None:
        self._entries = {}
        self._changed_since_snapshot = True

    # ----- snapshots --------------------------------------------------------------------------

    def snapshot_offsets(self) -> list[int]:
        offsets = (parse_snapshot_file_name(name) for name in self._fs.listdir(self._directory))
        return sorted(offset for offset in offsets if offset is not None)

    def _snapshot_path(self, offset: int) -> str:
        return os.path.join(self._directory, snapshot_file_name(offset))

    def take_snapshot(self, offset: int, *, force: bool = False) -> None:
        """Persist the state of every batch below ``offset``; skipped when nothing changed."""
        if not force and not self._changed_since_snapshot and self.snapshot_offset is not None:
            return
        write_file_atomically(self._fs, self._snapshot_path(offset), encode_snapshot(self._entries.values()))
        self.snapshot_offset = offset
        self._changed_since_snapshot = False
        for old in self.snapshot_offsets()[:-SNAPSHOTS_RETAINED]:
            self._fs.remove(self._snapshot_path(old))

    def load(self, log_end_offset: int) -> int | None:
        """Load the newest readable snapshot at or below ``log_end_offset`` (deleting newer and
        unreadable ones); returns its offset, after which the caller replays the log."""
        self._entries = {}
        self.snapshot_offset = None
        for offset in reversed(self.snapshot_offsets()):
            path = self._snapshot_path(offset)
            if offset > log_end_offset:
                self._fs.remove(path)
                continue
            try:
                self._entries = decode_snapshot(read_whole_file(self._fs, path))
            except (OSError, ValueError) as error:
                log.warning("deleting unreadable producer snapshot %s: %s", path, error)
                self._fs.remove(path)
                continue
            self.snapshot_offset = offset
            self._changed_since_snapshot = False
            return offset
        self._changed_since_snapshot = True
        return None

    def delete_snapshots_after(self, offset: int) -> None:
        for snapshot in self.snapshot_offsets():
            if snapshot > offset:
                self._fs.remove(self._snapshot_path(snapshot))


def encode_snapshot(entries) -> bytes:
    body = bytearray()
    count = 0
    for entry in sorted(entries, key=lambda item: item.producer_id):
        if not entry.batches:
            continue
        last = entry.batches[-1]
        body += _SNAPSHOT_ENTRY.pack(entry.producer_id, entry.producer_epoch, last.last_sequence,
                                     last.last_offset, last.last_offset - last.first_offset,
                                     last.timestamp_ms, -1, -1)
        count += 1
    covered = struct.pack(">i", count) + bytes(body)
    return struct.pack(">hI", SNAPSHOT_VERSION, crc32c.crc32c(covered)) + covered


def decode_snapshot(data: bytes) -> dict[int, ProducerEntry]:
    """Raises ValueError on anything but a whole, CRC-valid version-1 snapshot."""
    if len(data) < _SNAPSHOT_HEAD.size or len(data) > SNAPSHOT_BYTES_MAX:
        raise ValueError(f"snapshot of {len(data)} bytes")
    version, crc, count = _SNAPSHOT_HEAD.unpack_from(data)
    if version != SNAPSHOT_VERSION:
        raise ValueError(f"snapshot version {version}, expected {SNAPSHOT_VERSION}")
    if crc32c.crc32c(data[_CRC_START:]) != crc:
        raise ValueError("snapshot CRC mismatch")
    if count < 0 or len(data) != _SNAPSHOT_HEAD.size + count * _SNAPSHOT_ENTRY.size:
        raise ValueError(f"snapshot declares {count} entries in {len(data)} bytes")
    entries = {}
    for fields in _SNAPSHOT_ENTRY.iter_unpack(data[_SNAPSHOT_HEAD.size:]):
        producer_id, epoch, last_sequence, last_offset, offset_delta, timestamp_ms, _, _ = fields
        first_sequence = (last_sequence - offset_delta) % (SEQUENCE_MAX + 1)
        batch = BatchMetadata(first_sequence, last_sequence, last_offset - offset_delta, last_offset, timestamp_ms)
        entries[producer_id] = ProducerEntry(producer_id, epoch, (batch,))
    return entries
