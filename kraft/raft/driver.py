"""A trio driver for one KRaft replica: the clock, the inbox, the disk and the network
around the pure ``RaftCore``.

Rules:
- One task (``run``) owns the core: only it calls ``tick``, ``step``, ``append``,
  ``ready`` and ``advance``. Everything else reaches the core through the inbox (a
  bounded trio memory channel): peers' messages (``deliver``, dropped when the inbox is
  full, as a lossy network would) and client appends (``append``, which waits for room).
- Time is ``trio.current_time()`` in milliseconds since ``run`` started, so the driver
  runs the same on a real clock and on ``trio.testing.MockClock``. The loop sleeps until
  the core's ``next_deadline_ms()`` or the next inbox item; after a tick it sleeps at
  least one millisecond, so a deadline the core did not clear cannot spin the loop.
- Every input is followed by the Ready contract of ``ready.py``, in its order: the disk
  (``DiskRaftLog.write``: quorum-state, snapshot, truncation, append, fsync), then the
  messages (``Transport.send``, which never blocks), then the state machine
  (``on_load_snapshot`` then ``on_commit``, control entries included), then ``advance``.
  Disk writes run inline on the event loop: correct first (nothing can step the core or
  touch the disk meanwhile); moving fsync to a worker thread is a later optimisation and
  would stay correct for the same reason, since only this task awaits it.
- ``append(payload)`` (``append_many`` for several, kept together in one epoch) resolves
  with the entry's offset once the high watermark has passed it and the committed entry at that offset is ours (same epoch); if another
  leader's entry was committed there, or a snapshot replaced it, it raises
  ``AppendLostError``. ``NotLeaderError`` when this replica is not the leader.
- A disk error ends ``run`` with the exception: a replica that cannot persist must stop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Protocol

import trio

from .core import NotLeaderError, RaftCore
from .disk_log import DiskRaftLog
from .log import Entry, Snapshot
from .messages import Message
from .ready import RaftConfig, Ready, ReadyRunner

INBOX_CAPACITY = 1024
INPUTS_PER_READY_MAX = 64     # inbox items folded into one Ready
READY_ROUNDS_MAX = 16         # Ready batches one input may cause (advance can unblock more)


class Transport(Protocol):
    """Sends a message towards ``message.destination``; never blocks, may drop."""

    def send(self, message: Message) -> None: ...


class AppendLostError(Exception):
    """An appended entry was not committed as ours (a new leader overwrote it, or a
    snapshot replaced the log before this replica saw it committed): retry."""


@dataclass(slots=True)
class _PendingAppend:
    payloads: list[bytes]
    done: trio.Event = field(default_factory=trio.Event)
    offset: int = -1
    epoch: int = -1
    error: Exception | None = None

    def finish(self, error: Exception | None = None) -> None:
        self.error = error
        self.done.set()


class RaftDriver:
    def __init__(self, local_id: int, voters: frozenset[int] | set[int], disk_log: DiskRaftLog,
                 transport: Transport, *, config: RaftConfig | None = None,
                 rng: random.Random | None = None,
                 on_commit: Callable[[tuple[Entry, ...]], None] | None = None,
                 on_load_snapshot: Callable[[Snapshot], None] | None = None) -> None:
        self.local_id = local_id
        self.voters = frozenset(voters)
        self.config = config or RaftConfig()
        self._disk = disk_log
        self._transport = transport
        self._rng = rng or random.Random()
        self._on_commit = on_commit or (lambda entries: None)
        self._on_load_snapshot = on_load_snapshot or (lambda snapshot: None)
        self._inbox_send, self._inbox_receive = trio.open_memory_channel(INBOX_CAPACITY)
        self._core: RaftCore | None = None
        self._clock_start_s = 0.0
        self._last_tick_ms = 0
        self._appends: dict[int, _PendingAppend] = {}  # offset -> waiting caller
        self.dropped_messages = 0
        self._runner = ReadyRunner(disk_log, transport.send, self._load_snapshot, self._commit)

    # ----- what callers see -----------------------------------------------------------------

    @property
    def core(self) -> RaftCore | None:
        """Read-only inspection (tests, DescribeQuorum); never call its methods."""
        return self._core

    @property
    def leader_id(self) -> int | None:
        return self._core.leader_id if self._core else None

    @property
    def epoch(self) -> int:
        return self._core.epoch if self._core else 0

    @property
    def high_watermark(self) -> int:
        return self._core.high_watermark if self._core else 0

    @property
    def is_leader(self) -> bool:
        return self._core is not None and self._core.is_leader

    def deliver(self, message: Message) -> None:
        """A message from a peer; dropped when the inbox is full (the core retries)."""
        assert message.destination == self.local_id, message
        try:
            self._inbox_send.send_nowait(("message", message))
        except (trio.WouldBlock, trio.BrokenResourceError):
            self.dropped_messages += 1

    async def append(self, payload: bytes) -> int:
        """Append ``payload`` as the leader; returns its offset once it is committed."""
        return await self.append_many([payload])

    async def append_many(self, payloads: list[bytes]) -> int:
        """Append ``payloads`` as consecutive entries of one epoch (all or none are
        committed: the last one being ours means the ones before it are); returns the
        last offset once it is committed."""
        assert 0 < len(payloads) <= self.config.append_max_entries, len(payloads)
        if not self.is_leader:
            raise NotLeaderError(f"node {self.local_id} is not the leader (leader {self.leader_id})")
        pending = _PendingAppend(list(payloads))
        try:
            await self._inbox_send.send(("append", pending))
        except trio.BrokenResourceError:
            raise AppendLostError(f"node {self.local_id} has stopped") from None
        await pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.offset

    async def snapshot(self, end_offset: int, data: bytes) -> None:
        """Make ``data`` (the state after every entry below ``end_offset``, which must be
        committed and applied here) the latest snapshot and cut the log before it."""
        await self._inbox_send.send(("snapshot", (end_offset, data)))

    async def resign(self) -> None:
        """Graceful shutdown of a leader: EndQuorumEpoch goes out; stop ``run`` after."""
        await self._inbox_send.send(("resign", None))

    # ----- the loop -------------------------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        state, log = self._disk.load()
        self._clock_start_s = trio.current_time()
        self._last_tick_ms = 0
        self._core = RaftCore(self.local_id, self.voters, self.config, self._rng, state, log, now_ms=0)
        try:
            self._drain_ready()
            task_status.started()
            while True:
                await self._run_once()
        finally:
            queued = [value for kind, value in _drain(self._inbox_receive) if kind == "append"]
            self._inbox_receive.close()  # a driver runs once; a restart is a new driver
            for pending in [*self._appends.values(), *queued]:
                pending.finish(AppendLostError(f"node {self.local_id} stopped before the commit"))
            self._appends.clear()

    async def _run_once(self) -> None:
        core = self._core
        wake_ms = max(core.next_deadline_ms(), self._last_tick_ms + 1)
        with trio.move_on_at(self._clock_start_s + wake_ms / 1000):
            item = await self._inbox_receive.receive()
            self._tick()
            self._handle(item)
            for _ in range(INPUTS_PER_READY_MAX - 1):
                try:
                    item = self._inbox_receive.receive_nowait()
                except trio.WouldBlock:
                    break
                self._handle(item)
            self._drain_ready()
            return
        self._tick()
        self._drain_ready()

    def _now_ms(self) -> int:
        return max(self._last_tick_ms, round((trio.current_time() - self._clock_start_s) * 1000))

    def _tick(self) -> None:
        self._last_tick_ms = self._now_ms()
        self._core.tick(self._last_tick_ms)

    def _handle(self, item: tuple) -> None:
        kind, value = item
        core = self._core
        if kind == "message":
            core.step(value)
        elif kind == "append":
            try:
                value.offset = core.append(value.payloads)
            except NotLeaderError as error:
                value.finish(error)
                return
            value.epoch = core.epoch
            self._appends[value.offset] = value
        elif kind == "resign":
            core.resign()
        elif kind == "snapshot":
            end_offset, data = value
            if core.log.start_offset < end_offset <= min(core.high_watermark, core.applied_offset):
                core.create_snapshot(end_offset, data)
        else:
            raise AssertionError(f"unknown inbox item {kind}")

    # ----- Ready ------------------------------------------------------------------------------

    def _drain_ready(self) -> None:
        for _ in range(READY_ROUNDS_MAX):
            ready = self._core.ready()
            if ready.is_empty:
                return
            self._execute(ready)
        raise AssertionError(f"node {self.local_id}: Ready batches do not settle")

    def _execute(self, ready: Ready) -> None:
        self._runner.run(self._core, ready)

    def _load_snapshot(self, snapshot) -> None:
        self._on_load_snapshot(snapshot)
        self._settle_appends_below(snapshot.snapshot_id.end_offset)

    def _commit(self, committed: tuple[Entry, ...]) -> None:
        self._on_commit(committed)
        self._settle_appends(committed)

    def _settle_appends(self, committed: tuple[Entry, ...]) -> None:
        if not self._appends:
            return
        for entry in committed:
            pending = self._appends.pop(entry.offset, None)
            if pending is None:
                continue
            if entry.epoch == pending.epoch:
                pending.finish()
            else:
                pending.finish(AppendLostError(
                    f"offset {entry.offset} was committed in epoch {entry.epoch}, not {pending.epoch}"))

    def _settle_appends_below(self, offset: int) -> None:
        for entry_offset in [o for o in self._appends if o < offset]:
            self._appends.pop(entry_offset).finish(AppendLostError(
                f"a snapshot up to {offset} replaced offset {entry_offset} before it was seen committed"))


def _drain(channel: trio.MemoryReceiveChannel) -> list[tuple]:
    items = []
    while True:
        try:
            items.append(channel.receive_nowait())
        except (trio.WouldBlock, trio.ClosedResourceError, trio.EndOfChannel):
            return items


class InMemoryNetwork:
    """Drivers of one trio run talking directly: a message goes straight into the
    destination's inbox, unless the link is cut or nobody is attached there."""

    def __init__(self) -> None:
        self._receivers: dict[int, Callable[[Message], None]] = {}
        self._cut: set[tuple[int, int]] = set()
        self.sent = 0
        self.dropped = 0

    def attach(self, node_id: int, deliver: Callable[[Message], None]) -> None:
        self._receivers[node_id] = deliver

    def detach(self, node_id: int) -> None:
        self._receivers.pop(node_id, None)

    def cut(self, source: int, destination: int) -> None:
        self._cut.add((source, destination))

    def heal(self) -> None:
        self._cut.clear()

    def transport(self, node_id: int) -> "InMemoryTransport":
        return InMemoryTransport(self, node_id)

    def send(self, message: Message) -> None:
        self.sent += 1
        receiver = self._receivers.get(message.destination)
        if receiver is None or (message.source, message.destination) in self._cut:
            self.dropped += 1
            return
        receiver(message)


@dataclass(frozen=True, slots=True)
class InMemoryTransport:
    network: InMemoryNetwork
    node_id: int

    def send(self, message: Message) -> None:
        assert message.source == self.node_id, message
        self.network.send(message)
