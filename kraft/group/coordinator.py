"""The group coordinator: classic rebalances and committed offsets for the groups whose
``__consumer_offsets`` partition this broker leads.

Rules:
- Every group fact that must survive a restart or a coordinator move (committed
  offsets, the generation with its members and assignments) is appended to the group's
  ``__consumer_offsets`` partition before it is acknowledged, with acks=-1: the answer
  waits until the partition's ISR holds it (``offsets.commit.timeout.ms``), so a new
  coordinator on another replica finds it; the in-memory view is rebuilt from that
  partition when this broker starts leading it.
- JoinGroup and SyncGroup answers are parked (``Reply``) until the rebalance step they
  wait for completes; one timer task owned by ``run`` expires sessions, rebalance
  timeouts, the initial rebalance delay and old offsets.
- Errors are Kafka's: NOT_COORDINATOR for a group that lives elsewhere,
  COORDINATOR_LOAD_IN_PROGRESS while its partition loads, UNKNOWN_MEMBER_ID,
  ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID and so on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import trio
from kio.schema.errors import ErrorCode

from protocol.records import RecordInput, build_batch, decode_batch, iter_batches
from storage.errors import StorageError

from ..controller.control import NewTopic
from .group import Group, GroupState, Member
from .records import (
    OFFSETS_TOPIC, CommittedOffset, GroupSnapshot, OffsetsRecordError, decode, group_key,
    group_value, partition_for,
)

logger = logging.getLogger(__name__)
OFFSET_METADATA_BYTES_MAX = 4096
TIMER_TICK_S_MAX = 0.25
LOAD_READ_BYTES = 1 << 20
# Kafka's GroupMetadataManager: how a replicated write's failure reaches a group client.
COMMIT_ERRORS = {
    ErrorCode.not_enough_replicas_after_append: ErrorCode.coordinator_not_available,
    ErrorCode.request_timed_out: ErrorCode.coordinator_not_available,
    ErrorCode.not_leader_or_follower: ErrorCode.not_coordinator,
}


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class JoinResult:
    error_code: ErrorCode
    generation: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    member_id: str = ""
    members: tuple[tuple[str, str | None, bytes], ...] = ()


class CoordinatorBase:
    """Ownership, loading and persistence; the request handling is in the mixins
    (``membership``, ``offsets``) that ``kraft.group.GroupCoordinator`` combines."""

    def __init__(self, node_id: int, config: Any, replicas: Any, controller: Any,
                 image_source: Callable[[], Any]) -> None:
        self.node_id = node_id
        self._config = config
        self._replicas = replicas
        self._controller = controller
        self._image = image_source
        self.partition_count = config["offsets.topic.num.partitions"]
        self.groups: dict[str, Group] = {}
        self.offsets: dict[str, dict[tuple[str, int], CommittedOffset]] = {}
        self.loaded: set[int] = set()
        self._wakeup = trio.Event()
        self._pending_persists: list[str] = []
        # Wall-clock milliseconds for commit timestamps and offset expiry; tests replace it.
        self.clock_ms: Callable[[], int] = wall_ms

    # ----- ownership ---------------------------------------------------------------------

    def partition_of(self, group_id: str) -> int:
        return partition_for(group_id, self.partition_count)

    def coordinator_error(self, group_id: str) -> ErrorCode:
        topic = self._image().topic(OFFSETS_TOPIC)
        if topic is None:
            return ErrorCode.coordinator_not_available
        state = topic.partitions.get(self.partition_of(group_id))
        if state is None or state.leader != self.node_id:
            return ErrorCode.not_coordinator
        if self.partition_of(group_id) not in self.loaded:
            return ErrorCode.coordinator_load_in_progress
        return ErrorCode.none

    async def ensure_offsets_topic(self) -> ErrorCode:
        """Create ``__consumer_offsets`` on first use, as Kafka's FindCoordinator does."""
        if self._image().topic(OFFSETS_TOPIC) is not None:
            return ErrorCode.none
        replication = self._config["offsets.topic.replication.factor"]
        results = await self._controller.create_topics([NewTopic(
            OFFSETS_TOPIC, self.partition_count, replication,
            configs={"cleanup.policy": "compact", "compression.type": "producer",
                     "segment.bytes": "104857600"})], False)
        code = results[0].error_code
        if code not in (ErrorCode.none, ErrorCode.topic_already_exists):
            logger.warning("[node %d] cannot create %s: %s", self.node_id, OFFSETS_TOPIC,
                           results[0].error_message)
            return ErrorCode.coordinator_not_available
        return ErrorCode.none

    def on_image(self, delta: Any, image: Any) -> None:
        """Load the partitions this node now leads; forget the ones it no longer leads. Only
        a delta that touches ``__consumer_offsets`` (or a full one) can change that."""
        topic = image.topic(OFFSETS_TOPIC)
        if not (delta.full or OFFSETS_TOPIC in delta.removed_topics.values()
                or (topic is not None and delta.touches_topic(topic.topic_id))):
            return
        led = set() if topic is None else {i for i, p in topic.partitions.items() if p.leader == self.node_id}
        for index in sorted(self.loaded - led):
            self._unload(index)
        for index in sorted(led - self.loaded):
            partition = self._replicas.partition(OFFSETS_TOPIC, index)
            if partition is not None:
                self._load(index, partition.log)

    def _unload(self, index: int) -> None:
        self.loaded.discard(index)
        for group_id in [g for g in self.groups if self.partition_of(g) == index]:
            for member in self.groups.pop(group_id).members.values():
                for reply in (member.join_reply, member.sync_reply):
                    if reply is not None:
                        reply.set(JoinResult(ErrorCode.not_coordinator))
            self.offsets.pop(group_id, None)

    def _load(self, index: int, log: Any) -> None:
        offset, count = log.log_start_offset, 0
        while offset < log.log_end_offset:
            data = log.read(offset, LOAD_READ_BYTES).records
            if not data:
                break
            for position, header in iter_batches(data):
                offset = header.next_offset
                if header.is_control:
                    continue
                for record in decode_batch(data, position)[1]:
                    try:
                        self._replay(decode(record.key, record.value))
                        count += 1
                    except OffsetsRecordError as error:
                        logger.warning("[node %d] %s-%d offset %d: %s", self.node_id, OFFSETS_TOPIC,
                                       index, record.offset, error)
        self.loaded.add(index)
        logger.info("[node %d] loaded %d group records from %s-%d", self.node_id, count, OFFSETS_TOPIC, index)

    def _replay(self, fact: tuple) -> None:
        if fact[0] == "offset":
            _, group_id, topic, partition, committed = fact
            offsets = self.offsets.setdefault(group_id, {})
            if committed is None:
                offsets.pop((topic, partition), None)
            else:
                offsets[(topic, partition)] = committed
                self.groups.setdefault(group_id, Group(group_id))
            return
        _, group_id, snapshot = fact
        if snapshot is None:
            self.groups.pop(group_id, None)
            return
        self.groups[group_id] = self._group_from(group_id, snapshot)

    def _group_from(self, group_id: str, snapshot: GroupSnapshot) -> Group:
        group = Group(group_id, protocol_type=snapshot.protocol_type, generation=snapshot.generation,
                      protocol_name=snapshot.protocol_name, state_timestamp_ms=snapshot.state_timestamp_ms)
        now = trio.current_time() if _in_trio() else 0.0
        for member_id, instance_id, client_id, host, session_ms, rebalance_ms, metadata, assignment in snapshot.members:
            group.add_member(Member(member_id, instance_id, client_id, host, session_ms, rebalance_ms,
                                    snapshot.protocol_type or "", [(snapshot.protocol_name or "", metadata)],
                                    assignment, session_deadline=now + session_ms / 1000))
        group.leader = snapshot.leader if snapshot.leader in group.members else group.leader
        group.state = GroupState.STABLE if group.members else GroupState.EMPTY
        return group

    # ----- persistence -------------------------------------------------------------------

    async def _append(self, group_id: str, entries: list[tuple[bytes, bytes | None]]) -> ErrorCode:
        if not entries:
            return ErrorCode.none
        index = self.partition_of(group_id)
        partition = self._replicas.partition(OFFSETS_TOPIC, index)
        if partition is None or partition.state.leader != self.node_id:
            return ErrorCode.not_coordinator
        replicas = self._replicas
        if len(replicas.in_sync_replicas(partition)) < replicas.min_insync_replicas(partition):
            return ErrorCode.coordinator_not_available  # Kafka's answer for NOT_ENOUGH_REPLICAS
        batch = build_batch([RecordInput(key=k, value=v) for k, v in entries])
        leader_epoch = partition.leader_epoch
        try:
            result = partition.log.append(batch, leader_epoch=leader_epoch)
        except (StorageError, OSError) as error:  # a storage failure becomes a retriable answer
            logger.error("[node %d] cannot write group %s to %s-%d: %r", self.node_id, group_id,
                         OFFSETS_TOPIC, index, error)
            return ErrorCode.coordinator_not_available
        # As Kafka's GroupMetadataManager: acks=-1, bounded by offsets.commit.timeout.ms.
        replicas.advance_high_watermark(partition)
        deadline = trio.current_time() + self._config["offsets.commit.timeout.ms"] / 1000
        code = await replicas.wait_replicated(partition, leader_epoch, result.last_offset + 1, deadline)
        return COMMIT_ERRORS.get(code, code)

    def _snapshot(self, group: Group) -> GroupSnapshot:
        members = tuple(
            (m.member_id, m.instance_id, m.client_id, m.client_host, m.session_timeout_ms,
             m.rebalance_timeout_ms, m.metadata_for(group.protocol_name), m.assignment)
            for m in group.members.values())
        return GroupSnapshot(group.protocol_type, group.generation, group.protocol_name, group.leader,
                             group.state_timestamp_ms, members)

    async def _persist_group(self, group: Group) -> ErrorCode:
        return await self._append(group.group_id, [(group_key(group.group_id), group_value(self._snapshot(group)))])

    def _wake(self) -> None:
        self._wakeup.set()


def _in_trio() -> bool:
    try:
        trio.lowlevel.current_task()
        return True
    except RuntimeError:
        return False
