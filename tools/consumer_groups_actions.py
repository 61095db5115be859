"""The work behind each kafka-consumer-groups action, against a cluster.

``run`` connects once and dispatches; each action gathers what Kafka's ConsumerGroupCommand
gathers, in the same order of calls, and hands it to ``consumer_groups_output`` to print.
Every call is bounded by ``--timeout`` (at least the admin timeout for writes), as Kafka
bounds its Admin calls.
"""

from __future__ import annotations

import sys
from argparse import Namespace
from typing import Any

import trio
from kio.schema.errors import ErrorCode

from protocol.client import Client
from tools import admin, group_admin
from tools import consumer_groups_output as output
from tools.common import ToolError, UsageError
from tools.topics import java_hash_map_order

EARLIEST, LATEST = -2, -1
UNKNOWN_OFFSET = -1
TopicPartition = tuple[str, int]


def _write(stdout: str = "", stderr: str = "") -> None:
    if stderr:
        sys.stdout.flush()
        sys.stderr.write(stderr)
        sys.stderr.flush()
    if stdout:
        sys.stdout.write(stdout)
        sys.stdout.flush()


async def run(args: Namespace, states: list[str], client_id: str) -> None:
    timeout_s = max(args.timeout, admin.ADMIN_TIMEOUT_MS if not args.describe else 0) / 1000
    async with Client(args.bootstrap_server, client_id=client_id) as client:
        with trio.move_on_after(timeout_s) as scope:
            if args.list:
                await list_groups(client, args, states)
            elif args.describe:
                await describe(client, args)
            elif args.delete:
                await delete(client, args)
            elif args.reset_offsets:
                await reset_offsets(client, args)
            else:
                await delete_offsets(client, args)
        if scope.cancelled_caught:
            raise ToolError("org.apache.kafka.common.errors.TimeoutException: Timed out waiting for a node assignment.")


async def _consumer_groups(client: Client, states: list[str] | None = None) -> list[group_admin.GroupListing]:
    """Groups of consumers: protocol type "consumer", or none yet (Kafka's forConsumerGroups)."""
    listings = await group_admin.list_groups(client, states or ())
    return [g for g in listings if g.protocol_type in ("consumer", "")]


async def _group_ids(client: Client, args: Namespace) -> list[str]:
    if args.all_groups:
        return [g.group_id for g in await _consumer_groups(client)]
    return list(dict.fromkeys(args.group))


async def list_groups(client: Client, args: Namespace, states: list[str]) -> None:
    with_state, with_type = args.state is not None, args.type is not None
    listings = await _consumer_groups(client, states)
    if not (with_state or with_type):
        _write("".join(f"{g.group_id}\n" for g in listings))
        return
    rows = [(g.group_id, g.group_type.capitalize(), g.state) for g in listings]
    _write(output.list_table(rows, with_type, with_state))


# --- describe -------------------------------------------------------------------------------


async def _described(client: Client, group_id: str) -> group_admin.GroupDescription:
    description = await group_admin.describe_group(client, group_id)
    if description.error != ErrorCode.none:
        raise admin.KafkaApiError(description.error)
    if description.protocol_type not in ("consumer", ""):
        raise ToolError(f"java.lang.IllegalArgumentException: GroupId {group_id} is not a consumer group "
                        f"({description.protocol_type}).")
    return description


def _members(description: group_admin.GroupDescription) -> list[output.MemberView]:
    return [output.member_view(m.member_id, m.instance_id, m.client_id, m.client_host, m.assignment)
            for m in description.members]


