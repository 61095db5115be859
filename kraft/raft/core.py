"""The KRaft replica as a deterministic state machine: ``tick(now_ms)``, ``step(message)``,
``ready()`` and ``advance(ready)``, with no clock, socket, file or thread of its own.

Rules:
- Time only moves through ``tick(now_ms)``; ``next_deadline_ms()`` says when the next tick
  is due. Randomness (election timeouts, bootstrap choice) comes from the injected
  ``random.Random``, so a seed replays a run exactly.
- Any message that carries a higher epoch moves this replica to that epoch first (Follower
  if it names a leader, else Unattached); a message from an older epoch is answered with
  our epoch and leader (FENCED_LEADER_EPOCH) and otherwise ignored. Pre-votes are the one
  exception: they never change the receiver's state.
- Output accumulates in ``Pending`` and leaves as one ``Ready`` whose contract is in
  ``ready.py``: the election state is persisted before the messages of the new role go out.
- The election logic lives in ``election.py``, replication (Fetch, FetchSnapshot, the high
  watermark) in ``replication.py``; both are mixins of ``RaftCore`` over its state.
"""

from __future__ import annotations

import random

from .election import ElectionMixin
from .log import Entry, RaftLog, Snapshot, SnapshotId
from . import messages as m
from .messages import Body, Message
from .ready import Pending, RaftConfig, Ready
from .replication import ReplicationMixin
from .roles import (Candidate, ElectionState, Follower, Leader, Prospective, QuorumState,
                    Resigned, Unattached)

NO_DEADLINE = float("inf")


class NotLeaderError(Exception):
    """An append or snapshot request reached a replica that is not the leader (the
    caller's operating error: retry against the current leader)."""


