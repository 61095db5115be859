"""The consumer's embedded protocol inside the classic group APIs, and the range assignor.

A classic consumer group carries opaque bytes through the broker: each member's JoinGroup
metadata is a ``ConsumerProtocolSubscription`` and each SyncGroup assignment (and the
``member_assignment`` DescribeGroups reports) is a ``ConsumerProtocolAssignment``. Both are
an int16 version followed by the body of that version; kio has the schemas.

Rules:
- We write subscriptions and assignments at version 3, as Apache Kafka 4.x's consumer does.
- We read any version: a version above the newest we know is read with the newest schema,
  and bytes after the body are ignored, as Kafka's ``ConsumerProtocol`` does, since a newer
  version only appends fields.
- Bytes that do not hold a body are the peer's fault: ``ConsumerProtocolError``.
- The range assignor is Kafka's ``RangeAssignor`` without racks: per topic, the subscribed
  members in order (static members by instance id first, then the others by member id) take
  consecutive ranges, the first ``partitions % members`` one partition more.

Pure: no sockets and no trio here.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kio.schema.consumer_protocol_assignment.v0 import data as assignment_v0
from kio.schema.consumer_protocol_assignment.v1 import data as assignment_v1
from kio.schema.consumer_protocol_assignment.v2 import data as assignment_v2
from kio.schema.consumer_protocol_assignment.v3 import data as assignment_v3
from kio.schema.consumer_protocol_subscription.v0 import data as subscription_v0
from kio.schema.consumer_protocol_subscription.v1 import data as subscription_v1
from kio.schema.consumer_protocol_subscription.v2 import data as subscription_v2
from kio.schema.consumer_protocol_subscription.v3 import data as subscription_v3
from kio.serial import entity_reader, entity_writer
from kio.serial.errors import SerialError

PROTOCOL_TYPE = "consumer"
RANGE_ASSIGNOR = "range"
WRITE_VERSION = 3
_VERSION = struct.Struct(">h")
_SUBSCRIPTIONS = (subscription_v0, subscription_v1, subscription_v2, subscription_v3)
_ASSIGNMENTS = (assignment_v0, assignment_v1, assignment_v2, assignment_v3)
_DECODE_ERRORS = (SerialError, ValueError, TypeError, OverflowError, UnicodeDecodeError, KeyError, struct.error)

TopicPartition = tuple[str, int]


class ConsumerProtocolError(Exception):
    """Subscription or assignment bytes that do not decode: the sending member's fault."""


@dataclass(frozen=True, slots=True)
class Subscription:
    topics: tuple[str, ...]
    user_data: bytes | None = None
    owned_partitions: tuple[TopicPartition, ...] = ()
    generation_id: int = -1
    rack_id: str | None = None


@dataclass(frozen=True, slots=True)
class Assignment:
    """Partitions in the order the bytes list them (topic by topic)."""

    partitions: tuple[TopicPartition, ...]
    user_data: bytes | None = None

    def by_topic(self) -> dict[str, list[int]]:
        return group_by_topic(self.partitions)


def group_by_topic(partitions: Iterable[TopicPartition]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = {}
    for topic, partition in partitions:
        grouped.setdefault(topic, []).append(partition)
    return grouped


def _write(entity: Any, version: int) -> bytes:
    buffer = io.BytesIO()
    buffer.write(_VERSION.pack(version))
    entity_writer(type(entity))(buffer, entity)
    return buffer.getvalue()


def _read(data: bytes, modules: tuple[Any, ...], class_name: str) -> tuple[int, Any]:
    if len(data) < _VERSION.size:
        raise ConsumerProtocolError(f"{class_name} of {len(data)} bytes has no version")
    (version,) = _VERSION.unpack_from(data)
    if version < 0:
        raise ConsumerProtocolError(f"{class_name} has negative version {version}")
    cls = getattr(modules[min(version, len(modules) - 1)], class_name)
    try:
        entity, _ = entity_reader(cls)(memoryview(data), _VERSION.size)
    except _DECODE_ERRORS as error:
        raise ConsumerProtocolError(f"malformed {class_name} v{version}: {error}") from error
    return version, entity


def encode_subscription(subscription: Subscription, version: int = WRITE_VERSION) -> bytes:
    module = _SUBSCRIPTIONS[version]
    owned = tuple(
        module.TopicPartition(topic=topic, partitions=tuple(partitions))
        for topic, partitions in group_by_topic(subscription.owned_partitions).items()
    )
    values: dict[str, Any] = {
        "topics": tuple(subscription.topics), "user_data": subscription.user_data,
        "owned_partitions": owned, "generation_id": subscription.generation_id, "rack_id": subscription.rack_id,
    }
    cls = module.ConsumerProtocolSubscription
    fields = cls.__dataclass_fields__
    return _write(cls(**{name: value for name, value in values.items() if name in fields}), version)


def decode_subscription(data: bytes) -> Subscription:
    _, entity = _read(data, _SUBSCRIPTIONS, "ConsumerProtocolSubscription")
    owned = tuple(
        (topic.topic, partition)
        for topic in getattr(entity, "owned_partitions", ())
        for partition in topic.partitions
    )
    return Subscription(
        topics=tuple(entity.topics), user_data=entity.user_data, owned_partitions=owned,
        generation_id=getattr(entity, "generation_id", -1), rack_id=getattr(entity, "rack_id", None),
    )


def encode_assignment(assignment: Assignment, version: int = WRITE_VERSION) -> bytes:
    module = _ASSIGNMENTS[version]
    topics = tuple(
        module.TopicPartition(topic=topic, partitions=tuple(partitions))
        for topic, partitions in assignment.by_topic().items()
    )
    return _write(module.ConsumerProtocolAssignment(assigned_partitions=topics, user_data=assignment.user_data), version)


def decode_assignment(data: bytes) -> Assignment:
    """An empty byte string is an empty assignment (a member between rebalances)."""
    if not data:
        return Assignment(())
    _, entity = _read(data, _ASSIGNMENTS, "ConsumerProtocolAssignment")
    partitions = tuple(
        (topic.topic, partition) for topic in entity.assigned_partitions for partition in topic.partitions
    )
    return Assignment(partitions, entity.user_data)


# --- range assignor -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberSubscription:
    member_id: str
    instance_id: str | None
    subscription: Subscription


def _member_order(member: MemberSubscription) -> tuple[int, str]:
    """Kafka's MemberInfo order: static members (by instance id) before dynamic (by member id)."""
    if member.instance_id is not None:
        return (0, member.instance_id)
    return (1, member.member_id)


def range_assign(
    members: Iterable[MemberSubscription], partition_counts: Mapping[str, int]
) -> dict[str, Assignment]:
    """Every member's assignment; topics missing from ``partition_counts`` are skipped, as
    Kafka skips topics without metadata."""
    members = list(members)
    subscribers: dict[str, list[MemberSubscription]] = {}
    for member in members:
        for topic in member.subscription.topics:
            subscribers.setdefault(topic, []).append(member)
    assigned: dict[str, list[TopicPartition]] = {member.member_id: [] for member in members}
    for topic in sorted(subscribers):
        count = partition_counts.get(topic)
        if count is None:
            continue
        ordered = sorted(subscribers[topic], key=_member_order)
        share, extra = divmod(count, len(ordered))
        for index, member in enumerate(ordered):
            start = share * index + min(index, extra)
            length = share + (1 if index < extra else 0)
            assigned[member.member_id].extend((topic, p) for p in range(start, start + length))
    return {member_id: Assignment(tuple(partitions)) for member_id, partitions in assigned.items()}
