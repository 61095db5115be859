"""The table of Kafka APIs kraft speaks, and the codec that turns frames into kio values.

Rules:
- Message bodies are kio's generated dataclasses; nothing here transcribes a schema.
- The request header version follows from the request schema (v1 for classic, v2 for
  flexible versions); the response header is v0 for classic versions, v1 for flexible
  ones, and always v0 for ApiVersions (KIP-511), so a client that does not yet know our
  versions can still read the answer.
- ``SUPPORTED_APIS`` lists only what the broker implements. ``implemented_min`` may be
  above ``advertised_min``: Kafka 4 advertises Produce v0-2 because older librdkafka
  switches compression off otherwise, yet rejects those versions (KAFKA-18659).
"""

from __future__ import annotations

import functools
import io
import struct
from dataclasses import dataclass
from typing import Any

from kio.index import load_entity_module
from kio.schema.index import api_key_map
from kio.serial import entity_reader, entity_writer
from kio.serial.errors import SerialError
from kio.static.constants import EntityType

from .bounds import check_array_counts
from .framing import SIZE_PREFIX, RemoteProtocolError

API_VERSIONS_KEY = 18
_API_HEADER = struct.Struct(">hhi")
# What kio's reader raises on bytes that do not fit the schema. KeyError is its answer to a
# tagged field it does not know (Kafka would skip that field; we refuse the request).
_DECODE_ERRORS = (SerialError, ValueError, TypeError, OverflowError, UnicodeDecodeError, KeyError)


@dataclass(frozen=True, slots=True)
class ApiRange:
    api_key: int
    advertised_min: int
    advertised_max: int
    implemented_min: int

    @property
    def name(self) -> str:
        return api_key_map[self.api_key]

    def implements(self, version: int) -> bool:
        return self.implemented_min <= version <= self.advertised_max


def _range(api_key: int, low: int, high: int, implemented_min: int | None = None) -> ApiRange:
    return ApiRange(api_key, low, high, low if implemented_min is None else implemented_min)


# Ranges follow what Apache Kafka 4.x brokers accept (see the reference API matrix).
BROKER_APIS: tuple[ApiRange, ...] = (
    _range(0, 0, 12, implemented_min=3),  # Produce
    _range(1, 4, 17),  # Fetch
    _range(2, 1, 10),  # ListOffsets
    _range(3, 0, 13),  # Metadata
    _range(8, 2, 9),  # OffsetCommit
    _range(9, 1, 9),  # OffsetFetch
    _range(10, 0, 6),  # FindCoordinator
    _range(11, 0, 9),  # JoinGroup
    _range(12, 0, 4),  # Heartbeat
    _range(13, 0, 5),  # LeaveGroup
    _range(14, 0, 5),  # SyncGroup
    _range(15, 0, 5),  # DescribeGroups
    _range(16, 0, 5),  # ListGroups
    _range(18, 0, 4),  # ApiVersions
    _range(19, 2, 7),  # CreateTopics
    _range(20, 1, 6),  # DeleteTopics
    _range(21, 0, 2),  # DeleteRecords
    _range(22, 0, 5),  # InitProducerId
    _range(23, 2, 4),  # OffsetForLeaderEpoch
    _range(32, 1, 4),  # DescribeConfigs
    _range(33, 0, 2),  # AlterConfigs
    _range(35, 1, 4),  # DescribeLogDirs
    _range(37, 0, 3),  # CreatePartitions
    _range(42, 0, 2),  # DeleteGroups
    _range(43, 0, 2),  # ElectLeaders
    _range(44, 0, 1),  # IncrementalAlterConfigs
    _range(47, 0, 0),  # OffsetDelete
    _range(55, 0, 2),  # DescribeQuorum
    _range(60, 0, 2),  # DescribeCluster
    _range(75, 0, 0),  # DescribeTopicPartitions
)


# Served on a controller listener besides the broker APIs: broker registration and
# heartbeats, and the KRaft RPCs (answered by the quorum before any decoding here).
CONTROLLER_ONLY_APIS: tuple[ApiRange, ...] = (
    _range(52, 2, 2),  # Vote
    _range(53, 1, 1),  # BeginQuorumEpoch
    _range(54, 1, 1),  # EndQuorumEpoch
    _range(56, 2, 3),  # AlterPartition
    _range(59, 1, 1),  # FetchSnapshot
    _range(62, 0, 4),  # BrokerRegistration
    _range(63, 0, 1),  # BrokerHeartbeat
)


