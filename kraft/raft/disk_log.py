"""The durable side of the Raft log: ``__cluster_metadata-0`` on disk, mirrored from the
core's in-memory ``RaftLog``.

The core owns a concrete ``RaftLog`` and mutates it itself (append, truncate, install a
snapshot); it tells its driver what changed through ``Ready``. So this module is not a
second log implementation behind an interface: the ``RaftLog`` stays the core's view, and
``DiskRaftLog.write(ready, log)`` makes the disk say the same, in ``Ready``'s order.

Rules:
- ``quorum-state``: Kafka's QuorumStateData v1 as JSON (leaderId, leaderEpoch, votedId,
  votedDirectoryId, data_version 1), written atomically (temp, fsync, rename, fsync dir)
  before anything else of a Ready. -1 means "none" as in Kafka; a v0 file or a null
  directory id (the single-voter quorum wrote those) is read too.
- Snapshots: ``<end_offset:020d>-<epoch:010d>.checkpoint`` holding the snapshot's bytes
  verbatim, written atomically (the 0-0 one is format's bootstrap checkpoint, not ours); older checkpoints are removed once the new one is
  durable, and only then is the log start moved up to its end offset.
- Entries: record batches in a ``storage.PartitionLog`` (mapping in ``batches.py``),
  appended with their offsets and epochs. After a truncation the disk must hold exactly
  the core's log: ``PartitionLog.truncate_to`` drops a whole batch holding the offset, so
  the entries of that batch below it are appended again from the core's log. ``flush``
  when the Ready says ``must_sync`` (truncations fsync on their own).
- Recovery (``load``): the latest checkpoint, then every CRC-valid batch
  (``PartitionLog.open`` cuts a torn tail), rebuilt with ``RaftLog.restore``, which drops
  entries that disagree with the snapshot; the disk is then made to match that log (a
  crash may have left a snapshot written but the log not yet cut or restarted).
- An unreadable ``quorum-state`` or snapshot stops start-up with ``DiskLogError``: a
  replica that forgot its vote could vote twice in one epoch.
"""

from __future__ import annotations

import json
import os
import re
import uuid

from protocol.uuids import uuid_to_text
from storage.config import LogConfig
from storage.fs import REAL_FILE_SYSTEM, FileSystem, read_whole_file, write_file_atomically
from storage.log import PartitionLog

from .batches import decode_entries, encode_entries
from .log import Entry, RaftLog, Snapshot, SnapshotId
from .ready import Ready
from .roles import ElectionState

METADATA_PARTITION = "__cluster_metadata-0"
QUORUM_STATE_FILE = "quorum-state"
QUORUM_STATE_VERSION = 1
QUORUM_STATE_BYTES_MAX = 64 << 10
SNAPSHOT_BYTES_MAX = 1 << 30
READ_CHUNK_BYTES = 1 << 20
NO_ID = -1
_CHECKPOINT_NAME = re.compile(r"^(\d{20})-(\d{10})\.checkpoint$")
# Kafka's bootstrap checkpoint (end offset 0, epoch 0): written by ``kafka-storage format``
# with the voters of a standalone quorum, not by the log; it holds no image, so it is
# neither loaded as a snapshot nor removed when newer snapshots supersede the older ones.
BOOTSTRAP_CHECKPOINT_NAME = "00000000000000000000-0000000000.checkpoint"
_TEMP_SUFFIXES = (".checkpoint.tmp", ".checkpoint.part")


class DiskLogError(Exception):
    """The metadata log directory cannot be trusted; the node must not start."""


def encode_uuid(value: uuid.UUID | None) -> str:
    """Kafka's Uuid.toString: URL-safe base64 of the 16 bytes, unpadded (zero for none)."""
    return uuid_to_text(value)