async def describe(client: Client, args: Namespace) -> None:
    group_ids = sorted(await _group_ids(client, args))  # Kafka keeps the results in a TreeMap
    for group_id in group_ids:
        description = await _described(client, group_id)
        members = _members(description)
        if args.members:
            stdout, stderr, show = output.state_note(group_id, description.state, len(members))
            _write(stdout, stderr)
            _write(output.members_table(group_id, members, args.verbose, show))
        elif args.state is not None:
            stdout, stderr, show = output.state_note(group_id, description.state, 1)
            _write(stdout, stderr)
            if show:
                coordinator = description.coordinator
                _write(output.state_table(group_id, (coordinator.host, coordinator.port, coordinator.node_id),
                                          description.protocol, description.state, len(members), args.verbose))
        else:
            rows = await _offset_rows(client, group_id, members)
            stdout, stderr, show = output.state_note(group_id, description.state, len(rows))
            _write(stdout, stderr)
            if show:
                _write(output.offsets_table(rows, args.verbose))


async def _offset_rows(client: Client, group_id: str, members: list[output.MemberView]) -> list[output.OffsetRow]:
    _, connection = await group_admin.coordinator_connection(client, group_id)
    committed = await group_admin.fetch_offsets(connection, group_id, None)
    partitions = {tp for m in members for tp in m.partitions} | set(committed)
    log_end = await _log_offsets(client, partitions, LATEST, strict=False)
    return output.offset_rows(group_id, members, {tp: (c.offset, None if c.leader_epoch < 0 else c.leader_epoch)
                                                  for tp, c in committed.items()}, log_end)


async def _leaders(client: Client, topics: set[str]) -> dict[TopicPartition, int]:
    if not topics:
        return {}
    infos = admin.topic_infos(await client.metadata(sorted(topics)))
    return {(name, p.partition): p.leader for name, info in infos.items() for p in info.partitions}


async def _log_offsets(client: Client, partitions: set[TopicPartition], spec: int, *, strict: bool) -> dict[TopicPartition, int]:
    """Offsets from ListOffsets; with ``strict`` a partition that has none is an error (Kafka's
    "Error getting ... offset of topic partition"), otherwise it is left out."""
    leaders = await _leaders(client, {topic for topic, _ in partitions})
    missing = sorted(partitions - set(leaders))
    if missing and strict:
        listed = ",".join(output.topic_partition_text(tp) for tp in missing)
        raise ToolError(f'org.apache.kafka.common.errors.UnknownTopicOrPartitionException: The partitions "{listed}" '
                        "do not exist")
    wanted = {tp: leader for tp, leader in leaders.items() if tp in partitions}
    results = await admin.list_offsets(client, wanted, spec) if wanted else {}
    offsets = {}
    for tp, result in results.items():
        if result.error == ErrorCode.none:
            offsets[tp] = result.offset
        elif strict:
            raise admin.KafkaApiError(result.error)
    return offsets


# --- delete ---------------------------------------------------------------------------------


async def delete(client: Client, args: Namespace) -> None:
    succeeded, failed = [], {}
    for group_id in await _group_ids(client, args):
        code = await group_admin.delete_group(client, group_id)
        if code == ErrorCode.none:
            succeeded.append(group_id)
        else:
            failed[group_id] = admin.java_exception_text(code.name, admin.default_message(code))
    _write(output.delete_groups_text(succeeded, failed))


async def delete_offsets(client: Client, args: Namespace) -> None:
    group_id = args.group[0]
    results: dict[TopicPartition, str | None] = {}
    partitions: list[TopicPartition] = []
    whole_topics = [t for t in args.topic if ":" not in t]
    for topic_arg in args.topic:
        if ":" in topic_arg:
            partitions.extend(parse_topic_partitions(topic_arg))
    infos = admin.topic_infos(await client.metadata(whole_topics)) if whole_topics else {}
    for topic in whole_topics:
        if topic in infos:
            partitions.extend((topic, p.partition) for p in infos[topic].partitions)
        else:
            results[(topic, -1)] = admin.java_exception_text(
                "unknown_topic_or_partition", admin.default_message(ErrorCode.unknown_topic_or_partition))
    _, connection = await group_admin.coordinator_connection(client, group_id)
    top_level, by_partition = await group_admin.delete_offsets(connection, group_id, dict.fromkeys(partitions))
    first_partition_error = next((c for c in by_partition.values() if c != ErrorCode.none), ErrorCode.none)
    outcome = top_level if top_level != ErrorCode.none else first_partition_error
    for tp in dict.fromkeys(partitions):
        code = top_level if top_level != ErrorCode.none else by_partition.get(tp, ErrorCode.none)
        results[tp] = None if code == ErrorCode.none else admin.java_exception_text(code.name, admin.default_message(code))
    _write(_delete_offsets_outcome(group_id, outcome) + output.delete_offsets_table(results))


