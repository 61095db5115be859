"""A member of a classic consumer group, enough for ``kafka-console-consumer --group``.

It speaks the classic rebalance protocol to the group's coordinator over a connection of its
own (so a long JoinGroup never waits behind a Fetch), with the "consumer" protocol type, one
protocol ("range") and a ConsumerProtocolSubscription; the leader computes the range
assignment and hands every member its ConsumerProtocolAssignment in SyncGroup.

Rules and transitions:
- ``join()``: UNJOINED or REJOIN_NEEDED -> JOINED. JoinGroup answered MEMBER_ID_REQUIRED is
  sent again at once with the member id it carries; UNKNOWN_MEMBER_ID forgets the member id
  and joins again; REBALANCE_IN_PROGRESS or ILLEGAL_GENERATION in SyncGroup joins again; a
  coordinator that moved or is loading is looked up again after a backoff. Every retry counts
  against ``JOIN_ATTEMPTS_MAX``; other errors are the caller's.
- ``heartbeat_loop``: while JOINED, one Heartbeat per ``heartbeat_interval_ms``. A rebalance,
  an illegal generation or a lost coordinator sets REJOIN_NEEDED (an unknown member id also
  forgets the id); the owner notices ``needs_rejoin`` and calls ``join()`` again, committing
  first if it commits.
- ``commit()`` carries the generation and member id; a rebalance answer sets REJOIN_NEEDED
  and reports the commit as not done (Kafka's CommitFailedException).
- ``leave()`` sends LeaveGroup for a dynamic member; static members stay, as in Kafka.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import trio
from kio.schema.errors import ErrorCode

from protocol.client import Client, Connection, KafkaClientError
from protocol.consumer_protocol import (
    PROTOCOL_TYPE,
    RANGE_ASSIGNOR,
    ConsumerProtocolError,
    MemberSubscription,
    Subscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
    range_assign,
)
from tools import admin, group_admin
from tools.admin import KafkaApiError, build, error_code
from tools.common import ToolError

JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 11, 12, 13, 14
JOIN_ATTEMPTS_MAX = 50
RETRY_BACKOFF_MS = 100
METADATA_ATTEMPTS_MAX = 50
SESSION_TIMEOUT_MS = 45_000
REBALANCE_TIMEOUT_MS = 300_000
HEARTBEAT_INTERVAL_MS = 3_000
REJOIN_ERRORS = frozenset({ErrorCode.rebalance_in_progress, ErrorCode.illegal_generation})
FORGET_MEMBER_ERRORS = frozenset({ErrorCode.unknown_member_id})
TopicPartition = tuple[str, int]


class MemberState(enum.Enum):
    UNJOINED = "unjoined"
    JOINED = "joined"
    REJOIN_NEEDED = "rejoin needed"


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """The consumer configs that shape membership, with Kafka 4.x's defaults."""

    session_timeout_ms: int = SESSION_TIMEOUT_MS
    rebalance_timeout_ms: int = REBALANCE_TIMEOUT_MS  # max.poll.interval.ms
    heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS
    instance_id: str | None = None

    @classmethod
    def from_properties(cls, properties: dict[str, str]) -> "GroupSettings":
        def number(key: str, default: int) -> int:
            try:
                return int(properties.get(key, default))
            except ValueError:
                raise ToolError(f"Invalid value {properties[key]} for configuration {key}") from None

        return cls(number("session.timeout.ms", SESSION_TIMEOUT_MS),
                   number("max.poll.interval.ms", REBALANCE_TIMEOUT_MS),
                   number("heartbeat.interval.ms", HEARTBEAT_INTERVAL_MS),
                   properties.get("group.instance.id") or None)


