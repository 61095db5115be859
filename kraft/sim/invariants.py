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
- ConsistentCommittedData: every entry below any node's high watermark and every entry a
  state machine applies equals the entry first committed at that offset.
- ConsistentImages: a node's metadata image after it applied up to offset N, or loaded a
  snapshot ending at N + 1, equals the image the committed entries up to N build, applied
  one at a time by a reference ``MetadataLoader``: so batching, snapshots and their
  decoding never change what a broker would serve.
- WholeWrites: a controller write (the records of one request) is committed whole or not
  at all, and no node's image ever holds part of one: the entry committed after a write's
  first entry is its next one, and a node never stops applying inside a write.
- LeaderHasCommittedData: a new leader's log holds every entry committed before it won.
- SnapshotAtLogStart: a node's log starts at 0 or exactly at its latest snapshot's end,
  and a snapshot's id names the epoch of the committed entry it ends with.
"""

from __future__ import annotations

from kraft.metadata import MetadataImage, MetadataLoader
from kraft.metadata.snapshot import decode_snapshot
from kraft.raft.core import RaftCore
from kraft.raft.log import Entry, Snapshot
from kraft.raft.roles import ElectionState


class InvariantViolation(AssertionError):
    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"{name}: {detail}")
        self.name = name


class InvariantChecker:
    def __init__(self, voters: list[int]) -> None:
        self.voters = voters
        self.majority = len(voters) // 2 + 1
        self.committed: list[Entry] = []
        self.reference = MetadataLoader()
        self.images: list[MetadataImage] = []  # the reference image after each committed offset
        self.leaders: dict[int, int] = {}
        self.leaders_checked: set[int] = set()
        self.durable_epoch: dict[int, int] = {}
        self.memory_epoch: dict[int, int] = {}
        self.high_watermark: dict[int, int] = {}
        self.verified_snapshots: dict[tuple[int, int], bytes] = {}
        self.writes: dict[tuple[int, int], tuple[int, bool]] = {}  # (offset, epoch) -> (write, is last)
        self._write_count = 0

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
        self._check_whole_write(node_id, entries[-1], "stopped applying at")

    def write_appended(self, first_offset: int, last_offset: int, epoch: int) -> None:
        """A leader appended one controller write at these offsets."""
        self._write_count += 1
        for offset in range(first_offset, last_offset + 1):
            self.writes[(offset, epoch)] = (self._write_count, offset == last_offset)

    def _check_whole_write(self, node_id: int, entry: Entry, how: str) -> None:
        write = self.writes.get((entry.offset, entry.epoch))
        if write is not None and not write[1]:
            raise InvariantViolation("WholeWrites", f"node {node_id} {how} {entry}, inside write {write[0]}")

    def check_image(self, node_id: int, image: MetadataImage, how: str) -> None:
        offset = image.offset
        if offset < 0:
            return
        if offset >= len(self.images):
            raise InvariantViolation("ConsistentImages", f"node {node_id} {how} an image at offset {offset}, "
                                     f"beyond everything committed ({len(self.images)})")
        expected = self.images[offset]
        if image != expected:
            raise InvariantViolation("ConsistentImages", f"node {node_id} {how} an image at offset {offset} "
                                     f"that differs from the committed one: {_image_difference(image, expected)}")

    def check_snapshot(self, node_id: int, snapshot: Snapshot) -> None:
        key = (snapshot.snapshot_id.end_offset, snapshot.snapshot_id.epoch)
        if self.verified_snapshots.get(key) == snapshot.data:
            return
        end = snapshot.snapshot_id.end_offset
        if end > len(self.committed):
            raise InvariantViolation("SnapshotAtLogStart", f"node {node_id} snapshot {key} ends beyond "
                                     f"everything committed ({len(self.committed)})")
        if end and self.committed[end - 1].epoch != snapshot.snapshot_id.epoch:
            raise InvariantViolation("SnapshotAtLogStart", f"node {node_id} snapshot {key} ends with an entry "
                                     f"of epoch {self.committed[end - 1].epoch}")
        if end:
            self.check_image(node_id, decode_snapshot(snapshot.data, end - 1), f"has in snapshot {key}")
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
                if self.committed:
                    self._check_continues(node_id, self.committed[-1], entry)
                self.committed.append(entry)
                self.reference.apply_entries([entry])
                self.images.append(self.reference.image)
            else:
                self._same_as_committed("ConsistentCommittedData", node_id, entry, "below its high watermark")
        if high_watermark > len(self.committed):
            raise InvariantViolation("ConsistentCommittedData", f"node {node_id} high watermark "
                                     f"{high_watermark} beyond everything committed ({len(self.committed)})")
        self.high_watermark[node_id] = high_watermark

    def _check_continues(self, node_id: int, previous: Entry, entry: Entry) -> None:
        write = self.writes.get((previous.offset, previous.epoch))
        if write is not None and not write[1] and self.writes.get((entry.offset, entry.epoch), (None,))[0] != write[0]:
            raise InvariantViolation("WholeWrites", f"node {node_id} committed {entry} after {previous}, "
                                     f"a part of write {write[0]} whose rest is lost")

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


def _image_difference(image: MetadataImage, expected: MetadataImage) -> str:
    for name in MetadataImage.__dataclass_fields__:
        got, wanted = getattr(image, name), getattr(expected, name)
        if got != wanted:
            return f"{name} is {got!r}, committed {wanted!r}"
    return "no field differs"
