"""The KRaft RPCs as plain values, for the pure Raft core.

Each class mirrors the fields of Kafka's request or response of the same name (Vote,
BeginQuorumEpoch, EndQuorumEpoch, Fetch on ``__cluster_metadata-0``, FetchSnapshot),
reduced to the one partition and the fields the decision logic reads. The wire mapping to
kio's generated messages is a separate, later layer: these values never touch bytes, so
the core and the simulation stay free of codecs.

A ``Message`` is the envelope: source, destination, a correlation id (a response carries
its request's id, as on the wire, so a node can tell a stale or duplicated response from
the one it waits for) and the body.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Union

from .log import Entry, SnapshotId


class Error(enum.IntEnum):
    """The Kafka error codes the quorum answers with (values as in Kafka's Errors)."""

    NONE = 0
    OFFSET_OUT_OF_RANGE = 1
    NOT_LEADER_OR_FOLLOWER = 6
    INVALID_REQUEST = 42
    FENCED_LEADER_EPOCH = 74
    UNKNOWN_LEADER_EPOCH = 75
    INCONSISTENT_VOTER_SET = 94
    SNAPSHOT_NOT_FOUND = 98
    POSITION_OUT_OF_RANGE = 99


@dataclass(frozen=True, slots=True)
class VoteRequest:
    """A (pre-)vote request. ``candidate_epoch`` is the epoch the sender asks votes for:
    its current epoch for a real vote (it already bumped it as Candidate), and its current
    epoch plus one for a pre-vote (KIP-996), which changes no state anywhere."""

    candidate_epoch: int
    candidate_id: int
    last_offset_epoch: int
    last_offset: int  # the candidate's log end offset (exclusive), as Kafka sends it
    pre_vote: bool


@dataclass(frozen=True, slots=True)
class VoteResponse:
    error: Error
    leader_id: int | None
    leader_epoch: int  # the responder's epoch
    vote_granted: bool
    pre_vote: bool


@dataclass(frozen=True, slots=True)
class BeginQuorumEpochRequest:
    leader_id: int
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class BeginQuorumEpochResponse:
    error: Error
    leader_id: int | None
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class EndQuorumEpochRequest:
    leader_id: int
    leader_epoch: int
    preferred_successors: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class EndQuorumEpochResponse:
    error: Error
    leader_id: int | None
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """``replica_epoch`` is Kafka's ReplicaState.ReplicaEpoch / CurrentLeaderEpoch: the
    epoch the fetcher believes current. ``fetch_offset`` is its durable log end offset."""

    replica_id: int
    replica_epoch: int
    fetch_offset: int
    last_fetched_epoch: int


@dataclass(frozen=True, slots=True)
class DivergingEpoch:
    """The leader's end offset for the largest epoch <= the fetcher's last fetched epoch."""

    epoch: int
    end_offset: int


@dataclass(frozen=True, slots=True)
class FetchResponse:
    error: Error
    leader_id: int | None
    leader_epoch: int
    high_watermark: int
    entries: tuple[Entry, ...] = ()
    diverging_epoch: DivergingEpoch | None = None
    snapshot_id: SnapshotId | None = None


@dataclass(frozen=True, slots=True)
class FetchSnapshotRequest:
    replica_id: int
    replica_epoch: int
    snapshot_id: SnapshotId
    position: int


@dataclass(frozen=True, slots=True)
class FetchSnapshotResponse:
    error: Error
    leader_id: int | None
    leader_epoch: int
    snapshot_id: SnapshotId
    size: int = 0
    position: int = 0
    unaligned_records: bytes = b""


Body = Union[
    VoteRequest, VoteResponse, BeginQuorumEpochRequest, BeginQuorumEpochResponse,
    EndQuorumEpochRequest, EndQuorumEpochResponse, FetchRequest, FetchResponse,
    FetchSnapshotRequest, FetchSnapshotResponse,
]
REQUEST_TYPES = (VoteRequest, BeginQuorumEpochRequest, EndQuorumEpochRequest, FetchRequest,
                 FetchSnapshotRequest)


@dataclass(frozen=True, slots=True)
class Message:
    source: int
    destination: int
    correlation_id: int
    body: Body

    @property
    def is_request(self) -> bool:
        return isinstance(self.body, REQUEST_TYPES)


@dataclass(frozen=True, slots=True)
class LeaderChange:
    """The control record a new leader appends first in its epoch (Kafka's
    LeaderChangeMessage); committing it is what lets the high watermark move in the epoch."""

    leader_id: int
    voters: tuple[int, ...]

    def encode(self) -> bytes:
        return f"LeaderChange:{self.leader_id}:{','.join(map(str, self.voters))}".encode()

    @classmethod
    def decode(cls, payload: bytes) -> "LeaderChange":
        kind, leader, voters = payload.decode().split(":")
        if kind != "LeaderChange":
            raise ValueError(f"not a LeaderChange control record: {payload!r}")
        return cls(int(leader), tuple(int(v) for v in voters.split(",") if v))