def encode_quorum_state(state: ElectionState, voted_directory_id: uuid.UUID | None = None) -> bytes:
    document = {
        "leaderId": NO_ID if state.leader_id is None else state.leader_id,
        "leaderEpoch": state.epoch,
        "votedId": NO_ID if state.voted_id is None else state.voted_id,
        "votedDirectoryId": encode_uuid(voted_directory_id),
        "data_version": QUORUM_STATE_VERSION,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def decode_quorum_state(data: bytes) -> ElectionState:
    document = json.loads(data)
    if document.get("data_version", 0) not in (0, 1):
        raise ValueError(f"unknown data_version {document.get('data_version')!r}")
    epoch, leader_id = int(document["leaderEpoch"]), int(document["leaderId"])
    voted_id = int(document.get("votedId", NO_ID))
    if epoch < 0:
        raise ValueError(f"negative epoch {epoch}")
    return ElectionState(epoch, None if leader_id < 0 else leader_id, None if voted_id < 0 else voted_id)


class DiskRaftLog:
    def __init__(self, directory: str, fs: FileSystem, config: LogConfig, log: PartitionLog) -> None:
        self.directory = directory
        self._fs = fs
        self._config = config
        self._log = log
        self._closed = False

    @classmethod
    def open(cls, directory: str, *, fs: FileSystem = REAL_FILE_SYSTEM,
             config: LogConfig | None = None) -> "DiskRaftLog":
        """Open (creating) ``directory`` (the ``__cluster_metadata-0`` folder); call
        ``load`` next to learn what survived."""
        if not fs.exists(directory):
            fs.make_directory(directory)
        for name in fs.listdir(directory):
            if name.endswith(_TEMP_SUFFIXES):
                fs.remove(os.path.join(directory, name))  # an interrupted atomic write
        config = config or LogConfig()
        return cls(directory, fs, config, PartitionLog.open(directory, config, fs))

    @property
    def log_start_offset(self) -> int:
        return self._log.log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self._log.log_end_offset

    # ----- recovery -----------------------------------------------------------------------

    def load(self) -> tuple[ElectionState | None, RaftLog]:
        """The election state and the log as they survived, the disk made to agree."""
        state = self._read_quorum_state()
        log = RaftLog.restore(self._latest_snapshot(), self._read_entries())
        if log.entries:
            assert self._log.log_end_offset == log.end_offset, (self._log, log.end_offset)
        elif self._log.log_end_offset != log.start_offset:
            self._reset_at(log.start_offset)  # the snapshot replaced every entry
        self._cut_start(log.start_offset)
        return state, log

    def _read_quorum_state(self) -> ElectionState | None:
        path = os.path.join(self.directory, QUORUM_STATE_FILE)
        if not self._fs.exists(path):
            return None
        try:
            data = read_whole_file(self._fs, path)
            if len(data) > QUORUM_STATE_BYTES_MAX:
                raise ValueError(f"{len(data)} bytes")
            return decode_quorum_state(data)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DiskLogError(f"unreadable {path}: {error}") from error

    def snapshot_ids(self) -> list[SnapshotId]:
        ids = []
        for name in self._fs.listdir(self.directory):
            match = _CHECKPOINT_NAME.match(name)
            if match and name != BOOTSTRAP_CHECKPOINT_NAME:
                ids.append(SnapshotId(int(match.group(1)), int(match.group(2))))
        return sorted(ids)

    def _latest_snapshot(self) -> Snapshot | None:
        ids = self.snapshot_ids()
        if not ids:
            return None
        path = os.path.join(self.directory, ids[-1].file_name)
        try:
            data = read_whole_file(self._fs, path)
        except OSError as error:
            raise DiskLogError(f"unreadable snapshot {path}: {error}") from error
        if len(data) > SNAPSHOT_BYTES_MAX:
            raise DiskLogError(f"snapshot {path} holds {len(data)} bytes, more than {SNAPSHOT_BYTES_MAX}")
        return Snapshot(ids[-1], data)

    def _read_entries(self) -> list[Entry]:
        entries: list[Entry] = []
        offset, end = self._log.log_start_offset, self._log.log_end_offset
        while offset < end:
            data = self._log.read(offset, READ_CHUNK_BYTES).records
            if not data:
                break
            try:
                batch_entries = decode_entries(data)
            except ValueError as error:
                raise DiskLogError(f"metadata log batch at offset {offset} is unreadable: {error}") from error
            entries += [entry for entry in batch_entries if entry.offset >= offset]
            offset = batch_entries[-1].offset + 1
        for before, after in zip(entries, entries[1:]):
            if after.offset != before.offset + 1:
                raise DiskLogError(f"metadata log has a gap between offsets {before.offset} and {after.offset}")
        return entries

    # ----- mirroring a Ready --------------------------------------------------------------

    def write(self, ready: Ready, log: RaftLog) -> None:
        """Steps 1-4 of the Ready contract, the fsync included; ``log`` is the core's log as
        of this Ready (the core is not stepped between ``ready()`` and ``advance()``)."""
        if self.write_unsynced(ready, log):
            self.sync()

    def sync(self) -> None:
        """The fsync that ``write_unsynced`` left owed."""
        self._log.flush()

    def write_unsynced(self, ready: Ready, log: RaftLog) -> bool:
        """Steps 1-4 but the log's fsync (quorum-state, snapshots and truncations are durable
        on their own); True when that fsync is owed before step 5."""
        if ready.election_state is not None:
            self.write_election_state(ready.election_state)
        if ready.snapshot is not None:
            self.write_snapshot(ready.snapshot)
            self._cut_start(ready.log_start_offset)
        if ready.truncate_to is not None:
            self._log.truncate_to(ready.truncate_to)
        if ready.entries:
            assert self._log.log_end_offset <= ready.entries[0].offset, \
                (self._log.log_end_offset, ready.entries[0])
        self._catch_up(log)
        assert self._log.log_end_offset == log.end_offset, (self._log, log.end_offset)
        return ready.must_sync

    def write_election_state(self, state: ElectionState) -> None:
        path = os.path.join(self.directory, QUORUM_STATE_FILE)
        write_file_atomically(self._fs, path, encode_quorum_state(state))

    def write_snapshot(self, snapshot: Snapshot) -> None:
        assert len(snapshot.data) <= SNAPSHOT_BYTES_MAX, len(snapshot.data)
        write_file_atomically(self._fs, os.path.join(self.directory, snapshot.snapshot_id.file_name),
                              snapshot.data)
        for older in self.snapshot_ids():
            if older < snapshot.snapshot_id:
                self._fs.remove(os.path.join(self.directory, older.file_name))
        self._fs.fsync_directory(self.directory)

    def _cut_start(self, offset: int) -> None:
        """The log before ``offset`` is covered by a durable snapshot: let it go."""
        if offset > self._log.log_end_offset:
            self._reset_at(offset)
        elif offset > self._log.log_start_offset:
            self._log.delete_records_before(offset)

    def _reset_at(self, offset: int) -> None:
        """An empty log that starts at ``offset`` (Kafka's truncateFullyAndStartAt)."""
        if offset <= self._log.log_end_offset:
            self._log.delete_records_before(offset)
            self._log.truncate_to(offset)
        else:
            self._log.close()
            self._log = PartitionLog.open(self.directory, self._config, self._fs, log_start_offset=offset)
        self._log.flush()
        assert self._log.log_start_offset == self._log.log_end_offset == offset, self._log

    def _catch_up(self, log: RaftLog) -> None:
        """Append what the core's log holds past the disk's end: the Ready's entries, and
        any entries a whole-batch truncation took along."""
        end = self._log.log_end_offset
        assert end <= log.end_offset, f"disk log ends at {end}, past the core's {log.end_offset}"
        if end < log.start_offset:
            self._reset_at(log.start_offset)
            end = log.start_offset
        missing = log.read(end, log.end_offset - end)
        if missing:
            self._log.append_with_offsets(encode_entries(missing))

    def close(self) -> None:
        """Flush and close; a second close does nothing."""
        if not self._closed:
            self._closed = True
            self._log.close()