class UnsupportedRequest(RemoteProtocolError):
    """A request whose API key or version we do not implement."""

    def __init__(self, api_key: int, api_version: int, correlation_id: int) -> None:
        name = api_key_map.get(api_key, "unknown")
        super().__init__(f"unsupported API {api_key} ({name}) version {api_version}")
        self.api_key = api_key
        self.api_version = api_version
        self.correlation_id = correlation_id


class MalformedRequest(RemoteProtocolError):
    """A request whose bytes do not decode under its declared schema."""


@dataclass(frozen=True, slots=True)
class Request:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    body: Any


@functools.cache
def message_class(api_key: int, api_version: int, entity_type: EntityType) -> type:
    name = api_key_map[api_key]
    module = load_entity_module(name, api_version, entity_type)
    suffix = "Request" if entity_type is EntityType.request else "Response"
    for value in vars(module).values():
        if isinstance(value, type) and getattr(value, "__type__", None) is entity_type:
            if value.__name__.endswith(suffix):
                return value
    raise LookupError(f"no {suffix} class for API {name} v{api_version}")


def request_class(api_key: int, api_version: int) -> type:
    return message_class(api_key, api_version, EntityType.request)


def response_class(api_key: int, api_version: int) -> type:
    return message_class(api_key, api_version, EntityType.response)


@functools.cache
def _reader(cls: type) -> Any:
    return entity_reader(cls)


@functools.cache
def _writer(cls: type) -> Any:
    return entity_writer(cls)


def peek_header(frame: bytes) -> tuple[int, int, int]:
    """(api_key, api_version, correlation_id) of a request frame, without decoding it."""
    if len(frame) < _API_HEADER.size:
        raise MalformedRequest(f"request of {len(frame)} bytes is shorter than a header")
    return _API_HEADER.unpack_from(frame, 0)


def decode_request(frame: bytes, apis: dict[int, ApiRange]) -> Request:
    """Decode one request frame (without its size prefix)."""
    api_key, api_version, correlation_id = peek_header(frame)
    supported = apis.get(api_key)
    if supported is None or not supported.implements(api_version):
        raise UnsupportedRequest(api_key, api_version, correlation_id)
    cls = request_class(api_key, api_version)
    view = memoryview(frame)
    try:
        header, header_size = _reader(cls.__header_schema__)(view, 0)
        check_array_counts(cls, view, header_size)  # before kio allocates for them
        body, body_size = _reader(cls)(view, header_size)
    except _DECODE_ERRORS as error:
        raise MalformedRequest(
            f"cannot decode {cls.__name__} v{api_version}: {error}"
        ) from error
    # Bytes after the body are ignored, as Kafka's parser does: librdkafka sends
    # Metadata v13 with fields the schema no longer has, and Kafka accepts it.
    return Request(api_key, api_version, correlation_id, header.client_id, body)


def _response_header_class(api_key: int, api_version: int) -> type:
    if api_key == API_VERSIONS_KEY:
        return response_class(API_VERSIONS_KEY, 0).__header_schema__
    return response_class(api_key, api_version).__header_schema__


def encode_response(api_key: int, api_version: int, correlation_id: int, body: Any) -> bytes:
    """A framed response: size, response header, body."""
    buffer = io.BytesIO()
    buffer.write(b"\0\0\0\0")
    header_class = _response_header_class(api_key, api_version)
    _writer(header_class)(buffer, header_class(correlation_id=correlation_id))
    _writer(type(body))(buffer, body)
    data = buffer.getbuffer()
    SIZE_PREFIX.pack_into(data, 0, len(data) - SIZE_PREFIX.size)
    return bytes(data)


def encode_request(correlation_id: int, client_id: str | None, body: Any) -> bytes:
    """A framed request; the API key and version come from the body's class."""
    cls = type(body)
    header_class = cls.__header_schema__
    buffer = io.BytesIO()
    buffer.write(b"\0\0\0\0")
    header = header_class(
        request_api_key=cls.__api_key__,
        request_api_version=cls.__version__,
        correlation_id=correlation_id,
        client_id=client_id,
    )
    _writer(header_class)(buffer, header)
    _writer(cls)(buffer, body)
    data = buffer.getbuffer()
    SIZE_PREFIX.pack_into(data, 0, len(data) - SIZE_PREFIX.size)
    return bytes(data)


def decode_response(api_key: int, api_version: int, frame: bytes) -> tuple[int, Any]:
    """(correlation_id, body) of a response frame (without its size prefix)."""
    cls = response_class(api_key, api_version)
    header_class = _response_header_class(api_key, api_version)
    view = memoryview(frame)
    header, header_size = _reader(header_class)(view, 0)
    body, _ = _reader(cls)(view, header_size)
    return header.correlation_id, body