class GroupMember:
    def __init__(self, client: Client, group_id: str, topics: list[str], settings: GroupSettings,
                 client_id: str) -> None:
        self._client = client
        self._group_id = group_id
        self._topics = list(topics)
        self._settings = settings
        self._client_id = client_id
        self._connection: Connection | None = None
        self.state = MemberState.UNJOINED
        self.member_id = ""
        self.generation = -1
        self.assignment: tuple[TopicPartition, ...] = ()

    @property
    def needs_rejoin(self) -> bool:
        return self.state is not MemberState.JOINED

    async def _coordinator(self) -> Connection:
        if self._connection is None:
            coordinator = await group_admin.find_coordinator(self._client, self._group_id)
            self._connection = await Connection.open(coordinator.host, coordinator.port, self._client_id)
        return self._connection

    async def _forget_coordinator(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.aclose()

    # --- joining ----------------------------------------------------------------------------

    async def join(self) -> tuple[TopicPartition, ...]:
        """Join (or rejoin) and return this member's partitions."""
        last_error: KafkaClientError | None = None
        for _ in range(JOIN_ATTEMPTS_MAX):
            self.state = MemberState.REJOIN_NEEDED
            try:
                assignment = await self._join_once()
            except KafkaClientError as error:
                last_error = error
                await self._forget_coordinator()
                assignment = None
            if assignment is not None:
                self.assignment = assignment
                self.state = MemberState.JOINED
                return assignment
        reason = f": {last_error}" if last_error is not None else ""
        raise KafkaApiError(ErrorCode.rebalance_in_progress,
                            f"could not join group {self._group_id} in {JOIN_ATTEMPTS_MAX} attempts{reason}")

    async def _join_once(self) -> tuple[TopicPartition, ...] | None:
        """One JoinGroup and SyncGroup; None means "try again" (the reason is already handled)."""
        connection = await self._coordinator()
        version = connection.version_for(JOIN_GROUP, 9, 0)
        metadata = encode_subscription(Subscription(tuple(self._topics)))
        response = await connection.request(build(
            JOIN_GROUP, version, group_id=self._group_id,
            session_timeout=admin.milliseconds(self._settings.session_timeout_ms),
            rebalance_timeout=admin.milliseconds(self._settings.rebalance_timeout_ms),
            member_id=self.member_id, group_instance_id=self._settings.instance_id, protocol_type=PROTOCOL_TYPE,
            protocols=(build(JOIN_GROUP, version, "JoinGroupRequestProtocol", name=RANGE_ASSIGNOR, metadata=metadata),),
            reason=None))
        code = error_code(response.error_code)
        if code == ErrorCode.member_id_required:
            self.member_id = response.member_id
            return None
        if not await self._handled(code):
            return None
        self.member_id, self.generation = response.member_id, response.generation_id
        assignments = ()
        if response.leader == response.member_id:
            assignments = await self._assign(version, response.members)
        return await self._sync(response.protocol_name or RANGE_ASSIGNOR, assignments)

    async def _handled(self, code: ErrorCode) -> bool:
        """True for success; retriable errors are acted on (and answer False); others raise."""
        if code == ErrorCode.none:
            return True
        if code in FORGET_MEMBER_ERRORS:
            self.member_id, self.generation = "", -1
        elif code in group_admin.RETRIABLE_COORDINATOR_ERRORS:
            await self._forget_coordinator()
            await trio.sleep(RETRY_BACKOFF_MS / 1000)
        elif code not in REJOIN_ERRORS:
            raise KafkaApiError(code)
        return False

    async def _assign(self, version: int, members: Any) -> tuple[tuple[str, bytes], ...]:
        """The leader's part: range-assign every member's subscription."""
        subscriptions = []
        for member in members:
            try:
                subscription = decode_subscription(bytes(member.metadata))
            except ConsumerProtocolError:
                subscription = Subscription(())
            subscriptions.append(MemberSubscription(member.member_id, getattr(member, "group_instance_id", None),
                                                    subscription))
        topics = sorted({t for s in subscriptions for t in s.subscription.topics})
        counts = await self._partition_counts(topics)
        assigned = range_assign(subscriptions, counts)
        return tuple((member_id, encode_assignment(a)) for member_id, a in assigned.items())

    async def _partition_counts(self, topics: list[str]) -> dict[str, int]:
        """Partition counts, waiting (bounded) for topics that metadata still creates."""
        counts: dict[str, int] = {}
        for _ in range(METADATA_ATTEMPTS_MAX):
            response = await self._client.metadata(topics, auto_create=True)
            counts = {t.name: len(t.partitions) for t in response.topics
                      if error_code(t.error_code) == ErrorCode.none and t.partitions}
            if len(counts) == len(topics):
                break
            await trio.sleep(RETRY_BACKOFF_MS / 1000)
        return counts

    async def _sync(self, protocol_name: str, assignments: tuple[tuple[str, bytes], ...]) -> tuple[TopicPartition, ...] | None:
        connection = await self._coordinator()
        version = connection.version_for(SYNC_GROUP, 5, 0)
        response = await connection.request(build(
            SYNC_GROUP, version, group_id=self._group_id, generation_id=self.generation, member_id=self.member_id,
            group_instance_id=self._settings.instance_id, protocol_type=PROTOCOL_TYPE, protocol_name=protocol_name,
            assignments=tuple(build(SYNC_GROUP, version, "SyncGroupRequestAssignment", member_id=m, assignment=a)
                              for m, a in assignments)))
        if not await self._handled(error_code(response.error_code)):
            return None
        try:
            return decode_assignment(bytes(response.assignment)).partitions
        except ConsumerProtocolError as error:
            raise KafkaClientError(f"the group leader sent an assignment that does not decode: {error}") from error

    # --- staying in the group ---------------------------------------------------------------

    async def heartbeat_loop(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(self._settings.heartbeat_interval_ms / 1000)
            if self.state is not MemberState.JOINED:
                continue
            try:
                connection = await self._coordinator()
                version = connection.version_for(HEARTBEAT, 4, 0)
                response = await connection.request(build(
                    HEARTBEAT, version, group_id=self._group_id, generation_id=self.generation,
                    member_id=self.member_id, group_instance_id=self._settings.instance_id))
                code = error_code(response.error_code)
            except KafkaClientError:
                await self._forget_coordinator()
                code = ErrorCode.coordinator_not_available
            if code != ErrorCode.none and self.state is MemberState.JOINED:
                self.state = MemberState.REJOIN_NEEDED
                await self._handled(code)

    async def committed(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        if not partitions:
            return {}
        offsets = await group_admin.fetch_offsets(await self._coordinator(), self._group_id, partitions)
        return {tp: committed.offset for tp, committed in offsets.items()}

    async def commit(self, offsets: dict[TopicPartition, int]) -> bool:
        """Commit for this generation; False when the group rebalanced meanwhile."""
        if not offsets:
            return True
        generation = self.generation if self.state is not MemberState.UNJOINED else -1
        results = await group_admin.commit_offsets(
            await self._coordinator(), self._group_id, offsets, generation=generation, member_id=self.member_id,
            instance_id=self._settings.instance_id)
        for code in results.values():
            if code in REJOIN_ERRORS or code in FORGET_MEMBER_ERRORS:
                if self.state is MemberState.JOINED:
                    self.state = MemberState.REJOIN_NEEDED
                await self._handled(code)
                return False
            admin.check(code)
        return True

    async def leave(self) -> None:
        """Leave the group (dynamic members only) and close the coordinator connection."""
        try:
            if self.member_id and self._settings.instance_id is None and self._connection is not None:
                connection = self._connection
                version = connection.version_for(LEAVE_GROUP, 5, 0)
                identity = build(LEAVE_GROUP, version, "MemberIdentity", member_id=self.member_id,
                                 group_instance_id=None, reason="the consumer is being closed")
                await connection.request(build(LEAVE_GROUP, version, group_id=self._group_id,
                                               member_id=self.member_id, members=(identity,)))
        finally:
            self.state = MemberState.UNJOINED
            await self._forget_coordinator()
