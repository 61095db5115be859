"""The consumer-group calls of the tools, over ``protocol.client``, at the versions the broker speaks.

Every call that concerns one group goes to that group's coordinator, found with
FindCoordinator; a coordinator that is still loading (or whose ``__consumer_offsets``
partition has just been created) is asked again, a bounded number of times, as Kafka's Admin
retries. Requests are built with ``admin.build``, so one code path serves every version.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import trio
from kio.schema.errors import ErrorCode

from protocol.client import Client, Connection, KafkaClientError
from tools import admin
from tools.admin import KafkaApiError, build, check, error_code

OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR = 8, 9, 10
DESCRIBE_GROUPS, LIST_GROUPS, DELETE_GROUPS, OFFSET_DELETE = 15, 16, 42, 47
GROUP_KEY_TYPE = 0
COORDINATOR_ATTEMPTS_MAX = 50
COORDINATOR_BACKOFF_MS = 100
RETRIABLE_COORDINATOR_ERRORS = frozenset({
    ErrorCode.coordinator_not_available, ErrorCode.coordinator_load_in_progress, ErrorCode.not_coordinator,
})

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Coordinator:
    node_id: int
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class GroupMember:
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupDescription:
    group_id: str
    error: ErrorCode
    state: str
    protocol_type: str
    protocol: str
    members: tuple[GroupMember, ...]
    coordinator: Coordinator


@dataclass(frozen=True, slots=True)
class GroupListing:
    group_id: str
    protocol_type: str
    state: str
    group_type: str


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str | None


async def find_coordinator(client: Client, group_id: str) -> Coordinator:
    connection = await client.any_connection()
    version = connection.version_for(FIND_COORDINATOR, 4, 0)
    for _ in range(COORDINATOR_ATTEMPTS_MAX):
        if version >= 4:
            response = await connection.request(build(
                FIND_COORDINATOR, version, key_type=GROUP_KEY_TYPE, coordinator_keys=(group_id,)))
            found = response.coordinators[0]
        else:
            found = await connection.request(build(FIND_COORDINATOR, version, key=group_id, key_type=GROUP_KEY_TYPE))
        code = error_code(found.error_code)
        if code == ErrorCode.none:
            return Coordinator(found.node_id, found.host, found.port)
        if code not in RETRIABLE_COORDINATOR_ERRORS:
            raise KafkaApiError(code, getattr(found, "error_message", None))
        await trio.sleep(COORDINATOR_BACKOFF_MS / 1000)
    raise KafkaApiError(ErrorCode.coordinator_not_available)


async def coordinator_connection(client: Client, group_id: str) -> tuple[Coordinator, Connection]:
    """The coordinator and the client's connection to it (shared with the client's other calls)."""
    coordinator = await find_coordinator(client, group_id)
    if coordinator.node_id not in client.brokers:
        await client.metadata([])
    return coordinator, await client.connection_to(coordinator.node_id)


async def _with_coordinator(client: Client, group_id: str, call: Any) -> Any:
    """Run ``call(coordinator, connection)`` and ask again when the coordinator moved or loads."""
    for _ in range(COORDINATOR_ATTEMPTS_MAX):
        coordinator, connection = await coordinator_connection(client, group_id)
        try:
            return await call(coordinator, connection)
        except KafkaApiError as error:
            if error.code not in RETRIABLE_COORDINATOR_ERRORS:
                raise
        await trio.sleep(COORDINATOR_BACKOFF_MS / 1000)
    raise KafkaApiError(ErrorCode.coordinator_not_available)


# --- describe and list ----------------------------------------------------------------------


async def describe_group(client: Client, group_id: str) -> GroupDescription:
    async def call(coordinator: Coordinator, connection: Connection) -> GroupDescription:
        version = connection.version_for(DESCRIBE_GROUPS, 5, 0)
        response = await connection.request(
            build(DESCRIBE_GROUPS, version, groups=(group_id,), include_authorized_operations=False))
        group = response.groups[0]
        code = error_code(group.error_code)
        if code in RETRIABLE_COORDINATOR_ERRORS:
            raise KafkaApiError(code)
        members = tuple(
            GroupMember(m.member_id, getattr(m, "group_instance_id", None), m.client_id, m.client_host,
                        bytes(m.member_metadata), bytes(m.member_assignment))
            for m in group.members
        )
        return GroupDescription(group.group_id, code, group.group_state, group.protocol_type, group.protocol_data,
                                members, coordinator)

    return await _with_coordinator(client, group_id, call)


async def list_groups(client: Client, states: Iterable[str] = ()) -> list[GroupListing]:
    """Every broker's groups (each broker lists the groups it coordinates), filtered by state;
    with states, brokers older than ListGroups v4 are filtered here."""
    states = [state for state in states]
    metadata = await client.metadata([])
    listings: list[GroupListing] = []
    for node_id in sorted(broker.node_id for broker in metadata.brokers):
        connection = await client.connection_to(node_id)
        version = connection.version_for(LIST_GROUPS, 5, 0)
        response = await connection.request(build(LIST_GROUPS, version, states_filter=tuple(states), types_filter=()))
        check(response.error_code)
        wanted = {state.lower() for state in states}
        for group in response.groups:
            state = getattr(group, "group_state", "")
            if wanted and state.lower() not in wanted:
                continue
            listings.append(GroupListing(group.group_id, group.protocol_type, state,
                                         getattr(group, "group_type", "") or "classic"))
    return listings


# --- offsets --------------------------------------------------------------------------------


async def fetch_offsets(
    connection: Connection, group_id: str, partitions: Iterable[TopicPartition] | None = None,
    *, require_stable: bool = True,
) -> dict[TopicPartition, CommittedOffset]:
    """Committed offsets (all of the group's when ``partitions`` is None); partitions without a
    committed offset are left out."""
    version = connection.version_for(OFFSET_FETCH, 8, 1)
    topics = None
    if partitions is not None:
        by_topic: dict[str, list[int]] = {}
        for topic, partition in partitions:
            by_topic.setdefault(topic, []).append(partition)
        topic_class = "OffsetFetchRequestTopics" if version >= 8 else "OffsetFetchRequestTopic"
        topics = tuple(build(OFFSET_FETCH, version, topic_class, name=t, partition_indexes=tuple(p))
                       for t, p in by_topic.items())
    if version >= 8:
        group = build(OFFSET_FETCH, version, "OffsetFetchRequestGroup", group_id=group_id, topics=topics)
        response = await connection.request(build(OFFSET_FETCH, version, groups=(group,), require_stable=require_stable))
        answer = response.groups[0]
    else:
        answer = await connection.request(
            build(OFFSET_FETCH, version, group_id=group_id, topics=topics, require_stable=require_stable))
    check(getattr(answer, "error_code", ErrorCode.none))
    result = {}
    for topic in answer.topics:
        for partition in topic.partitions:
            check(partition.error_code)
            if partition.committed_offset >= 0:
                result[(topic.name, partition.partition_index)] = CommittedOffset(
                    partition.committed_offset, getattr(partition, "committed_leader_epoch", -1), partition.metadata)
    return result


async def commit_offsets(
    connection: Connection, group_id: str, offsets: dict[TopicPartition, int], *,
    generation: int = -1, member_id: str = "", instance_id: str | None = None,
) -> dict[TopicPartition, ErrorCode]:
    """OffsetCommit; generation -1 with an empty member id is the admin's commit to an empty
    group. Returns each partition's error code."""
    version = connection.version_for(OFFSET_COMMIT, 8, 2)
    by_topic: dict[str, list[tuple[int, int]]] = {}
    for (topic, partition), offset in offsets.items():
        by_topic.setdefault(topic, []).append((partition, offset))
    topics = tuple(
        build(OFFSET_COMMIT, version, "OffsetCommitRequestTopic", name=topic, partitions=tuple(
            build(OFFSET_COMMIT, version, "OffsetCommitRequestPartition", partition_index=p, committed_offset=o,
                  committed_leader_epoch=-1, committed_metadata="")
            for p, o in entries))
        for topic, entries in by_topic.items()
    )
    response = await connection.request(build(
        OFFSET_COMMIT, version, group_id=group_id, generation_id_or_member_epoch=generation, member_id=member_id,
        group_instance_id=instance_id, retention_time=admin.milliseconds(-1), topics=topics))
    return {(topic.name, p.partition_index): error_code(p.error_code)
            for topic in response.topics for p in topic.partitions}


async def delete_offsets(
    connection: Connection, group_id: str, partitions: Iterable[TopicPartition]
) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode]]:
    by_topic: dict[str, list[int]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, []).append(partition)
    request = build(OFFSET_DELETE, 0, group_id=group_id, topics=tuple(
        build(OFFSET_DELETE, 0, "OffsetDeleteRequestTopic", name=topic, partitions=tuple(
            build(OFFSET_DELETE, 0, "OffsetDeleteRequestPartition", partition_index=p) for p in parts))
        for topic, parts in by_topic.items()))
    connection.version_for(OFFSET_DELETE, 0, 0)
    response = await connection.request(request)
    results = {(topic.name, p.partition_index): error_code(p.error_code)
               for topic in response.topics for p in topic.partitions}
    return error_code(response.error_code), results


async def delete_group(client: Client, group_id: str) -> ErrorCode:
    async def call(coordinator: Coordinator, connection: Connection) -> ErrorCode:
        version = connection.version_for(DELETE_GROUPS, 2, 0)
        response = await connection.request(build(DELETE_GROUPS, version, groups_names=(group_id,)))
        code = error_code(response.results[0].error_code)
        if code in RETRIABLE_COORDINATOR_ERRORS:
            raise KafkaApiError(code)
        return code

    return await _with_coordinator(client, group_id, call)


__all__ = [
    "CommittedOffset", "Coordinator", "GroupDescription", "GroupListing", "GroupMember", "KafkaClientError",
    "commit_offsets", "coordinator_connection", "delete_group", "delete_offsets", "describe_group",
    "fetch_offsets", "find_coordinator", "list_groups",
]