def _delete_offsets_outcome(group_id: str, code: ErrorCode) -> str:
    if code == ErrorCode.none:
        return f"Request succeeded for deleting offsets from group {group_id}.\n"
    if code in (ErrorCode.invalid_group_id, ErrorCode.group_id_not_found, ErrorCode.group_authorization_failed,
                ErrorCode.non_empty_group):
        return f"\nError: {admin.default_message(code)}\n"
    if code in (ErrorCode.group_subscribed_to_topic, ErrorCode.topic_authorization_failed,
                ErrorCode.unknown_topic_or_partition):
        return "\nError: Encountered some partition-level error, see the follow-up details.\n"
    return f"\nError: Encountered some unknown error: {code.name.upper()}\n"


# --- reset offsets --------------------------------------------------------------------------


def parse_topic_partitions(topic_arg: str) -> list[TopicPartition]:
    """``topic:0,1,2`` as Kafka's parseTopicsWithPartitions reads it."""
    parts = topic_arg.split(":")
    while parts and parts[-1] == "":  # Java's String.split drops trailing empty strings
        parts.pop()
    if len(parts) != 2:
        raise UsageError(f"Invalid topic arg '{topic_arg}', expected topic name and partitions")
    topic, numbers = parts
    result = []
    for number in numbers.split(","):
        try:
            result.append((topic, int(number)))
        except ValueError:
            raise UsageError(f"Invalid partition '{number}' specified in topic arg '{topic_arg}''") from None
    return result


async def reset_offsets(client: Client, args: Namespace) -> None:
    plan: dict[str, dict[TopicPartition, int]] = {}
    for group_id in await _group_ids(client, args):
        description = await group_admin.describe_group(client, group_id)
        state = description.state if description.error == ErrorCode.none else "Dead"
        if state not in ("Empty", "Dead"):
            _write(f"\nError: Assignments can only be reset if the group '{group_id}' is inactive, but the current "
                   f"state is {state}.\n")
            plan[group_id] = {}
            continue
        _, connection = await group_admin.coordinator_connection(client, group_id)
        committed = {tp: c.offset for tp, c in (await group_admin.fetch_offsets(connection, group_id)).items()}
        partitions = await _partitions_to_reset(client, args, committed)
        offsets = await _prepare_offsets(client, args, partitions, committed)
        if args.execute:
            errors = await group_admin.commit_offsets(connection, group_id, offsets)
            for code in errors.values():
                admin.check(code)
        plan[group_id] = offsets
    if args.export:
        _write(output.reset_csv(plan, with_group=len(args.group) != 1) + "\n")
    else:
        _write(output.reset_table(plan))


async def _partitions_to_reset(client: Client, args: Namespace, committed: dict[TopicPartition, int]) -> list[TopicPartition]:
    if args.all_topics:
        return output.hash_map_order(committed)
    specified: list[TopicPartition] = []
    whole_topics = []
    for topic_arg in args.topic:
        if ":" in topic_arg:
            specified.extend(parse_topic_partitions(topic_arg))
        else:
            whole_topics.append(topic_arg)
    if whole_topics:
        infos = admin.topic_infos(await client.metadata(whole_topics))
        for topic in whole_topics:
            if topic not in infos:
                raise admin.KafkaApiError(ErrorCode.unknown_topic_or_partition)
        for topic in java_hash_map_order(whole_topics):  # Kafka's describeTopics answers in a HashMap
            specified.extend((topic, p.partition) for p in infos[topic].partitions)
    return list(dict.fromkeys(specified))