class RaftCore(ElectionMixin, ReplicationMixin):
    def __init__(self, local_id: int, voters: frozenset[int] | set[int], config: RaftConfig,
                 rng: random.Random, election_state: ElectionState | None, log: RaftLog,
                 now_ms: int = 0) -> None:
        self.local_id = local_id
        self.config = config
        self.rng = rng
        self.now_ms = now_ms
        self.log = log
        self.quorum = QuorumState(local_id, frozenset(voters), election_state or ElectionState(0))
        snapshot_end = log.snapshot.snapshot_id.end_offset if log.snapshot else 0
        self.high_watermark = snapshot_end
        self.applied_offset = snapshot_end
        self.durable_end_offset = log.end_offset
        self.pending = Pending(load_snapshot=log.snapshot)
        self._next_correlation_id = 0
        self.election_deadline_ms: float = NO_DEADLINE
        self.fetch_deadline_ms: float = NO_DEADLINE
        self.check_quorum_deadline_ms: float = NO_DEADLINE
        self.vote_requests: dict[int, tuple[int, int]] = {}  # voter -> (correlation, retry at)
        self.fetch_in_flight: tuple[int, int, int] | None = None  # (correlation, dest, retry at)
        self.fetch_backoff_until_ms = 0
        self.parked_fetches: dict[int, tuple[Message, int]] = {}
        self.snapshot_fetch: tuple[SnapshotId, bytearray] | None = None
        self.begin_epoch_sent_ms: dict[int, int] = {}
        self._handlers = self._handler_table()
        self._enter_role_timers()

    # ----- the entry points -------------------------------------------------------------

    @property
    def role(self):
        return self.quorum.role

    @property
    def epoch(self) -> int:
        return self.quorum.epoch

    @property
    def leader_id(self) -> int | None:
        return self.quorum.leader_id

    @property
    def is_leader(self) -> bool:
        return isinstance(self.role, Leader)

    def tick(self, now_ms: int) -> None:
        assert now_ms >= self.now_ms, f"time went back from {self.now_ms} to {now_ms}"
        self.now_ms = now_ms
        role = self.role
        if isinstance(role, Leader):
            self._leader_tick()
        elif self._wants_to_fetch():
            self._follower_tick()
        elif now_ms >= self.election_deadline_ms:
            self._on_election_timeout()
        else:
            self._retry_requests()

    def step(self, message: Message) -> None:
        assert message.destination == self.local_id, message
        self._handlers[type(message.body)](message)

    def next_deadline_ms(self) -> float:
        deadlines = [self.election_deadline_ms, self.fetch_deadline_ms,
                     self.check_quorum_deadline_ms]
        deadlines += [retry for _, retry in self.vote_requests.values()]
        deadlines += [expire for _, expire in self.parked_fetches.values()]
        if self.fetch_in_flight is not None:
            deadlines.append(self.fetch_in_flight[2])
        elif self._wants_to_fetch():
            deadlines.append(max(self.now_ms, self.fetch_backoff_until_ms))
        if isinstance(self.role, Leader):
            deadlines.append(self._next_begin_epoch_resend_ms())
        return min(deadlines)

    def ready(self) -> Ready:
        pending, self.pending = self.pending, Pending()
        committed: tuple[Entry, ...] = ()
        start = max(self.applied_offset, self.log.start_offset)
        if self.high_watermark > start:
            committed = self.log.read(start, self.high_watermark - start)
        if pending.load_snapshot is not None or committed:
            self.applied_offset = self.high_watermark
        return Ready(
            election_state=self.quorum.take_unpersisted(),
            snapshot=pending.snapshot,
            log_start_offset=pending.snapshot.snapshot_id.end_offset if pending.snapshot else None,
            truncate_to=pending.truncate_to,
            entries=tuple(pending.entries),
            must_sync=bool(pending.entries) or pending.truncate_to is not None,
            messages=tuple(pending.messages),
            load_snapshot=pending.load_snapshot,
            committed=committed,
            high_watermark=self.high_watermark,
        )

    def advance(self, ready: Ready) -> None:
        """The driver has done everything ``ready`` asked; its entries are durable."""
        if ready.must_sync or ready.snapshot is not None:
            self.durable_end_offset = self.log.end_offset
            if isinstance(self.role, Leader):
                self._maybe_advance_high_watermark()

    def append(self, payloads: list[bytes]) -> int:
        """Leader only: append data entries in this epoch; returns the last offset. They
        are committed once the high watermark passes it."""
        if not isinstance(self.role, Leader):
            raise NotLeaderError(f"node {self.local_id} is {self.role.name}, leader {self.leader_id}")
        assert 0 < len(payloads) <= self.config.append_max_entries, len(payloads)
        for payload in payloads:
            self._append_local(Entry(self.log.end_offset, self.epoch, payload))
        self._complete_parked_fetches()
        return self.log.end_offset - 1

    def create_snapshot(self, end_offset: int, data: bytes) -> SnapshotId:
        """The state machine's state after every entry below ``end_offset`` (committed and
        applied) becomes the latest snapshot, and the log before it is cut."""
        assert self.log.start_offset < end_offset <= min(self.high_watermark, self.applied_offset), \
            (end_offset, self.log.start_offset, self.high_watermark, self.applied_offset)
        epoch = self.log.epoch_at(end_offset - 1)
        assert epoch is not None
        snapshot = Snapshot(SnapshotId(end_offset, epoch), data)
        self.log.install_snapshot(snapshot)
        self.pending.snapshot = snapshot
        return snapshot.snapshot_id

    def resign(self) -> None:
        """Graceful shutdown of a leader: EndQuorumEpoch to the voters, best successor first."""
        if isinstance(self.role, Leader):
            self._resign_leadership()

    # ----- shared helpers ---------------------------------------------------------------

    def _handler_table(self) -> dict:
        return {
            m.VoteRequest: self._on_vote_request, m.VoteResponse: self._on_vote_response,
            m.BeginQuorumEpochRequest: self._on_begin_epoch_request,
            m.BeginQuorumEpochResponse: self._on_quorum_response,
            m.EndQuorumEpochRequest: self._on_end_epoch_request,
            m.EndQuorumEpochResponse: self._on_quorum_response,
            m.FetchRequest: self._on_fetch_request, m.FetchResponse: self._on_fetch_response,
            m.FetchSnapshotRequest: self._on_fetch_snapshot_request,
            m.FetchSnapshotResponse: self._on_fetch_snapshot_response,
        }

    def _send(self, destination: int, body: Body) -> int:
        self._next_correlation_id += 1
        self.pending.messages.append(
            Message(self.local_id, destination, self._next_correlation_id, body))
        return self._next_correlation_id

    def _reply(self, request: Message, body: Body) -> None:
        self.pending.messages.append(
            Message(self.local_id, request.source, request.correlation_id, body))

    def _append_local(self, entry: Entry) -> None:
        self.log.append(entry)
        self.pending.entries.append(entry)

    def _truncate_local(self, offset: int) -> None:
        assert offset >= self.high_watermark, \
            f"node {self.local_id} truncating to {offset} below high watermark {self.high_watermark}"
        self.log.truncate_to(offset)
        self.durable_end_offset = min(self.durable_end_offset, offset)
        self.pending.entries = [e for e in self.pending.entries if e.offset < offset]
        if self.pending.truncate_to is None or offset < self.pending.truncate_to:
            self.pending.truncate_to = offset

    def _set_high_watermark(self, offset: int) -> None:
        if offset > self.high_watermark:
            self.high_watermark = offset

    def _random_election_timeout_ms(self) -> int:
        timeout = self.config.election_timeout_ms
        return timeout + self.rng.randrange(timeout)

    def _random_backoff_ms(self) -> int:
        return self.rng.randrange(self.config.retry_backoff_ms, self.config.election_backoff_max_ms + 1)

    def _enter_role_timers(self) -> None:
        """Timers for the role just entered: every role starts its own clock."""
        self.vote_requests.clear()
        self.fetch_in_flight = None
        self.parked_fetches.clear()
        self.snapshot_fetch = None
        self.election_deadline_ms = NO_DEADLINE
        self.fetch_deadline_ms = NO_DEADLINE
        self.check_quorum_deadline_ms = NO_DEADLINE
        role = self.role
        if isinstance(role, Follower):
            self.fetch_deadline_ms = self.now_ms + self.config.fetch_timeout_ms
        elif isinstance(role, Leader):
            self.check_quorum_deadline_ms = self.now_ms + self._check_quorum_timeout_ms()
            self.begin_epoch_sent_ms.clear()
        elif isinstance(role, (Unattached, Resigned)) and self.quorum.is_voter:
            # The only voter has nobody to wait for: it stands at once, as Kafka's does.
            only_voter = self.quorum.voters == {self.local_id}
            self.election_deadline_ms = self.now_ms + (0 if only_voter else self._random_election_timeout_ms())
        elif isinstance(role, (Prospective, Candidate)):
            self.election_deadline_ms = self.now_ms + self._random_election_timeout_ms()

    def _check_quorum_timeout_ms(self) -> int:
        return self.config.fetch_timeout_ms * 3 // 2

    def __repr__(self) -> str:
        return (f"RaftCore(node={self.local_id}, role={self.role.name}, epoch={self.epoch}, "
                f"leader={self.leader_id}, end={self.log.end_offset}, hw={self.high_watermark})")
