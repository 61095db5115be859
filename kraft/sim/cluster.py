"""A whole KRaft cluster in one process, on a virtual clock, deterministic from a seed.

Rules:
- One discrete-event loop: a priority queue of (time_ms, sequence, event). Events are
  message deliveries, node ticks (at each core's ``next_deadline_ms``), fsync completions,
  client appends and faults. Nothing else moves time, so a seed replays a run exactly.
- Each node drives its ``RaftCore`` with the driver's own ``ReadyRunner``: after every
  tick, message or append it takes the core's ``Ready`` and persists it to the simulated
  disk, waits a random fsync latency, then completes it (fsync, send the messages, apply
  committed entries to its state machine, ``advance``). While a Ready is in flight the node queues its input, so
  the core is never stepped between ``ready()`` and ``advance()``.
- The state machine is the node's own ``MetadataLoader`` (kraft.metadata): committed
  entries are metadata records that clients' requests turned into through the
  controller's record logic (``workload.py``), and every ``snapshot_every`` applied entries
  the node snapshots its image (``encode_snapshot``) through ``create_snapshot``, which cuts
  the log; a node that loads a snapshot decodes it into its image.
- Each node's disk is its real ``DiskRaftLog`` over ``storage.sim_fs.SimFileSystem``. A
  crash drops the node's queued input and in-flight Ready and keeps only what the disk had
  fsynced (the file system may tear the last write); a restart recovers the log from those
  bytes and rebuilds the core from it.
- The invariants (``invariants.py``) are checked after every event.
"""

from __future__ import annotations

import collections
import heapq
import random
from dataclasses import dataclass, field

from kraft.metadata import MetadataLoader, encode_records
from kraft.metadata.snapshot import encode_snapshot
from kraft.raft.core import NotLeaderError, RaftCore
from kraft.raft.log import Entry
from kraft.raft.messages import Message
from kraft.raft.ready import RaftConfig, Ready, ReadyRunner

from .disk import SimRaftDisk
from .invariants import InvariantChecker
from .network import SimNetwork
from .workload import ControllerWorkload

EVENTS_MAX = 2_000_000


@dataclass(slots=True)
class SimNode:
    node_id: int
    disk: SimRaftDisk
    core: RaftCore | None = None
    loader: MetadataLoader = field(default_factory=MetadataLoader)
    incarnation: int = 0
    in_flight: Ready | None = None
    inbox: collections.deque = field(default_factory=collections.deque)
    next_tick_ms: int | None = None
    stopping: bool = False

    @property
    def running(self) -> bool:
        return self.core is not None


