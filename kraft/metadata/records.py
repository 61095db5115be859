"""Metadata records: the facts the controller writes to ``__cluster_metadata-0``.

Each record is a frozen dataclass with a stable ``RECORD_TYPE`` (Kafka's metadata
apiKey where one exists) and a ``VERSION``. On disk a record is the value of one Kafka
record inside a record batch: msgpack of ``[record_type, version, {field: value}]``.
Unknown fields are ignored when decoding, so a newer writer stays readable; an unknown
record type is an error, because skipping a fact silently would diverge the image.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

import msgpack


class MetadataRecordError(ValueError):
    """Bytes in the metadata log that do not decode to a known record."""


@dataclass(frozen=True, slots=True)
class RegisterBrokerRecord:
    RECORD_TYPE: ClassVar[int] = 0
    VERSION: ClassVar[int] = 0
    broker_id: int
    incarnation_id: str
    broker_epoch: int
    endpoints: tuple[tuple[str, str, int, str], ...]  # (listener, host, port, protocol)
    rack: str | None = None
    fenced: bool = True


@dataclass(frozen=True, slots=True)
class TopicRecord:
    RECORD_TYPE: ClassVar[int] = 2
    VERSION: ClassVar[int] = 0
    name: str
    topic_id: str  # canonical str(uuid.UUID)


@dataclass(frozen=True, slots=True)
class PartitionRecord:
    RECORD_TYPE: ClassVar[int] = 3
    VERSION: ClassVar[int] = 0
    topic_id: str
    partition_id: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int = 0
    partition_epoch: int = 0


@dataclass(frozen=True, slots=True)
class ConfigRecord:
    """A config change; ``value`` None removes the override (Kafka's null value)."""

    RECORD_TYPE: ClassVar[int] = 4
    VERSION: ClassVar[int] = 0
    resource_type: int  # 2 = topic, 4 = broker (Kafka's ConfigResource types)
    resource_name: str
    name: str
    value: str | None


@dataclass(frozen=True, slots=True)
class PartitionChangeRecord:
    """A delta to one partition; a None field is unchanged."""

    RECORD_TYPE: ClassVar[int] = 5
    VERSION: ClassVar[int] = 0
    topic_id: str
    partition_id: int
    isr: tuple[int, ...] | None = None
    leader: int | None = None
    replicas: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class FenceBrokerRecord:
    RECORD_TYPE: ClassVar[int] = 7
    VERSION: ClassVar[int] = 0
    broker_id: int
    broker_epoch: int


@dataclass(frozen=True, slots=True)
class UnfenceBrokerRecord:
    RECORD_TYPE: ClassVar[int] = 8
    VERSION: ClassVar[int] = 0
    broker_id: int
    broker_epoch: int


@dataclass(frozen=True, slots=True)
class RemoveTopicRecord:
    RECORD_TYPE: ClassVar[int] = 9
    VERSION: ClassVar[int] = 0
    topic_id: str


@dataclass(frozen=True, slots=True)
class FeatureLevelRecord:
    RECORD_TYPE: ClassVar[int] = 12
    VERSION: ClassVar[int] = 0
    name: str
    feature_level: int


@dataclass(frozen=True, slots=True)
class ProducerIdsRecord:
    """The next producer-id block starts at ``next_producer_id``."""

    RECORD_TYPE: ClassVar[int] = 15
    VERSION: ClassVar[int] = 0
    broker_id: int
    broker_epoch: int
    next_producer_id: int


@dataclass(frozen=True, slots=True)
class NoOpRecord:
    RECORD_TYPE: ClassVar[int] = 20
    VERSION: ClassVar[int] = 0


RECORD_TYPES: dict[int, type] = {
    cls.RECORD_TYPE: cls
    for cls in (
        RegisterBrokerRecord, TopicRecord, PartitionRecord, ConfigRecord,
        PartitionChangeRecord, FenceBrokerRecord, UnfenceBrokerRecord, RemoveTopicRecord,
        FeatureLevelRecord, ProducerIdsRecord, NoOpRecord,
    )
}
MetadataRecord = Any
TOPIC_RESOURCE = 2
BROKER_RESOURCE = 4


def encode_record(record: MetadataRecord) -> bytes:
    fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    return msgpack.packb([record.RECORD_TYPE, record.VERSION, fields], use_bin_type=True)


def decode_record(data: bytes) -> MetadataRecord:
    try:
        record_type, _version, fields = msgpack.unpackb(data, raw=False, use_list=False)
        cls = RECORD_TYPES[record_type]
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in fields.items() if key in known})
    except (ValueError, TypeError, KeyError, msgpack.UnpackException) as error:
        raise MetadataRecordError(f"undecodable metadata record: {error!r}") from error


def new_topic_id() -> str:
    return str(uuid.uuid4())
