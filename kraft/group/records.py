"""What the group coordinator keeps in ``__consumer_offsets``, and where.

A group lives in partition ``abs(java_hash(group_id)) % offsets.topic.num.partitions``,
with Java's ``String.hashCode`` as Kafka computes it, so every node (and Kafka's own
tools) agrees on which broker coordinates a group.

Records are keyed so that compaction keeps exactly the latest fact per key:
``[1, group, topic, partition]`` for a committed offset, ``[2, group]`` for the group's
membership and assignment. A ``None`` value is a tombstone (offset deleted, group gone).
Values are msgpack maps; unknown fields are ignored on read.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack

OFFSETS_TOPIC = "__consumer_offsets"
OFFSET_KEY, GROUP_KEY = 1, 2


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode`` over UTF-16 code units, as a signed 32-bit int."""
    value = 0
    data = text.encode("utf-16-be")
    for index in range(0, len(data), 2):
        value = (31 * value + ((data[index] << 8) | data[index + 1])) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def partition_for(group_id: str, partition_count: int) -> int:
    """Kafka's ``Utils.abs(groupId.hashCode()) % partitionCount``."""
    hashed = java_string_hash(group_id)
    return (0 if hashed == -(1 << 31) else abs(hashed)) % partition_count


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp_ms: int


@dataclass(frozen=True, slots=True)
class GroupSnapshot:
    """What a group must remember across a coordinator move or restart."""

    protocol_type: str | None
    generation: int
    protocol_name: str | None
    leader: str | None
    state_timestamp_ms: int
    members: tuple[tuple, ...]  # (member_id, instance_id, client_id, client_host,
                                #  session_ms, rebalance_ms, metadata, assignment)


def offset_key(group_id: str, topic: str, partition: int) -> bytes:
    return msgpack.packb([OFFSET_KEY, group_id, topic, partition])


def group_key(group_id: str) -> bytes:
    return msgpack.packb([GROUP_KEY, group_id])


def offset_value(committed: CommittedOffset) -> bytes:
    return msgpack.packb({"offset": committed.offset, "leader_epoch": committed.leader_epoch,
                          "metadata": committed.metadata, "commit_timestamp": committed.commit_timestamp_ms})


def group_value(snapshot: GroupSnapshot) -> bytes:
    return msgpack.packb({
        "protocol_type": snapshot.protocol_type, "generation": snapshot.generation,
        "protocol": snapshot.protocol_name, "leader": snapshot.leader,
        "state_timestamp": snapshot.state_timestamp_ms, "members": [list(m) for m in snapshot.members],
    }, use_bin_type=True)


class OffsetsRecordError(ValueError):
    """A record in ``__consumer_offsets`` that kraft did not write; it is skipped."""


def decode(key: bytes | None, value: bytes | None) -> tuple:
    """("offset", group, topic, partition, CommittedOffset|None) or ("group", group, GroupSnapshot|None)."""
    try:
        parts = msgpack.unpackb(key or b"", raw=False)
        fields = None if value is None else msgpack.unpackb(value, raw=False)
        if parts[0] == OFFSET_KEY:
            _, group, topic, partition = parts
            committed = None if fields is None else CommittedOffset(
                fields["offset"], fields.get("leader_epoch", -1), fields.get("metadata") or "",
                fields.get("commit_timestamp", 0))
            return ("offset", group, topic, partition, committed)
        if parts[0] == GROUP_KEY:
            snapshot = None if fields is None else GroupSnapshot(
                fields["protocol_type"], fields["generation"], fields["protocol"], fields["leader"],
                fields.get("state_timestamp", 0), tuple(tuple(m) for m in fields["members"]))
            return ("group", parts[1], snapshot)
    except (ValueError, TypeError, KeyError, IndexError, msgpack.UnpackException) as error:
        raise OffsetsRecordError(f"unreadable __consumer_offsets record: {error!r}") from None
    raise OffsetsRecordError(f"unknown __consumer_offsets key type {parts[0]!r}")
