"""Metadata records: the facts the controller writes to ``__cluster_metadata-0``.

Each record is a frozen dataclass with a stable ``RECORD_TYPE`` (Kafka's metadata
apiKey where one exists) and a ``VERSION``. On disk a record is the value of one Kafka
record inside a record batch: msgpack of ``[record_type, version, {field: value}]``.
Unknown fields are ignored when decoding, so a newer writer stays readable; an unknown
record type is an error, because skipping a fact silently would diverge the image.

One controller write (the records of one request) is one log entry (``encode_records``):
several records go into ``[WRITE_TYPE, 0, [[record_type, version, {field: value}], ...]]``,
so the Raft log commits a write whole or not at all and no image ever holds part of one,
as Kafka's atomic record batches do; a single record keeps the one-record form.
"""

from __future__ import annotations

import dataclasses
import random
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


WRITE_TYPE = -1  # not a record type: the entry holds several records of one write


def _unpacked(record: MetadataRecord) -> list:
    fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    return [record.RECORD_TYPE, record.VERSION, fields]


def encode_record(record: MetadataRecord) -> bytes:
    return msgpack.packb(_unpacked(record), use_bin_type=True)


def encode_records(records: list[MetadataRecord]) -> bytes:
    """One controller write as one log entry (see the module's rules)."""
    if len(records) == 1:
        return encode_record(records[0])
    return msgpack.packb([WRITE_TYPE, 0, [_unpacked(r) for r in records]], use_bin_type=True)


def _packed_record(record_type: int, _version: int, fields: dict) -> MetadataRecord:
    cls = RECORD_TYPES[record_type]
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{key: value for key, value in fields.items() if key in known})


def decode_records(data: bytes) -> list[MetadataRecord]:
    """The records of one log entry, in order."""
    try:
        record_type, version, fields = msgpack.unpackb(data, raw=False, use_list=False)
        if record_type == WRITE_TYPE:
            return [_packed_record(*item) for item in fields]
        return [_packed_record(record_type, version, fields)]
    except (ValueError, TypeError, KeyError, msgpack.UnpackException) as error:
        raise MetadataRecordError(f"undecodable metadata record: {error!r}") from error


def decode_record(data: bytes) -> MetadataRecord:
    records = decode_records(data)
    if len(records) != 1:
        raise MetadataRecordError(f"expected one metadata record, found {len(records)}")
    return records[0]


def new_topic_id(rng: random.Random | None = None) -> str:
    """A random (version 4) UUID; from ``rng`` when given, so a seeded run is reproducible."""
    if rng is None:
        return str(uuid.uuid4())
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
