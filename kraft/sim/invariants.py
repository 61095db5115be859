"""The named safety invariants, checked after every event of a simulation.

- SingleLeader: at most one leader id per epoch, across every node's role and every
  election state it persisted.
- MonotonicEpoch: a node's persisted epoch never decreases, even across crashes; its
  in-memory epoch never decreases while it runs and is never behind the persisted one.
- MonotonicHighWatermark: a node's high watermark never decreases while it runs; after a
  restart it starts at its snapshot's end offset and never decreases from there.
- MajorityReachedHighWatermark: the last committed entry (the highest high watermark any
  node has reached) sits, identical, on the fsynced disk of a majority of voters, in
  the log or inside a snapshot. This is "committed data is never lost".
- ConsistentCommittedData: every entry below any node's high watermark, every entry a
  state machine applies and every entry inside any snapshot equals the entry first
  committed at that offset.
- LeaderHasCommittedData: a new leader's log holds every entry committed before it won.
- SnapshotAtLogStart: a node's log starts at 0 or exactly at its latest snapshot's end,
  and a snapshot's id names the epoch of the committed entry it ends with.
"""

from __future__ import annotations

import json

from kraft.raft.core import RaftCore
from kraft.raft.log import Entry, Snapshot
from kraft.raft.roles import ElectionState


class InvariantViolation(AssertionError):
    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"{name}: {detail}")
        self.name = name


def encode_state(entries: list[Entry]) -> bytes:
    """The simulation's state machine, serialized into a snapshot: every committed entry."""
    return json.dumps([[e.offset, e.epoch, e.payload.decode("latin-1"), e.control] for e in entries]).encode()


def decode_state(data: bytes) -> list[Entry]:
    return [Entry(offset, epoch, payload.encode("latin-1"), control)
            for offset, epoch, payload, control in json.loads(data)]