class Cluster:
    def __init__(self, seed: int, voters: int, observers: int, config: RaftConfig,
                 snapshot_every: int = 0, fsync_max_ms: int = 5) -> None:
        self.rng = random.Random(seed)
        self.config = config
        self.voter_ids = list(range(voters))
        self.node_ids = list(range(voters + observers))
        # Each disk tears writes from a seed of its own, derived without drawing from self.rng.
        self.nodes = {node_id: SimNode(node_id, SimRaftDisk(seed * 1009 + node_id)) for node_id in self.node_ids}
        self.network = SimNetwork(self.rng)
        self.workload = ControllerWorkload(random.Random(seed * 7919 + 1))
        self.checker = InvariantChecker(self.voter_ids)
        self.snapshot_every = snapshot_every
        self.fsync_max_ms = fsync_max_ms
        self.now_ms = 0
        self.events = 0
        self._queue: list = []
        self._sequence = 0
        self.appended = 0
        self.appending = False
        self.chaos_generation = 0
        # Crash points: message type name -> (probability, downtime max ms); a node that has
        # just sent such a message crashes with that probability (FoundationDB's BUGGIFY idea,
        # aimed at the moments where a lost write would matter most).
        self.crash_points: dict[str, tuple[float, int]] = {}
        for node_id in self.node_ids:
            self.start(node_id)

    # ----- the event loop -----------------------------------------------------------------

    def schedule(self, at_ms: int, handler, *args) -> None:
        self._sequence += 1
        heapq.heappush(self._queue, (at_ms, self._sequence, handler, args))

    def run_until(self, end_ms: int, done=None) -> bool:
        """Runs events up to ``end_ms``; True as soon as ``done()`` holds (checked as time moves)."""
        while self._queue and self._queue[0][0] <= end_ms:
            at_ms, _, handler, args = heapq.heappop(self._queue)
            if done is not None and at_ms > self.now_ms and done():
                heapq.heappush(self._queue, (at_ms, 0, handler, args))
                return True
            self.now_ms = at_ms
            handler(*args)
            self.events += 1
            assert self.events < EVENTS_MAX, "the simulation is not making progress"
            self.check_invariants()
        self.now_ms = max(self.now_ms, end_ms)
        return done is not None and done()

    def check_invariants(self) -> None:
        running = {n.node_id: n.core for n in self.nodes.values() if n.running}
        states = {n.node_id: n.disk.durable.election_state for n in self.nodes.values()}
        images = {n.node_id: n.disk.durable for n in self.nodes.values()}
        self.checker.check(running, states, images)

    # ----- node lifecycle -----------------------------------------------------------------

    def start(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if node.running:
            return
        state, log = node.disk.load()
        rng = random.Random(self.rng.getrandbits(64))
        node.core = RaftCore(node_id, frozenset(self.voter_ids), self.config, rng, state, log, self.now_ms)
        node.incarnation += 1
        node.loader = MetadataLoader()
        node.stopping = False
        self.checker.node_started(node_id, node.core)
        self._drain(node)

    def crash(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if not node.running:
            return
        node.disk.crash(self.rng)
        node.core = None
        node.in_flight = None
        node.inbox.clear()
        node.next_tick_ms = None
        node.incarnation += 1
        self.checker.node_stopped(node_id)

    def shutdown(self, node_id: int, grace_ms: int = 300) -> None:
        """Graceful: a leader resigns (EndQuorumEpoch) and the node stops a moment later."""
        node = self.nodes[node_id]
        if not node.running or node.stopping:
            return
        node.stopping = True
        self._input(node, ("resign",))
        self.schedule(self.now_ms + grace_ms, self._stop, node_id, node.incarnation)

    def _stop(self, node_id: int, incarnation: int) -> None:
        node = self.nodes[node_id]
        if node.incarnation == incarnation:
            self.crash(node_id)

    # ----- inputs ---------------------------------------------------------------------------

    def leader(self) -> SimNode | None:
        leaders = [n for n in self.nodes.values() if n.running and n.core.is_leader]
        return max(leaders, key=lambda n: n.core.epoch) if leaders else None

    def client_request(self) -> bool:
        """A client's admin request reaches the leader, which decides it when its turn comes."""
        node = self.leader()
        if node is None or node.stopping:
            return False
        self._input(node, ("request",))
        return True

    def _deliver(self, message: Message) -> None:
        node = self.nodes[message.destination]
        if node.running and self.network.link_open(message.source, message.destination):
            self._input(node, ("message", message))

    def _input(self, node: SimNode, item: tuple) -> None:
        if node.in_flight is not None:
            node.inbox.append(item)
            return
        self._apply_input(node, item)
        self._drain(node)

    def _apply_input(self, node: SimNode, item: tuple) -> None:
        core = node.core
        core.tick(self.now_ms)
        kind = item[0]
        if kind == "message":
            core.step(item[1])
        elif kind == "request":
            self._decide(node)
        elif kind == "resign":
            core.resign()

    def _decide(self, node: SimNode) -> None:
        """The active controller's turn: decide against the applied image, append the records."""
        core = node.core
        if not core.is_leader or node.loader.applied_offset != core.log.end_offset - 1:
            return  # not leading, or its last write is not applied yet
        lifecycle = self.workload.lifecycle(node.node_id, core.epoch)
        records = self.workload.records(node.loader.image, lifecycle, core.log.end_offset, self.now_ms)
        if not records:
            return
        try:
            payloads = [encode_records(records)]
            last_offset = core.append(payloads)
            self.checker.write_appended(last_offset - len(payloads) + 1, last_offset, core.epoch)
            self.appended += 1
        except NotLeaderError:
            pass

    def _tick(self, node_id: int, incarnation: int, at_ms: int) -> None:
        node = self.nodes[node_id]
        if node.incarnation != incarnation or node.next_tick_ms != at_ms:
            return  # a tick that was superseded
        node.next_tick_ms = None
        if node.in_flight is not None:
            return  # busy: the tick is rescheduled when its Ready completes
        node.core.tick(self.now_ms)
        self._drain(node, after_tick=True)

    # ----- the driver: Ready -> disk -> network -> state machine ----------------------------

    def _drain(self, node: SimNode, after_tick: bool = False) -> None:
        if not node.running:
            return  # crashed at a crash point while completing a Ready
        ready = node.core.ready()
        if ready.is_empty:
            self._reschedule_tick(node, after_tick)
            return
        node.in_flight = ready
        if self._runner(node).persist(node.core, ready):
            latency_ms = self.rng.randint(0, self.fsync_max_ms)
            self.schedule(self.now_ms + latency_ms, self._fsync_done, node.node_id, node.incarnation)
        else:
            self._complete(node, owed=False)

    def _fsync_done(self, node_id: int, incarnation: int) -> None:
        node = self.nodes[node_id]
        if node.incarnation == incarnation and node.in_flight is not None:
            self._complete(node, owed=True)

    def _runner(self, node: SimNode) -> ReadyRunner:
        """The driver's ReadyRunner over this node's simulated disk and network."""
        return ReadyRunner(node.disk, self._transmit,
                           lambda snapshot: self._load_snapshot(node, snapshot),
                           lambda committed: self._apply_committed(node, committed))

    def _transmit(self, message: Message) -> None:
        for delay_ms in self.network.transmit(message):
            self.schedule(self.now_ms + delay_ms, self._deliver, message)

    def _complete(self, node: SimNode, owed: bool) -> None:
        ready, node.in_flight = node.in_flight, None
        if not self._runner(node).complete(node.core, ready, owed,
                                           proceed=lambda: not self._at_crash_point(node, ready)):
            return
        self._maybe_snapshot(node)
        while node.running and node.inbox and node.in_flight is None:
            self._apply_input(node, node.inbox.popleft())
            self._drain(node)
        if node.in_flight is None:
            self._drain(node)

    def _at_crash_point(self, node: SimNode, ready: Ready) -> bool:
        for message in ready.messages:
            point = self.crash_points.get(type(message.body).__name__)
            if point is not None and self.rng.random() < point[0]:
                self.crash(node.node_id)
                self.schedule(self.now_ms + self.rng.randint(0, point[1]), self.start, node.node_id)
                return True
        return False

    def _load_snapshot(self, node: SimNode, snapshot) -> None:
        assert not node.core.is_leader, "a leader never loads a snapshot"
        self.checker.check_snapshot(node.node_id, snapshot)
        node.loader.load_snapshot(snapshot.data, snapshot.snapshot_id.end_offset)
        self.checker.check_image(node.node_id, node.loader.image, "loaded from a snapshot")

    def _apply_committed(self, node: SimNode, committed: tuple[Entry, ...]) -> None:
        self.checker.record_high_watermark(node.node_id, node.core)
        assert committed[0].offset == node.loader.applied_offset + 1, (committed[0], node.loader.applied_offset)
        self.checker.check_applied(node.node_id, committed)
        node.loader.apply_entries(committed)
        self.checker.check_image(node.node_id, node.loader.image, "applied")

    def _maybe_snapshot(self, node: SimNode) -> None:
        core = node.core
        if not self.snapshot_every or node.in_flight is not None:
            return
        end = node.loader.applied_offset + 1
        if end - core.log.start_offset >= self.snapshot_every and end <= core.applied_offset:
            core.create_snapshot(end, encode_snapshot(node.loader.image))

    def _reschedule_tick(self, node: SimNode, after_tick: bool) -> None:
        deadline = node.core.next_deadline_ms()
        if deadline == float("inf"):
            return
        at_ms = max(int(deadline + 0.999), self.now_ms + (1 if after_tick else 0))
        if node.next_tick_ms is not None and node.next_tick_ms <= at_ms and node.next_tick_ms >= self.now_ms:
            return
        node.next_tick_ms = at_ms
        self.schedule(at_ms, self._tick, node.node_id, node.incarnation, at_ms)
