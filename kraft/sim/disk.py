"""A simulated disk for one node: what was written, and what of it was fsynced.

Rules:
- Every write (the quorum-state file, a snapshot file, cutting the log start, truncating or
  appending to the log) lands in a volatile list of operations; ``fsync`` applies them, in
  order, to the durable image.
- ``crash`` keeps a random prefix of the unsynced operations (a torn tail: some writes may
  have reached the platter before the power went) and forgets the rest. Nothing that was
  fsynced is ever lost.
- The image is checked on both sides: an append must land at the log end, and what is
  read back at start-up is rebuilt through ``RaftLog.restore``, which asserts its shape.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from kraft.raft.log import Entry, RaftLog, Snapshot, SnapshotId
from kraft.raft.ready import Ready
from kraft.raft.roles import ElectionState


@dataclass(slots=True)
class DiskImage:
    election_state: ElectionState | None = None
    log_start_offset: int = 0
    entries: list[Entry] = field(default_factory=list)
    snapshots: dict[SnapshotId, bytes] = field(default_factory=dict)

    @property
    def log_end_offset(self) -> int:
        return self.log_start_offset + len(self.entries)

    def latest_snapshot(self) -> Snapshot | None:
        if not self.snapshots:
            return None
        snapshot_id = max(self.snapshots)
        return Snapshot(snapshot_id, self.snapshots[snapshot_id])

    def apply(self, operation: tuple) -> None:
        kind, value = operation
        if kind == "state":
            self.election_state = value
        elif kind == "snapshot":
            self.snapshots[value.snapshot_id] = value.data
        elif kind == "start":
            drop = max(0, min(len(self.entries), value - self.log_start_offset))
            del self.entries[:drop]
            self.log_start_offset = max(self.log_start_offset, value)
            if not self.entries:
                self.log_start_offset = value
        elif kind == "truncate":
            del self.entries[max(0, value - self.log_start_offset):]
        elif kind == "append":
            assert value.offset == self.log_end_offset, \
                f"disk append at {value.offset}, log end {self.log_end_offset}"
            self.entries.append(value)
        else:
            raise AssertionError(f"unknown disk operation {kind}")

    def copy(self) -> "DiskImage":
        return DiskImage(self.election_state, self.log_start_offset, list(self.entries),
                         dict(self.snapshots))


class SimDisk:
    def __init__(self) -> None:
        self.durable = DiskImage()
        self.unsynced: list[tuple] = []
        self.version = 0  # bumps whenever the durable image changes

    def write_ready(self, ready: Ready) -> bool:
        """Writes what ``ready`` asks for, in its contract's order; True if anything was."""
        operations: list[tuple] = []
        if ready.election_state is not None:
            operations.append(("state", ready.election_state))
        if ready.snapshot is not None:
            operations.append(("snapshot", ready.snapshot))
            operations.append(("start", ready.log_start_offset))
        if ready.truncate_to is not None:
            operations.append(("truncate", ready.truncate_to))
        operations += [("append", entry) for entry in ready.entries]
        self.unsynced += operations
        return bool(operations)

    def write_unsynced(self, ready: Ready, log: RaftLog) -> bool:
        """``ReadyRunner``'s disk: steps 1-4 land unsynced; an fsync is owed if anything did."""
        return self.write_ready(ready)

    def sync(self) -> None:
        self.fsync()

    def fsync(self) -> None:
        for operation in self.unsynced:
            self.durable.apply(operation)
        if self.unsynced:
            self.version += 1
        self.unsynced = []

    def crash(self, rng: random.Random) -> int:
        """Loses the unsynced writes but a random prefix; returns how many were lost."""
        kept = rng.randint(0, len(self.unsynced))
        lost = len(self.unsynced) - kept
        self.unsynced = self.unsynced[:kept]
        self.fsync()
        return lost

    def load(self) -> tuple[ElectionState | None, RaftLog]:
        """The election state and log as a restarting node reads them. Recovery finishes
        what a crash interrupted: when the latest snapshot was durable but cutting the log
        to it was not, the log is cut (and, if it disagrees, emptied) here, durably, as
        the log the core restores from says it should be."""
        assert not self.unsynced, "load after a crash or a clean stop only"
        image = self.durable
        log = RaftLog.restore(image.latest_snapshot(), list(image.entries))
        if (log.start_offset, log.end_offset) != (image.log_start_offset, image.log_end_offset):
            self.unsynced = [("start", log.start_offset), ("truncate", log.end_offset)]
            self.fsync()
            assert (image.log_start_offset, image.log_end_offset) == (log.start_offset, log.end_offset)
        return image.election_state, log
