"""Roles of a KRaft replica and the one gatekeeper that changes them.

Rules (Kafka's QuorumState, with KIP-996 pre-vote):
- The election state (epoch, leader id, voted id) is what survives a restart. Every role
  change goes through ``QuorumState.transition``, which checks the change against
  ``TRANSITIONS`` and records the new election state; the core hands that state to the
  driver, which persists it before any message of the new role is sent.
- Epochs never decrease. A voter votes at most once per epoch (``voted_id``).
- Observers (replicas outside the voter set) are only ever Unattached or Follower.

Transitions:
- Unattached -> Unattached (higher epoch, or a vote granted in this epoch),
  Prospective (election timeout, voters only), Follower (a leader is learnt).
- Prospective (pre-vote in the current epoch) -> Candidate (a majority granted the pre-vote,
  at epoch + 1), Unattached (higher epoch, or vote granted), Follower, Prospective (retry).
- Candidate -> Leader (a majority voted), Prospective (election timeout),
  Unattached (higher epoch), Follower.
- Leader -> Resigned (graceful shutdown, or lost contact with a majority: check-quorum),
  Unattached or Follower (higher epoch).
- Follower -> Prospective (fetch timeout, voters), Unattached (fetch timeout for observers,
  or a higher epoch), Follower (a leader of a higher epoch).
- Resigned -> Prospective (election timeout), Unattached or Follower (higher epoch).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ElectionState:
    """The content of the ``quorum-state`` file."""

    epoch: int
    leader_id: int | None = None
    voted_id: int | None = None


@dataclass(slots=True)
class ReplicaProgress:
    """What a leader knows of one replica that fetches from it."""

    end_offset: int = 0
    last_fetch_ms: int | None = None
    last_caught_up_ms: int | None = None


@dataclass(slots=True)
class Unattached:
    epoch: int
    voted_id: int | None = None
    name = "Unattached"


@dataclass(slots=True)
class Prospective:
    epoch: int
    voted_id: int | None = None
    leader_id: int | None = None  # remembered from a Follower whose fetch timed out
    granted: set[int] = field(default_factory=set)
    rejected: set[int] = field(default_factory=set)
    name = "Prospective"


@dataclass(slots=True)
class Candidate:
    epoch: int
    granted: set[int] = field(default_factory=set)
    rejected: set[int] = field(default_factory=set)
    name = "Candidate"


@dataclass(slots=True)
class Leader:
    epoch: int
    epoch_start_offset: int
    replicas: dict[int, ReplicaProgress] = field(default_factory=dict)
    name = "Leader"


@dataclass(slots=True)
class Follower:
    epoch: int
    leader_id: int
    last_fetch_success_ms: int | None = None
    leader_resigned: bool = False  # an EndQuorumEpoch arrived: pre-votes may be granted
    name = "Follower"


@dataclass(slots=True)
class Resigned:
    epoch: int
    preferred_successors: tuple[int, ...] = ()
    name = "Resigned"


Role = Unattached | Prospective | Candidate | Leader | Follower | Resigned

TRANSITIONS: dict[str, frozenset[str]] = {
    "Unattached": frozenset({"Unattached", "Prospective", "Follower"}),
    "Prospective": frozenset({"Unattached", "Prospective", "Candidate", "Follower"}),
    "Candidate": frozenset({"Unattached", "Prospective", "Leader", "Follower"}),
    "Leader": frozenset({"Unattached", "Follower", "Resigned"}),
    "Follower": frozenset({"Unattached", "Prospective", "Follower"}),
    "Resigned": frozenset({"Unattached", "Prospective", "Follower"}),
}
OBSERVER_ROLES = frozenset({"Unattached", "Follower"})


class LocalStateError(AssertionError):
    """Our own bug: a role change the rules forbid."""


def election_state_of(role: Role, local_id: int) -> ElectionState:
    if isinstance(role, (Unattached, Prospective)):
        leader_id = role.leader_id if isinstance(role, Prospective) else None
        return ElectionState(role.epoch, leader_id, role.voted_id)
    if isinstance(role, Candidate):
        return ElectionState(role.epoch, None, local_id)
    if isinstance(role, Follower):
        return ElectionState(role.epoch, role.leader_id, None)
    return ElectionState(role.epoch, local_id, None)  # Leader, Resigned


def role_from_election_state(state: ElectionState, local_id: int) -> Role:
    """The role a replica restarts in: a leader that restarts has lost its in-memory
    progress, so it resigns; a vote given stays given."""
    if state.leader_id == local_id:
        return Resigned(state.epoch)
    if state.leader_id is not None:
        return Follower(state.epoch, state.leader_id)
    if state.voted_id == local_id:
        return Prospective(state.epoch, voted_id=local_id)
    return Unattached(state.epoch, state.voted_id)


class QuorumState:
    """Owns the current role; the only place that changes it."""

    def __init__(self, local_id: int, voters: frozenset[int], persisted: ElectionState) -> None:
        self.local_id = local_id
        self.voters = voters
        self.role: Role = role_from_election_state(persisted, local_id)
        self.persisted = persisted
        self.unpersisted: ElectionState | None = None
        if not self.is_voter:
            assert self.role.name in OBSERVER_ROLES, f"observer restored as {self.role.name}"

    @property
    def is_voter(self) -> bool:
        return self.local_id in self.voters

    @property
    def epoch(self) -> int:
        return self.role.epoch

    @property
    def majority(self) -> int:
        return len(self.voters) // 2 + 1

    @property
    def leader_id(self) -> int | None:
        if isinstance(self.role, Follower):
            return self.role.leader_id
        if isinstance(self.role, Leader):
            return self.local_id
        return None

    def transition(self, new_role: Role) -> None:
        old = self.role
        if new_role.name not in TRANSITIONS[old.name]:
            raise LocalStateError(f"{old.name} -> {new_role.name} is not a legal transition")
        if new_role.epoch < old.epoch:
            raise LocalStateError(f"epoch {old.epoch} -> {new_role.epoch} goes backwards")
        if not self.is_voter and new_role.name not in OBSERVER_ROLES:
            raise LocalStateError(f"an observer cannot become {new_role.name}")
        old_vote = election_state_of(old, self.local_id).voted_id
        if old_vote is not None and new_role.epoch == old.epoch \
                and isinstance(new_role, (Unattached, Prospective)) and new_role.voted_id != old_vote:
            raise LocalStateError(f"vote for {old_vote} in epoch {old.epoch} would be forgotten")
        self.role = new_role
        state = election_state_of(new_role, self.local_id)
        if state != self.persisted:
            self.unpersisted = state

    def take_unpersisted(self) -> ElectionState | None:
        """The election state the driver must persist before sending anything."""
        state, self.unpersisted = self.unpersisted, None
        if state is not None:
            self.persisted = state
        return state
