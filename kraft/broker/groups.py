"""Group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
OffsetFetch, OffsetDelete, ListGroups, DescribeGroups, DeleteGroups.

These translate between each API version's fields and the coordinator's calls; the
rules live in ``kraft.group``. Older versions put errors in different places (a
top-level error in OffsetFetch v2-7, per group from v8), which is handled here.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from protocol.apis import Request, response_class

from ..group import GroupState
from ..server.network import ConnectionInfo
from .build import make, nested, to_millis
from .cluster import broker_endpoints
from .core import Broker, handles

(OFFSET_COMMIT_KEY, OFFSET_FETCH_KEY, FIND_COORDINATOR_KEY, JOIN_GROUP_KEY, HEARTBEAT_KEY,
 LEAVE_GROUP_KEY, SYNC_GROUP_KEY, DESCRIBE_GROUPS_KEY, LIST_GROUPS_KEY, DELETE_GROUPS_KEY,
 OFFSET_DELETE_KEY) = 8, 9, 10, 11, 12, 13, 14, 15, 16, 42, 47
GROUP_KEY_TYPE = 0


def _nested_any(cls: type, *names: str) -> type:
    for name in names:
        found = nested(cls, name)
        if found is not None:
            return found
    raise LookupError(f"none of {names} in {cls.__module__}")


async def _find_one(broker: Broker, key: str, key_type: int, listener: str) -> dict:
    if key_type != GROUP_KEY_TYPE:
        return {"error_code": ErrorCode.coordinator_not_available, "node_id": -1, "host": "", "port": -1,
                "error_message": "Only group coordinators are available on this cluster so far"}
    error = await broker.groups.ensure_offsets_topic()
    if error == ErrorCode.none:
        topic = broker.image.topic("__consumer_offsets")
        leader = topic.partitions[broker.groups.partition_of(key)].leader if topic else -1
        for node_id, host, port, _rack in broker_endpoints(broker.image, listener):
            if node_id == leader:
                return {"error_code": ErrorCode.none, "node_id": node_id, "host": host, "port": port,
                        "error_message": None}
        error = ErrorCode.coordinator_not_available
    return {"error_code": error, "node_id": -1, "host": "", "port": -1, "error_message": None}


@handles(FIND_COORDINATOR_KEY)
async def handle_find_coordinator(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    body = request.body
    cls = response_class(FIND_COORDINATOR_KEY, request.api_version)
    key_type = getattr(body, "key_type", GROUP_KEY_TYPE)
    if request.api_version >= 4:
        coordinators = []
        for key in body.coordinator_keys:
            found = await _find_one(broker, key, key_type, info.listener)
            coordinators.append(make(nested(cls, "Coordinator"), key=key, **found))
        return make(cls, throttle_time=0, coordinators=tuple(coordinators))
    found = await _find_one(broker, body.key, key_type, info.listener)
    return make(cls, throttle_time=0, **found)


@handles(JOIN_GROUP_KEY)
async def handle_join_group(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    body = request.body
    session_ms = to_millis(body.session_timeout)
    rebalance_ms = to_millis(getattr(body, "rebalance_timeout", None)) or session_ms
    result = await broker.groups.join(
        group_id=body.group_id, member_id=body.member_id,
        instance_id=getattr(body, "group_instance_id", None), protocol_type=body.protocol_type,
        protocols=[(p.name, p.metadata) for p in body.protocols], session_timeout_ms=session_ms,
        rebalance_timeout_ms=rebalance_ms, client_id=request.client_id or "", client_host="/" + info.peer.rsplit(":", 1)[0],
        require_known_member_id=request.api_version >= 4)
    cls = response_class(JOIN_GROUP_KEY, request.api_version)
    member_cls = nested(cls, "JoinGroupResponseMember")
    members = tuple(make(member_cls, member_id=m, group_instance_id=i, metadata=meta)
                    for m, i, meta in result.members)
    return make(cls, throttle_time=0, error_code=result.error_code, generation_id=result.generation,
                protocol_type=result.protocol_type, protocol_name=result.protocol_name or "",
                leader=result.leader, skip_assignment=False, member_id=result.member_id, members=members)


@handles(SYNC_GROUP_KEY)
async def handle_sync_group(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    body = request.body
    error, assignment = await broker.groups.sync(
        group_id=body.group_id, generation=body.generation_id, member_id=body.member_id,
        instance_id=getattr(body, "group_instance_id", None),
        protocol_type=getattr(body, "protocol_type", None), protocol_name=getattr(body, "protocol_name", None),
        assignments={a.member_id: a.assignment for a in body.assignments})
    group = broker.groups.groups.get(body.group_id)
    cls = response_class(SYNC_GROUP_KEY, request.api_version)
    return make(cls, throttle_time=0, error_code=error, assignment=assignment,
                protocol_type=group.protocol_type if group else None,
                protocol_name=group.protocol_name if group else None)


@handles(HEARTBEAT_KEY)
async def handle_heartbeat(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    body = request.body
    error = broker.groups.heartbeat(group_id=body.group_id, generation=body.generation_id,
                                    member_id=body.member_id, instance_id=getattr(body, "group_instance_id", None))
    return make(response_class(HEARTBEAT_KEY, request.api_version), throttle_time=0, error_code=error)


@handles(LEAVE_GROUP_KEY)
async def handle_leave_group(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    body = request.body
    cls = response_class(LEAVE_GROUP_KEY, request.api_version)
    if request.api_version < 3:
        error, results = broker.groups.leave(group_id=body.group_id, members=[(body.member_id, None)])
        return make(cls, throttle_time=0, error_code=error if error != ErrorCode.none else results[0])
    members = [(m.member_id, m.group_instance_id) for m in body.members]
    error, results = broker.groups.leave(group_id=body.group_id, members=members)
    responses = tuple(make(nested(cls, "MemberResponse"), member_id=m, group_instance_id=i, error_code=code)
                      for (m, i), code in zip(members, results))
    return make(cls, throttle_time=0, error_code=error, members=responses if error == ErrorCode.none else ())


@handles(OFFSET_COMMIT_KEY)
async def handle_offset_commit(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    body = request.body
    topics = [(t.name, [(p.partition_index, p.committed_offset, getattr(p, "committed_leader_epoch", -1),
                         p.committed_metadata) for p in t.partitions]) for t in body.topics]
    results = await broker.groups.commit_offsets(
        group_id=body.group_id, generation=body.generation_id_or_member_epoch, member_id=body.member_id,
        instance_id=getattr(body, "group_instance_id", None), topics=topics)
    cls = response_class(OFFSET_COMMIT_KEY, request.api_version)
    return make(cls, throttle_time=0, topics=tuple(
        make(nested(cls, "OffsetCommitResponseTopic"), name=name, partitions=tuple(
            make(nested(cls, "OffsetCommitResponsePartition"), partition_index=p[0], error_code=results[(name, p[0])])
            for p in partitions))
        for name, partitions in topics))


def _fetched_topics(cls: type, topics: list) -> tuple:
    topic_cls = _nested_any(cls, "OffsetFetchResponseTopics", "OffsetFetchResponseTopic")
    partition_cls = _nested_any(cls, "OffsetFetchResponsePartitions", "OffsetFetchResponsePartition")
    return tuple(make(topic_cls, name=name, partitions=tuple(
        make(partition_cls, partition_index=index, error_code=ErrorCode.none,
             committed_offset=c.offset if c else -1, committed_leader_epoch=c.leader_epoch if c else -1,
             metadata=c.metadata if c else "")
        for index, c in partitions)) for name, partitions in topics)


@handles(OFFSET_FETCH_KEY)
async def handle_offset_fetch(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    body = request.body
    cls = response_class(OFFSET_FETCH_KEY, request.api_version)
    if request.api_version >= 8:
        groups = []
        for group in body.groups:
            wanted = None if group.topics is None else [(t.name, list(t.partition_indexes)) for t in group.topics]
            error, topics = broker.groups.fetch_offsets(group.group_id, wanted)
            groups.append(make(nested(cls, "OffsetFetchResponseGroup"), group_id=group.group_id,
                               topics=_fetched_topics(cls, topics), error_code=error))
        return make(cls, throttle_time=0, groups=tuple(groups))
    wanted = None if body.topics is None else [(t.name, list(t.partition_indexes)) for t in body.topics]
    error, topics = broker.groups.fetch_offsets(body.group_id, wanted)
    if error != ErrorCode.none and request.api_version < 2:
        # v1 has no top-level error: each requested partition carries it.
        partition_cls = _nested_any(cls, "OffsetFetchResponsePartition")
        entries = tuple(make(_nested_any(cls, "OffsetFetchResponseTopic"), name=name, partitions=tuple(
            make(partition_cls, partition_index=p, committed_offset=-1, metadata="", error_code=error)
            for p in parts)) for name, parts in (wanted or []))
        return make(cls, topics=entries)
    return make(cls, throttle_time=0, error_code=error, topics=_fetched_topics(cls, topics))


@handles(OFFSET_DELETE_KEY)
async def handle_offset_delete(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    body = request.body
    wanted = [(t.name, [p.partition_index for p in t.partitions]) for t in body.topics]
    error, results = await broker.groups.delete_offsets(body.group_id, wanted)
    cls = response_class(OFFSET_DELETE_KEY, request.api_version)
    topics = () if error != ErrorCode.none else tuple(
        make(nested(cls, "OffsetDeleteResponseTopic"), name=name, partitions=tuple(
            make(nested(cls, "OffsetDeleteResponsePartition"), partition_index=p, error_code=results[(name, p)])
            for p in parts)) for name, parts in wanted)
    return make(cls, error_code=error, throttle_time=0, topics=topics)


@handles(LIST_GROUPS_KEY)
async def handle_list_groups(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    body = request.body
    states = {s.lower() for s in getattr(body, "states_filter", ())}
    types = {t.lower() for t in getattr(body, "types_filter", ())}
    cls = response_class(LIST_GROUPS_KEY, request.api_version)
    listed = []
    for group_id, group in sorted(broker.groups.groups.items()):
        if broker.groups.coordinator_error(group_id) != ErrorCode.none or group.state == GroupState.DEAD:
            continue
        if states and group.state.value.lower() not in states:
            continue
        if types and "classic" not in types:
            continue
        listed.append(make(nested(cls, "ListedGroup"), group_id=group_id, protocol_type=group.protocol_type or "",
                           group_state=group.state.value, group_type="classic"))
    return make(cls, throttle_time=0, error_code=ErrorCode.none, groups=tuple(listed))


@handles(DESCRIBE_GROUPS_KEY)
async def handle_describe_groups(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    cls = response_class(DESCRIBE_GROUPS_KEY, request.api_version)
    member_cls = nested(cls, "DescribedGroupMember")
    described = []
    for group_id in request.body.groups:
        error = broker.groups.coordinator_error(group_id)
        group = broker.groups.groups.get(group_id)
        if error != ErrorCode.none or group is None:
            described.append(make(nested(cls, "DescribedGroup"), error_code=error, group_id=group_id,
                                  group_state="Dead", protocol_type="", protocol_data="", members=(),
                                  authorized_operations=-2147483648))
            continue
        stable = group.state == GroupState.STABLE
        members = tuple(make(member_cls, member_id=m.member_id, group_instance_id=m.instance_id,
                             client_id=m.client_id, client_host=m.client_host,
                             member_metadata=m.metadata_for(group.protocol_name) if stable else b"",
                             member_assignment=m.assignment if stable else b"")
                        for m in group.members.values())
        described.append(make(nested(cls, "DescribedGroup"), error_code=ErrorCode.none, group_id=group_id,
                              group_state=group.state.value, protocol_type=group.protocol_type or "",
                              protocol_data=group.protocol_name or "", members=members,
                              authorized_operations=-2147483648))
    return make(cls, throttle_time=0, groups=tuple(described))


@handles(DELETE_GROUPS_KEY)
async def handle_delete_groups(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    cls = response_class(DELETE_GROUPS_KEY, request.api_version)
    results = await broker.groups.delete_groups(list(request.body.groups_names))
    return make(cls, throttle_time=0, results=tuple(
        make(nested(cls, "DeletableGroupResult"), group_id=g, error_code=code) for g, code in results.items()))