class InvariantChecker:
    def __init__(self, voters: list[int]) -> None:
        self.voters = voters
        self.majority = len(voters) // 2 + 1
        self.committed: list[Entry] = []
        self.leaders: dict[int, int] = {}
        self.leaders_checked: set[int] = set()
        self.durable_epoch: dict[int, int] = {}
        self.memory_epoch: dict[int, int] = {}
        self.high_watermark: dict[int, int] = {}
        self.verified_snapshots: dict[tuple[int, int], bytes] = {}

    # ----- per-node hooks from the simulation ---------------------------------------------

    def node_started(self, node_id: int, core: RaftCore) -> None:
        self.memory_epoch[node_id] = core.epoch
        snapshot = core.log.snapshot
        start = snapshot.snapshot_id.end_offset if snapshot else 0
        if core.high_watermark != start:
            raise InvariantViolation("MonotonicHighWatermark",
                                     f"node {node_id} restarted at {core.high_watermark}, snapshot end {start}")
        self.high_watermark[node_id] = core.high_watermark

    def node_stopped(self, node_id: int) -> None:
        self.memory_epoch.pop(node_id, None)
        self.high_watermark.pop(node_id, None)

    def check_applied(self, node_id: int, entries: tuple[Entry, ...] | list[Entry]) -> None:
        for entry in entries:
            self._same_as_committed("ConsistentCommittedData", node_id, entry, "applied")

    def check_snapshot(self, node_id: int, snapshot: Snapshot) -> None:
        key = (snapshot.snapshot_id.end_offset, snapshot.snapshot_id.epoch)
        if self.verified_snapshots.get(key) == snapshot.data:
            return
        entries = decode_state(snapshot.data)
        end = snapshot.snapshot_id.end_offset
        if [e.offset for e in entries] != list(range(end)):
            raise InvariantViolation("SnapshotAtLogStart", f"node {node_id} snapshot {key} offsets wrong")
        for entry in entries:
            self._same_as_committed("ConsistentCommittedData", node_id, entry, f"in snapshot {key}")
        if entries and entries[-1].epoch != snapshot.snapshot_id.epoch:
            raise InvariantViolation("SnapshotAtLogStart", f"node {node_id} snapshot {key} ends in epoch "
                                     f"{entries[-1].epoch}")
        self.verified_snapshots[key] = snapshot.data

    # ----- after every event --------------------------------------------------------------

    def check(self, running: dict[int, RaftCore], durable_states: dict[int, ElectionState | None],
              durable_images: dict) -> None:
        for node_id, state in durable_states.items():
            self._check_durable_state(node_id, state)
        for node_id, core in running.items():
            self._check_running(node_id, core)
        self._check_committed_durable(durable_images)

    def _check_durable_state(self, node_id: int, state: ElectionState | None) -> None:
        if state is None:
            return
        if state.epoch < self.durable_epoch.get(node_id, 0):
            raise InvariantViolation("MonotonicEpoch", f"node {node_id} persisted epoch {state.epoch} "
                                     f"after {self.durable_epoch[node_id]}")
        self.durable_epoch[node_id] = state.epoch
        if state.leader_id is not None:
            self._one_leader(state.epoch, state.leader_id, f"persisted by node {node_id}")

    def _check_running(self, node_id: int, core: RaftCore) -> None:
        epoch = core.epoch
        if epoch < self.memory_epoch.get(node_id, 0) or epoch < self.durable_epoch.get(node_id, 0):
            raise InvariantViolation("MonotonicEpoch", f"node {node_id} at epoch {epoch}, was "
                                     f"{self.memory_epoch.get(node_id)}, persisted {self.durable_epoch.get(node_id)}")
        self.memory_epoch[node_id] = epoch
        if core.leader_id is not None:
            self._one_leader(epoch, core.leader_id, f"seen by node {node_id} ({core.role.name})")
            if core.is_leader and epoch not in self.leaders_checked:
                self.leaders_checked.add(epoch)  # first sight of this leader: check completeness
                self._leader_has_committed(node_id, core)
        self.record_high_watermark(node_id, core)
        snapshot = core.log.snapshot
        if core.log.start_offset != (snapshot.snapshot_id.end_offset if snapshot else 0):
            raise InvariantViolation("SnapshotAtLogStart", f"node {node_id} log starts at "
                                     f"{core.log.start_offset}, snapshot {snapshot and snapshot.snapshot_id}")
        if snapshot is not None:
            self.check_snapshot(node_id, snapshot)

    def _one_leader(self, epoch: int, leader_id: int, where: str) -> None:
        known = self.leaders.setdefault(epoch, leader_id)
        if known != leader_id:
            raise InvariantViolation("SingleLeader", f"epoch {epoch} has leaders {known} and {leader_id} ({where})")

    def record_high_watermark(self, node_id: int, core: RaftCore) -> None:
        """Entries newly below the node's high watermark join (or must equal) the committed ones."""
        previous = self.high_watermark.get(node_id, 0)
        high_watermark = core.high_watermark
        if high_watermark < previous:
            raise InvariantViolation("MonotonicHighWatermark",
                                     f"node {node_id} high watermark {previous} -> {high_watermark}")
        for offset in range(max(previous, core.log.start_offset), high_watermark):
            entry = core.log.entries[offset - core.log.start_offset]
            if offset == len(self.committed):
                self.committed.append(entry)
            else:
                self._same_as_committed("ConsistentCommittedData", node_id, entry, "below its high watermark")
        if high_watermark > len(self.committed):
            raise InvariantViolation("ConsistentCommittedData", f"node {node_id} high watermark "
                                     f"{high_watermark} beyond everything committed ({len(self.committed)})")
        self.high_watermark[node_id] = high_watermark

    def _same_as_committed(self, name: str, node_id: int, entry: Entry, where: str) -> None:
        if entry.offset >= len(self.committed):
            raise InvariantViolation(name, f"node {node_id} has {entry} {where}, not committed")
        expected = self.committed[entry.offset]
        if entry != expected:
            raise InvariantViolation(name, f"node {node_id} has {entry} {where}; committed was {expected}")

    def _leader_has_committed(self, node_id: int, core: RaftCore) -> None:
        if not self.committed:
            return
        last = self.committed[-1]
        snapshot = core.log.snapshot
        if snapshot is not None and snapshot.snapshot_id.end_offset > last.offset:
            return
        if core.log.end_offset <= last.offset or core.log.entries[last.offset - core.log.start_offset] != last:
            raise InvariantViolation("LeaderHasCommittedData",
                                     f"node {node_id} leads epoch {core.epoch} without committed {last}")

    def _check_committed_durable(self, durable_images: dict) -> None:
        if not self.committed:
            return
        last = self.committed[-1]
        holders = [node_id for node_id in self.voters if _holds(durable_images[node_id], last)]
        if len(holders) < self.majority:
            raise InvariantViolation("MajorityReachedHighWatermark",
                                     f"committed {last} is durable only on voters {holders}")


def _holds(image, entry: Entry) -> bool:
    if any(snapshot_id.end_offset > entry.offset for snapshot_id in image.snapshots):
        return True  # the snapshot's content is checked against the committed entries
    index = entry.offset - image.log_start_offset
    return 0 <= index < len(image.entries) and image.entries[index] == entry