async def _prepare_offsets(client: Client, args: Namespace, partitions: list[TopicPartition],
                           committed: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
    wanted = set(partitions)
    if args.to_earliest or args.to_latest:
        spec = EARLIEST if args.to_earliest else LATEST
        offsets = await _log_offsets(client, wanted, spec, strict=True)
        return {tp: offsets[tp] for tp in partitions}
    if args.to_datetime is not None:
        return await _offsets_for_time(client, partitions, args.to_datetime)
    if args.to_current:
        ends = await _log_offsets(client, wanted - set(committed), LATEST, strict=True)
        return {tp: committed[tp] if tp in committed else ends[tp] for tp in partitions}
    if args.shift_by is not None:
        requested = {}
        for tp in partitions:
            if tp not in committed:
                raise UsageError(f"Cannot shift offset for partition {output.topic_partition_text(tp)} since there "
                                 "is no current committed offset")
            requested[tp] = committed[tp] + args.shift_by
    else:
        requested = {tp: args.to_offset for tp in partitions}
    return await _clamp_to_log(client, requested)


async def _clamp_to_log(client: Client, requested: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
    """Kafka's checkOffsetsRange: an offset past the log end or before the log start moves to it."""
    starts = await _log_offsets(client, set(requested), EARLIEST, strict=False)
    ends = await _log_offsets(client, set(requested), LATEST, strict=False)
    result = {}
    for tp, offset in requested.items():
        if tp in ends and offset > ends[tp]:
            _warn(f"New offset ({offset}) is higher than latest offset for topic partition "
                  f"{output.topic_partition_text(tp)}. Value will be set to {ends[tp]}")
            offset = ends[tp]
        elif tp in starts and offset < starts[tp]:
            _warn(f"New offset ({offset}) is lower than earliest offset for topic partition "
                  f"{output.topic_partition_text(tp)}. Value will be set to {starts[tp]}")
            offset = starts[tp]
        result[tp] = offset
    return result


def _warn(message: str) -> None:
    """A log line in the layout of Kafka's tools logging (``[%d] %p %m (%c)``)."""
    import datetime

    now = datetime.datetime.now()
    stamp = now.strftime("%Y-%m-%d %H:%M:%S,") + f"{now.microsecond // 1000:03d}"
    _write(stderr=f"[{stamp}] WARN {message} (org.apache.kafka.tools.consumer.group.ConsumerGroupCommand)\n")


async def _offsets_for_time(client: Client, partitions: list[TopicPartition], text: str) -> dict[TopicPartition, int]:
    try:
        timestamp_ms = output.parse_datetime_ms(text)
    except ValueError as error:
        raise ToolError(f"java.text.ParseException: {error}") from None
    leaders = await _leaders(client, {topic for topic, _ in partitions})
    results = await admin.list_offsets(client, {tp: leaders[tp] for tp in partitions if tp in leaders}, timestamp_ms)
    found: dict[TopicPartition, Any] = {}
    empty = []
    for tp in partitions:
        result = results.get(tp)
        if result is None:
            raise UsageError(f"Error getting offset by timestamp of topic partition: {output.topic_partition_text(tp)}")
        admin.check(result.error)
        if result.offset == UNKNOWN_OFFSET:
            empty.append(tp)
        else:
            found[tp] = result.offset
    for tp in output.hash_map_order(empty):
        _write(f"\nWarn: Partition {tp[1]} from topic {tp[0]} is empty. Falling back to latest known offset.\n")
    found.update(await _log_offsets(client, set(empty), LATEST, strict=True) if empty else {})
    return {tp: found[tp] for tp in partitions}
