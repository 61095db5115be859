"""The facts about the metadata quorum that DescribeQuorum reports, behind one read-only call.

The broker answers DescribeQuorum from ``QuorumInfo`` values and never looks inside the Raft
implementation: anything with a ``describe_quorum()`` method (``QuorumSource``) can supply them.
The Raft driver supplies them from its leader state (follower fetch times and offsets,
``kraft.server.quorum_member.DriverQuorum``); a node that is not the leader answers ``None``, which the
broker reports as Kafka's NOT_LEADER_OR_FOLLOWER.

Rules (Kafka's ``LeaderState.describeQuorum``):
- The leader is always one of the voters; Kafka's ``kafka-metadata-quorum`` fails otherwise, so
  ``QuorumInfo`` refuses to exist without it.
- The leader reports itself with the current wall-clock time as both its last fetch and its last
  caught-up timestamp; a replica never heard from reports -1 for both.
- Directory ids are in Kafka's text form (22 characters of URL-safe base64, as in
  ``meta.properties``); ``None`` means unknown and goes on the wire as the zero UUID.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

UNKNOWN_TIMESTAMP_MS = -1
UNKNOWN_OFFSET = -1
NO_LEADER = -1


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A controller listener a voter can be reached on."""

    listener: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class ReplicaInfo:
    """What the leader knows about one voter or observer of the metadata log."""

    replica_id: int
    directory_id: str | None
    log_end_offset: int
    last_fetch_timestamp_ms: int = UNKNOWN_TIMESTAMP_MS
    last_caught_up_timestamp_ms: int = UNKNOWN_TIMESTAMP_MS


@dataclass(frozen=True, slots=True)
class QuorumInfo:
    """The quorum as its leader sees it; ``endpoints`` maps node id to its controller endpoints."""

    leader_id: int
    leader_epoch: int
    high_watermark: int
    voters: tuple[ReplicaInfo, ...]
    observers: tuple[ReplicaInfo, ...] = ()
    endpoints: tuple[tuple[int, tuple[Endpoint, ...]], ...] = ()

    def __post_init__(self) -> None:
        voter_ids = [voter.replica_id for voter in self.voters]
        assert len(set(voter_ids)) == len(voter_ids), f"voters repeat an id: {voter_ids}"
        assert self.leader_id == NO_LEADER or self.leader_id in voter_ids, (
            f"leader {self.leader_id} is not among the voters {voter_ids}")

    def endpoints_of(self, node_id: int) -> tuple[Endpoint, ...]:
        return dict(self.endpoints).get(node_id, ())


class QuorumSource(Protocol):
    def describe_quorum(self) -> QuorumInfo | None:
        """The quorum as this node's leader state sees it, or None when it is not the leader."""


__all__ = ["Endpoint", "QuorumInfo", "QuorumSource", "ReplicaInfo", "wall_clock_ms"]
