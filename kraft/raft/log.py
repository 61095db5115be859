"""The Raft core's in-memory model of the replicated log and its latest snapshot.

Rules:
- Offsets are dense: the entry at offset ``o`` is ``entries[o - start_offset]``; the log end
  offset is exclusive. Epochs never decrease along the log.
- A snapshot ``<end_offset>-<epoch>`` (KIP-630) holds the state after every entry below
  ``end_offset``; ``epoch`` is the epoch of the entry at ``end_offset - 1``. Taking or
  installing a snapshot cuts the log start to its end offset, so ``start_offset`` is 0 or
  the latest snapshot's end offset, and the snapshot stands in for the entry before it.
- ``truncate_to`` drops a suffix (divergence); it never goes below the log start.
- ``validate_fetch`` is the leader's answer to a follower's (fetch offset, last fetched
  epoch): VALID, DIVERGING (with the leader's end offset for the largest epoch <= the
  follower's) or SNAPSHOT (the follower must first fetch the latest snapshot).

This model is mutated only by the core that owns it; the driver mirrors its changes to
disk from the core's ``Ready`` batches and rebuilds it with ``RaftLog.restore`` at start-up.
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Entry:
    offset: int
    epoch: int
    payload: bytes
    control: bool = False


@dataclass(frozen=True, slots=True, order=True)
class SnapshotId:
    end_offset: int
    epoch: int

    @property
    def file_name(self) -> str:
        """Kafka's ``<offset>-<epoch>.checkpoint`` name, zero-padded as Kafka does."""
        return f"{self.end_offset:020d}-{self.epoch:010d}.checkpoint"


@dataclass(frozen=True, slots=True)
class Snapshot:
    snapshot_id: SnapshotId
    data: bytes


class FetchValidity(enum.Enum):
    VALID = "valid"
    DIVERGING = "diverging"
    SNAPSHOT = "snapshot"


class RaftLog:
    def __init__(self) -> None:
        self.start_offset = 0
        self.entries: list[Entry] = []
        self.snapshot: Snapshot | None = None
        # (epoch, first offset) for every epoch that starts inside the retained log, as
        # Kafka's leader-epoch cache; kept in step with ``entries``.
        self._epoch_starts: list[tuple[int, int]] = []

    @classmethod
    def restore(cls, snapshot: Snapshot | None, entries: list[Entry]) -> "RaftLog":
        """The log as a driver reads it back from disk: entries from the disk's log start,
        then the latest durable snapshot, which drops the entries it disagrees with."""
        log = cls()
        if entries:
            log.start_offset = entries[0].offset
        for entry in entries:
            log.append(entry)
        if snapshot is not None:
            log.install_snapshot(snapshot)
        assert log.start_offset == 0 or log.snapshot is not None, "log cut without a snapshot"
        return log

    @property
    def end_offset(self) -> int:
        return self.start_offset + len(self.entries)

    @property
    def last_epoch(self) -> int:
        if self.entries:
            return self.entries[-1].epoch
        return self.snapshot.snapshot_id.epoch if self.snapshot else 0

    def epoch_at(self, offset: int) -> int | None:
        """Epoch of the entry at ``offset``, including the one the snapshot stands in for."""
        if self.start_offset <= offset < self.end_offset:
            return self.entries[offset - self.start_offset].epoch
        if self.snapshot and offset == self.snapshot.snapshot_id.end_offset - 1:
            return self.snapshot.snapshot_id.epoch
        return None

    def read(self, offset: int, limit: int) -> tuple[Entry, ...]:
        assert self.start_offset <= offset <= self.end_offset, (offset, self.start_offset)
        first = offset - self.start_offset
        return tuple(self.entries[first:first + limit])

    def append(self, entry: Entry) -> None:
        assert entry.offset == self.end_offset, f"append at {entry.offset}, end {self.end_offset}"
        assert entry.epoch >= self.last_epoch, f"epoch {entry.epoch} after {self.last_epoch}"
        if not self._epoch_starts or self._epoch_starts[-1][0] != entry.epoch:
            self._epoch_starts.append((entry.epoch, entry.offset))
        self.entries.append(entry)

    def truncate_to(self, offset: int) -> None:
        assert offset >= self.start_offset, f"truncate to {offset} below start {self.start_offset}"
        del self.entries[offset - self.start_offset:]
        while self._epoch_starts and self._epoch_starts[-1][1] >= offset:
            self._epoch_starts.pop()

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """(e, end) for the largest epoch e <= ``epoch`` in the log: end is where the next
        epoch starts, or the log end. Below every retained epoch: the snapshot's id, or
        (0, 0) for an empty log history."""
        starts = [e for e, _ in self._epoch_starts]
        index = bisect.bisect_right(starts, epoch) - 1
        if index < 0:
            if self.snapshot is not None:
                return self.snapshot.snapshot_id.epoch, self.snapshot.snapshot_id.end_offset
            return 0, 0
        found_epoch = self._epoch_starts[index][0]
        if index + 1 < len(self._epoch_starts):
            return found_epoch, self._epoch_starts[index + 1][1]
        return found_epoch, self.end_offset

    def validate_fetch(self, fetch_offset: int, last_fetched_epoch: int
                       ) -> tuple[FetchValidity, tuple[int, int] | None]:
        snapshot_id = self.snapshot.snapshot_id if self.snapshot else None
        if snapshot_id is not None and (
                fetch_offset < snapshot_id.end_offset
                or (fetch_offset == snapshot_id.end_offset and last_fetched_epoch != snapshot_id.epoch)
                or last_fetched_epoch < snapshot_id.epoch):
            return FetchValidity.SNAPSHOT, None
        if fetch_offset == 0 and snapshot_id is None:
            return FetchValidity.VALID, None
        epoch, end_offset = self.end_offset_for_epoch(last_fetched_epoch)
        if epoch != last_fetched_epoch or end_offset < fetch_offset:
            return FetchValidity.DIVERGING, (epoch, end_offset)
        return FetchValidity.VALID, None

    def truncation_offset_for(self, epoch: int, end_offset: int) -> int:
        """Where a follower truncates on a DivergingEpoch(epoch, end_offset) answer: the
        smaller of the leader's end for that epoch and its own end for it."""
        own_epoch, own_end = self.end_offset_for_epoch(epoch)
        return max(self.start_offset, min(end_offset, own_end))

    def install_snapshot(self, snapshot: Snapshot) -> None:
        """Make ``snapshot`` the latest and cut the log start to its end offset. Entries
        after it survive only when the log agrees with it on the entry it stands in for."""
        snapshot_id = snapshot.snapshot_id
        assert self.snapshot is None or snapshot_id > self.snapshot.snapshot_id
        end = snapshot_id.end_offset
        keep = self.start_offset <= end <= self.end_offset and (
            end == self.start_offset or self.epoch_at(end - 1) == snapshot_id.epoch)
        if keep:
            del self.entries[:snapshot_id.end_offset - self.start_offset]
        else:
            self.entries = []
        self.start_offset = snapshot_id.end_offset
        self.snapshot = snapshot
        self._epoch_starts = []
        for entry in self.entries:
            if not self._epoch_starts or self._epoch_starts[-1][0] != entry.epoch:
                self._epoch_starts.append((entry.epoch, entry.offset))
