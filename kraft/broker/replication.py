"""A partition leader's replication rules: follower progress, high watermark and ISR changes
(after Kafka's ``Partition``, ``Replica`` and ``ReplicaManager``).

Rules:
- A follower's log end offset is the offset it fetches from (it holds everything below). It
  is unknown (-1) from the moment this node becomes leader until the follower's first fetch.
- A follower is caught up at a fetch that reaches the leader's log end at that moment; a
  fetch that reaches the log end the leader had at the follower's previous fetch makes it
  caught up as of that previous fetch (Kafka's ``lastCaughtUpTimeMs``). A new leader counts
  every follower of the ISR as caught up when it takes over, so none is dropped at once.
- The high watermark is the smallest log end offset of the maximal ISR: the committed ISR
  plus any replica whose addition is in flight, so an in-flight change never lets the high
  watermark pass a member. It never moves backwards.
- The ISR shrinks by the followers not caught up for ``replica.lag.time.max.ms`` and grows
  by a follower whose log end has reached the high watermark and the start of the leader's
  epoch. Changes go to the controller (AlterPartition) one at a time per partition; until
  the controller answers, the committed ISR and partition epoch stay as they were; after a
  refusal the leader waits ``REFUSAL_BACKOFF_MS`` before it proposes again.
This module is pure: times and offsets in, decisions out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

UNKNOWN = -1
REFUSAL_BACKOFF_MS = 500


@dataclass(slots=True)
class FollowerProgress:
    replica_id: int
    log_end_offset: int = UNKNOWN
    last_fetch_ms: int = UNKNOWN
    last_caught_up_ms: int = UNKNOWN
    leader_end_at_last_fetch: int = UNKNOWN
    broker_epoch: int = UNKNOWN


@dataclass(frozen=True, slots=True)
class IsrChange:
    """A proposed ISR, in flight to the controller."""
    isr: tuple[int, ...]
    partition_epoch: int


@dataclass(slots=True)
class LeaderState:
    local_id: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader_epoch: int
    partition_epoch: int
    epoch_start_offset: int
    followers: dict[int, FollowerProgress] = field(default_factory=dict)
    pending: IsrChange | None = None
    retry_at_ms: int = UNKNOWN  # after a refusal, no new proposal before this time

    @classmethod
    def become_leader(cls, local_id: int, replicas: tuple[int, ...], isr: tuple[int, ...], leader_epoch: int,
                      partition_epoch: int, log_end_offset: int, now_ms: int) -> "LeaderState":
        followers = {
            replica: FollowerProgress(replica, last_caught_up_ms=now_ms if replica in isr else UNKNOWN)
            for replica in replicas if replica != local_id
        }
        return cls(local_id, tuple(replicas), tuple(isr), leader_epoch, partition_epoch, log_end_offset, followers)

    @property
    def maximal_isr(self) -> tuple[int, ...]:
        if self.pending is None:
            return self.isr
        return tuple(dict.fromkeys((*self.isr, *self.pending.isr)))

    def update_from_metadata(self, replicas: tuple[int, ...], isr: tuple[int, ...], partition_epoch: int) -> None:
        """The controller's view of the same leader epoch (an ISR change it made or committed)."""
        if partition_epoch < self.partition_epoch:
            return
        self.replicas, self.isr, self.partition_epoch = tuple(replicas), tuple(isr), partition_epoch
        if self.pending is not None and partition_epoch >= self.pending.partition_epoch:
            self.pending = None
        for replica in replicas:
            if replica != self.local_id and replica not in self.followers:
                self.followers[replica] = FollowerProgress(replica)
        for replica in [r for r in self.followers if r not in replicas]:
            del self.followers[replica]

    def on_follower_fetch(self, replica_id: int, fetch_offset: int, leader_end_offset: int, now_ms: int,
                          broker_epoch: int = UNKNOWN) -> None:
        progress = self.followers.get(replica_id)
        if progress is None:
            return
        if fetch_offset >= leader_end_offset:
            progress.last_caught_up_ms = now_ms
        elif progress.leader_end_at_last_fetch != UNKNOWN and fetch_offset >= progress.leader_end_at_last_fetch:
            progress.last_caught_up_ms = max(progress.last_caught_up_ms, progress.last_fetch_ms)
        progress.log_end_offset = fetch_offset
        progress.last_fetch_ms = now_ms
        progress.leader_end_at_last_fetch = leader_end_offset
        if broker_epoch != UNKNOWN:
            progress.broker_epoch = broker_epoch

    def high_watermark(self, leader_end_offset: int, current: int) -> int:
        """The new high watermark: the smallest log end in the maximal ISR, never below ``current``."""
        candidate = leader_end_offset
        for replica in self.maximal_isr:
            if replica == self.local_id:
                continue
            progress = self.followers.get(replica)
            end = progress.log_end_offset if progress is not None else UNKNOWN
            if end == UNKNOWN:
                return current
            candidate = min(candidate, end)
        return max(current, candidate)

    def out_of_sync(self, now_ms: int, lag_max_ms: int) -> tuple[int, ...]:
        return tuple(
            replica for replica in self.isr
            if replica != self.local_id and (
                (progress := self.followers.get(replica)) is None
                or progress.last_caught_up_ms == UNKNOWN or now_ms - progress.last_caught_up_ms > lag_max_ms))

    def propose_shrink(self, now_ms: int, lag_max_ms: int) -> IsrChange | None:
        if self.pending is not None or now_ms < self.retry_at_ms:
            return None
        lagging = self.out_of_sync(now_ms, lag_max_ms)
        if not lagging:
            return None
        self.pending = IsrChange(tuple(r for r in self.isr if r not in lagging), self.partition_epoch + 1)
        return self.pending

    def propose_expand(self, high_watermark: int, now_ms: int) -> IsrChange | None:
        if self.pending is not None or now_ms < self.retry_at_ms:
            return None
        for replica, progress in sorted(self.followers.items()):
            if replica in self.isr or progress.log_end_offset == UNKNOWN:
                continue
            if progress.log_end_offset >= high_watermark and progress.log_end_offset >= self.epoch_start_offset:
                self.pending = IsrChange((*self.isr, replica), self.partition_epoch + 1)
                return self.pending
        return None

    def change_refused(self, now_ms: int, backoff_ms: int = REFUSAL_BACKOFF_MS) -> None:
        """The controller refused or lost the proposal: a later check may propose again, not
        before ``backoff_ms`` (a replica refused as ineligible is usually just restarting)."""
        self.pending = None
        self.retry_at_ms = now_ms + backoff_ms
