"""A classic consumer group's membership state, as Kafka's GroupMetadata keeps it.

States and transitions (Kafka's classic protocol):
  Empty               --join-->              PreparingRebalance
  PreparingRebalance  --all joined/timeout--> CompletingRebalance (members > 0) | Empty
  CompletingRebalance --leader SyncGroup-->  Stable
  CompletingRebalance --join/leave/expiry--> PreparingRebalance
  Stable              --join/leave/expiry--> PreparingRebalance
  any                 --DeleteGroups/all offsets expired--> Dead
A rebalance completes when every known member has rejoined or the rebalance timeout
(the largest of the members') has passed; members that did not rejoin are removed and
the generation advances. The first rebalance of an empty group waits
``group.initial.rebalance.delay.ms`` (extended by each new member, up to the timeout),
so a group starting many members at once rebalances once.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field

import trio


class GroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


class Reply:
    """A response that is made later (JoinGroup and SyncGroup park until a rebalance
    step completes); ``set`` once, ``wait`` any number of times."""

    __slots__ = ("_event", "value")

    def __init__(self) -> None:
        self._event = trio.Event()
        self.value: object = None

    def set(self, value: object) -> None:
        if not self._event.is_set():
            self.value = value
            self._event.set()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> object:
        await self._event.wait()
        return self.value


@dataclass
class Member:
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    assignment: bytes = b""
    session_deadline: float = 0.0
    join_reply: Reply | None = None
    sync_reply: Reply | None = None

    def metadata_for(self, protocol: str | None) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        return b""

    @property
    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]


@dataclass
class Group:
    group_id: str
    state: GroupState = GroupState.EMPTY
    protocol_type: str | None = None
    protocol_name: str | None = None
    generation: int = 0
    leader: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    instances: dict[str, str] = field(default_factory=dict)  # group.instance.id -> member id
    pending_members: dict[str, float] = field(default_factory=dict)  # MEMBER_ID_REQUIRED, deadline
    rebalance_deadline: float = 0.0
    initial_delay_deadline: float = 0.0
    state_timestamp_ms: int = 0

    @property
    def is_empty(self) -> bool:
        return not self.members

    def add_member(self, member: Member) -> None:
        if not self.members:
            self.protocol_type = member.protocol_type
        self.members[member.member_id] = member
        if member.instance_id is not None:
            self.instances[member.instance_id] = member.member_id
        if self.leader is None:
            self.leader = member.member_id

    def remove_member(self, member_id: str) -> Member | None:
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        if member.instance_id is not None and self.instances.get(member.instance_id) == member_id:
            del self.instances[member.instance_id]
        if self.leader == member_id:
            self.leader = next(iter(self.members), None)
        return member

    def supports_protocols(self, protocol_type: str, names: list[str]) -> bool:
        """A joining member must share the group's protocol type and one protocol."""
        if not self.members:
            return bool(protocol_type) and bool(names)
        if protocol_type != self.protocol_type:
            return False
        return bool(self.candidate_protocols() & set(names))

    def candidate_protocols(self) -> set[str]:
        sets = [set(m.protocol_names) for m in self.members.values()]
        return set.intersection(*sets) if sets else set()

    def select_protocol(self) -> str | None:
        """Each member votes for its most preferred protocol that all members support."""
        candidates = self.candidate_protocols()
        votes = Counter(next(n for n in m.protocol_names if n in candidates)
                        for m in self.members.values() if candidates)
        if not votes:
            return None
        return max(votes, key=lambda name: (votes[name], -sorted(candidates).index(name)))

    def all_rejoined(self) -> bool:
        return all(m.join_reply is not None for m in self.members.values())

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def subscribed_topics(self) -> set[str] | None:
        """Topics the group's consumers subscribe to, or None if it is not a consumer group."""
        if self.protocol_type != "consumer" or not self.members:
            return None
        from .subscription import subscribed_topics
        topics: set[str] = set()
        for member in self.members.values():
            topics |= subscribed_topics(member.metadata_for(self.protocol_name))
        return topics
