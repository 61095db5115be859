"""A simulated node's disk: its real ``DiskRaftLog`` over ``storage.sim_fs.SimFileSystem``,
and the durable view the invariants read after every event.

Rules:
- The bytes, recovery and crash handling are the running node's own (``DiskRaftLog``);
  ``SimFileSystem`` makes durable only what was fsynced, and a crash (``lose``, or ``torn``
  inside the last write) drops the rest.
- ``DiskImage`` is the view the invariants check: the election state as written and the log
  as of its last completed fsync, a lower bound of what a crash keeps, maintained without
  reading the disk each event; after a restart it is what recovery read.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from kraft.raft.disk_log import DiskRaftLog
from kraft.raft.log import Entry, RaftLog, SnapshotId
from kraft.raft.ready import Ready
from kraft.raft.roles import ElectionState
from storage.sim_fs import SimFileSystem


@dataclass(slots=True)
class DiskImage:
    election_state: ElectionState | None = None
    log_start_offset: int = 0
    entries: list[Entry] = field(default_factory=list)
    snapshots: dict[SnapshotId, bytes] = field(default_factory=dict)

    @property
    def log_end_offset(self) -> int:
        return self.log_start_offset + len(self.entries)

    def apply(self, ready: Ready) -> None:
        """What ``ready`` wrote, in its contract's order (incremental: no copy of the log)."""
        if ready.election_state is not None:
            self.election_state = ready.election_state
        if ready.snapshot is not None:
            self.snapshots[ready.snapshot.snapshot_id] = ready.snapshot.data
            start = ready.log_start_offset
            del self.entries[:max(0, min(len(self.entries), start - self.log_start_offset))]
            self.log_start_offset = max(self.log_start_offset, start) if self.entries else start
        if ready.truncate_to is not None:
            del self.entries[max(0, ready.truncate_to - self.log_start_offset):]
        for entry in ready.entries:
            assert entry.offset == self.log_end_offset, f"disk append at {entry.offset}, log end {self.log_end_offset}"
            self.entries.append(entry)


class SimRaftDisk:
    """A node's real disk log, ``DiskRaftLog``, over ``storage.sim_fs.SimFileSystem``: the
    simulation runs the same bytes, recovery and crash handling as a running node.

    ``durable`` is what the invariants read each event, kept without reading the disk: the
    election state as written (quorum-state is written durably at once) and the log as of
    its last completed fsync, a lower bound of what a crash keeps. A crash is the file
    system's power loss (``lose``, or ``torn`` within the last write, drawn from the
    simulation's seed); a restart reopens the directory and recovers, and what it reads
    becomes the durable view."""

    DIRECTORY = "/node/__cluster_metadata-0"

    def __init__(self, seed: int) -> None:
        self.fs = SimFileSystem(seed)
        self.durable = DiskImage()
        self._log: DiskRaftLog | None = None
        self._owed: list[Ready] = []  # written, waiting for the fsync

    def write_unsynced(self, ready: Ready, log: RaftLog) -> bool:
        owed = self._log.write_unsynced(ready, log)
        if owed:
            self._owed.append(ready)
        else:
            self.durable.apply(ready)  # nothing waits for an fsync: what was written is durable
        return owed

    def sync(self) -> None:
        self._log.sync()
        for ready in self._owed:
            self.durable.apply(ready)
        self._owed = []

    def crash(self, rng: random.Random) -> None:
        self.fs.crash(rng.choice(("lose", "torn")))
        self._log = None
        self._owed = []

    def load(self) -> tuple[ElectionState | None, RaftLog]:
        if self._log is not None:
            self._log.close()
        self._log = DiskRaftLog.open(self.DIRECTORY, fs=self.fs)
        state, log = self._log.load()
        snapshots = {} if log.snapshot is None else {log.snapshot.snapshot_id: log.snapshot.data}
        self.durable = DiskImage(state, log.start_offset, list(log.entries), snapshots)
        return state, log
