"""Kafka RecordBatch v2 (magic 2): a header view over bytes, CRC32C, and record encoding.

The data path must not decode records: the broker checks a produced batch with
``validate_batches`` (header, sizes, CRC), appends the same bytes, and assigns offsets with
``stamp_batch``, which rewrites baseOffset and partitionLeaderEpoch, the two fields the CRC does
not cover. ``decode_batch`` and ``build_batch`` are for tools, compaction and tests.

Layout (big-endian), 61 header bytes then the records section, compressed as a whole:
baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 | crc uint32 |
attributes int16 | lastOffsetDelta int32 | baseTimestamp int64 | maxTimestamp int64 |
producerId int64 | producerEpoch int16 | baseSequence int32 | recordsCount int32.
The CRC32C covers attributes through the end of the batch.

Errors say whose fault they are, in Kafka's terms: ``CorruptRecordError`` (CORRUPT_MESSAGE) for
bytes that cannot be a batch (bad CRC, impossible lengths, truncation, garbled records) and
``InvalidRecordError`` (INVALID_RECORD) for well-formed bytes that break a rule (magic, attributes,
record count). Bad input never escapes as IndexError or struct.error.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import crc32c

from protocol.compression import (
    COMPRESSION_CODECS,
    COMPRESSION_GZIP,
    COMPRESSION_LZ4,
    COMPRESSION_NAMES,
    COMPRESSION_NONE,
    COMPRESSION_SNAPPY,
    COMPRESSION_ZSTD,
    CompressionError,
    compress,
    decompress,
)

__all__ = [
    "BATCH_HEADER_SIZE", "MAGIC_V2", "COMPRESSION_NONE", "COMPRESSION_GZIP", "COMPRESSION_SNAPPY",
    "COMPRESSION_LZ4", "COMPRESSION_ZSTD", "COMPRESSION_NAMES", "TIMESTAMP_CREATE_TIME",
    "TIMESTAMP_LOG_APPEND_TIME", "CorruptRecordError", "InvalidRecordError", "BatchHeader",
    "Record", "RecordInput", "read_header", "compute_crc", "crc_is_valid", "validate_batches",
    "iter_batches", "stamp_batch", "stamp_log_append_time", "decode_batch", "build_batch",
    "compress", "decompress", "encode_varint", "decode_varint", "decode_varlong",
]

BATCH_HEADER_SIZE = 61
MAGIC_V2 = 2
LOG_OVERHEAD = 12  # baseOffset + batchLength: the bytes batchLength does not count
BATCH_LENGTH_MIN = BATCH_HEADER_SIZE - LOG_OVERHEAD  # 49
CRC_START_OFFSET = 21  # attributes: first byte the CRC covers
MAGIC_OFFSET = 16
CRC_OFFSET = 17
ATTRIBUTES_OFFSET = 21
MAX_TIMESTAMP_OFFSET = 35
INT32_MAX = 2**31 - 1
NO_SEQUENCE = -1
VARINT_BYTES_MAX = 5
VARLONG_BYTES_MAX = 10

TIMESTAMP_CREATE_TIME = 0
TIMESTAMP_LOG_APPEND_TIME = 1
COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_MASK = 0x08
TRANSACTIONAL_MASK = 0x10
CONTROL_MASK = 0x20
DELETE_HORIZON_MASK = 0x40

_HEADER = struct.Struct(">qiibIhiqqqhii")
assert _HEADER.size == BATCH_HEADER_SIZE


class CorruptRecordError(ValueError):
    """Bytes that cannot be a record batch; Kafka answers CORRUPT_MESSAGE."""


class InvalidRecordError(ValueError):
    """A well-formed batch that breaks a format rule; Kafka answers INVALID_RECORD."""


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """The 61-byte header of one batch, field for field as on the wire."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size_bytes(self) -> int:
        """The whole batch on the wire, including baseOffset and batchLength."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.last_offset + 1

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int:
        """TIMESTAMP_CREATE_TIME or TIMESTAMP_LOG_APPEND_TIME."""
        return TIMESTAMP_LOG_APPEND_TIME if self.attributes & TIMESTAMP_TYPE_MASK else TIMESTAMP_CREATE_TIME

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_MASK)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self.attributes & DELETE_HORIZON_MASK)

    @property
    def last_sequence(self) -> int:
        """Sequences wrap from 2**31-1 to 0, as in Kafka's DefaultRecordBatch.incrementSequence."""
        if self.base_sequence == NO_SEQUENCE:
            return NO_SEQUENCE
        return (self.base_sequence + self.last_offset_delta) % (INT32_MAX + 1)


@dataclass(frozen=True, slots=True)
class Record:
    """One decoded record with absolute offset and timestamp (milliseconds)."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


@dataclass(frozen=True, slots=True)
class RecordInput:
    """One record to encode. ``offset_delta`` None means its index in the batch; compaction
    passes the original delta so offsets survive with gaps. ``timestamp_ms`` None means the
    batch's timestamp."""

    key: bytes | None = None
    value: bytes | None = None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp_ms: int | None = None
    offset_delta: int | None = None


Buffer = bytes | bytearray | memoryview


def encode_varint(value: int) -> bytes:
    """Zigzag then base-128 little-endian groups, as protobuf's sint64 and Kafka's varlong."""
    assert -(2**63) <= value < 2**63, f"varint {value} is outside int64"
    unsigned = (value << 1) ^ (value >> 63)
    out = bytearray()
    while unsigned > 0x7F:
        out.append((unsigned & 0x7F) | 0x80)
        unsigned >>= 7
    out.append(unsigned)
    return bytes(out)


def decode_varint(buffer: Buffer, position: int) -> tuple[int, int]:
    """A zigzag varint (int32, at most 5 bytes); returns (value, next_position)."""
    return _decode_zigzag(buffer, position, VARINT_BYTES_MAX, 32)


def decode_varlong(buffer: Buffer, position: int) -> tuple[int, int]:
    """A zigzag varlong (int64, at most 10 bytes); returns (value, next_position)."""
    return _decode_zigzag(buffer, position, VARLONG_BYTES_MAX, 64)


def _decode_zigzag(buffer: Buffer, position: int, bytes_max: int, bits: int) -> tuple[int, int]:
    unsigned = 0
    for index in range(bytes_max):
        if position + index >= len(buffer):
            raise CorruptRecordError(f"varint at byte {position} runs past the end ({len(buffer)} bytes)")
        byte = buffer[position + index]
        unsigned |= (byte & 0x7F) << (7 * index)
        if byte < 0x80:
            if unsigned >> bits:
                raise CorruptRecordError(f"varint at byte {position} overflows int{bits}")
            return (unsigned >> 1) ^ -(unsigned & 1), position + index + 1
    raise CorruptRecordError(f"varint at byte {position} is longer than {bytes_max} bytes")


def read_header(buffer: Buffer, position: int = 0) -> BatchHeader:
    """Parse the header at ``position`` without looking at the records or the CRC."""
    available_bytes = len(buffer) - position
    if available_bytes < BATCH_HEADER_SIZE:
        raise CorruptRecordError(
            f"batch header at byte {position} needs {BATCH_HEADER_SIZE} bytes, only {available_bytes} left"
        )
    header = BatchHeader(*_HEADER.unpack_from(buffer, position))
    if header.batch_length < BATCH_LENGTH_MIN:
        raise CorruptRecordError(
            f"batch at byte {position} declares batchLength {header.batch_length}, "
            f"below the minimum {BATCH_LENGTH_MIN}"
        )
    if header.magic != MAGIC_V2:
        raise InvalidRecordError(f"batch at byte {position} has magic {header.magic}, expected {MAGIC_V2}")
    return header


def _require_complete(buffer: Buffer, position: int, header: BatchHeader) -> None:
    available_bytes = len(buffer) - position
    if available_bytes < header.size_bytes:
        raise CorruptRecordError(
            f"batch at byte {position} declares {header.size_bytes} bytes, only {available_bytes} left"
        )


def compute_crc(buffer: Buffer, position: int, header: BatchHeader) -> int:
    """CRC32C over attributes..end of the batch, read through a memoryview (no copy)."""
    _require_complete(buffer, position, header)
    return crc32c.crc32c(memoryview(buffer)[position + CRC_START_OFFSET : position + header.size_bytes])


def crc_is_valid(buffer: Buffer, position: int, header: BatchHeader) -> bool:
    return compute_crc(buffer, position, header) == header.crc


def iter_batches(buffer: Buffer, *, allow_partial_tail: bool = True) -> Iterator[tuple[int, BatchHeader]]:
    """Yield (position, header) per complete batch. Fetch responses may end in a partial batch
    (the broker cuts at max bytes), so by default a short tail ends the iteration quietly."""
    position = 0
    while position < len(buffer):
        available_bytes = len(buffer) - position
        if allow_partial_tail and available_bytes < BATCH_HEADER_SIZE:
            return
        header = read_header(buffer, position)
        if allow_partial_tail and available_bytes < header.size_bytes:
            return
        _require_complete(buffer, position, header)
        yield position, header
        position += header.size_bytes


def validate_batches(buffer: Buffer) -> list[tuple[int, BatchHeader]]:
    """Check a produce request's records without decoding a single record: whole batches only,
    magic 2, a valid CRC (checked first, so damage reads as corruption), a known codec, and a
    record count that matches lastOffsetDelta.
    An empty buffer gives []; Kafka's rule of exactly one batch per partition is the caller's."""
    batches = []
    for position, header in iter_batches(buffer, allow_partial_tail=False):
        actual_crc = compute_crc(buffer, position, header)
        if actual_crc != header.crc:
            raise CorruptRecordError(
                f"batch at byte {position} has CRC {header.crc:#010x}, computed {actual_crc:#010x}"
            )
        _check_attributes(position, header)
        if not header.is_control:
            _check_count(position, header)
        batches.append((position, header))
    return batches


def _check_attributes(position: int, header: BatchHeader) -> None:
    if header.compression not in COMPRESSION_CODECS:
        raise InvalidRecordError(
            f"batch at byte {position} names compression codec {header.compression}; Kafka defines 0..4"
        )


def _check_count(position: int, header: BatchHeader) -> None:
    if header.records_count < 1 or header.last_offset_delta != header.records_count - 1:
        raise InvalidRecordError(
            f"batch at byte {position} holds {header.records_count} records but lastOffsetDelta is "
            f"{header.last_offset_delta}; expected at least one record and a delta of count - 1"
        )


def stamp_batch(
    buffer: bytearray | memoryview, position: int, base_offset: int, partition_leader_epoch: int
) -> None:
    """Assign the batch its offsets and leader epoch in place; the CRC stays valid because it
    does not cover these fields."""
    struct.pack_into(">q", buffer, position, base_offset)
    struct.pack_into(">i", buffer, position + 12, partition_leader_epoch)


def stamp_log_append_time(buffer: bytearray | memoryview, position: int, timestamp_ms: int) -> None:
    """For topics with message.timestamp.type=LogAppendTime: set the timestamp type bit and
    maxTimestamp, then recompute the CRC, since both fields are covered by it."""
    header = read_header(buffer, position)
    _require_complete(buffer, position, header)
    struct.pack_into(">h", buffer, position + ATTRIBUTES_OFFSET, header.attributes | TIMESTAMP_TYPE_MASK)
    struct.pack_into(">q", buffer, position + MAX_TIMESTAMP_OFFSET, timestamp_ms)
    struct.pack_into(">I", buffer, position + CRC_OFFSET, compute_crc(buffer, position, header))


def decode_batch(
    buffer: Buffer, position: int = 0, *, verify_crc: bool = True
) -> tuple[BatchHeader, list[Record]]:
    """Decode every record of the batch at ``position``, decompressing if needed."""
    header = read_header(buffer, position)
    _require_complete(buffer, position, header)
    if verify_crc and not crc_is_valid(buffer, position, header):
        raise CorruptRecordError(f"batch at byte {position} fails its CRC check")
    _check_attributes(position, header)
    if header.records_count < 0:
        raise CorruptRecordError(f"batch at byte {position} declares {header.records_count} records")
    section = memoryview(buffer)[position + BATCH_HEADER_SIZE : position + header.size_bytes]
    try:
        data = section if header.compression == COMPRESSION_NONE else decompress(header.compression, section)
    except CompressionError as error:
        raise CorruptRecordError(f"batch at byte {position}: {error}") from error
    return header, _decode_records(memoryview(data), header)


def _decode_records(data: memoryview, header: BatchHeader) -> list[Record]:
    records = []
    cursor = 0
    while len(records) < header.records_count:
        if cursor >= len(data):
            raise CorruptRecordError(
                f"records section ends after {len(records)} of {header.records_count} records"
            )
        record, cursor = _decode_record(data, cursor, header)
        records.append(record)
    if cursor != len(data):
        raise InvalidRecordError(
            f"batch declares {header.records_count} records but {len(data) - cursor} bytes remain after them"
        )
    return records


def _decode_record(data: memoryview, start: int, header: BatchHeader) -> tuple[Record, int]:
    """Decode one record; a length that disagrees with its fields is corruption."""
    length, cursor = decode_varint(data, start)
    end = cursor + length
    if length < 0 or end > len(data):
        raise CorruptRecordError(f"record at byte {start} declares {length} bytes, {len(data) - cursor} left")
    record_view = data[:end]
    cursor += 1  # attributes: unused in v2
    timestamp_delta, cursor = decode_varlong(record_view, cursor)
    offset_delta, cursor = decode_varint(record_view, cursor)
    key, cursor = _decode_bytes(record_view, cursor)
    value, cursor = _decode_bytes(record_view, cursor)
    headers, cursor = _decode_headers(record_view, cursor)
    if cursor != end:
        raise CorruptRecordError(
            f"record at byte {start} declares {length} bytes but its fields end at byte {cursor}"
        )
    if header.timestamp_type == TIMESTAMP_LOG_APPEND_TIME:
        timestamp = header.max_timestamp
    else:
        timestamp = header.base_timestamp + timestamp_delta
    return Record(header.base_offset + offset_delta, timestamp, key, value, headers), cursor


def _decode_bytes(data: memoryview, cursor: int) -> tuple[bytes | None, int]:
    length, cursor = decode_varint(data, cursor)
    if length == -1:
        return None, cursor
    if length < -1 or cursor + length > len(data):
        raise CorruptRecordError(f"field at byte {cursor} declares {length} bytes, {len(data) - cursor} left")
    return bytes(data[cursor : cursor + length]), cursor + length


def _decode_headers(data: memoryview, cursor: int) -> tuple[tuple[tuple[str, bytes | None], ...], int]:
    count, cursor = decode_varint(data, cursor)
    if count < 0 or count > len(data) - cursor:
        raise CorruptRecordError(f"record declares {count} headers with {len(data) - cursor} bytes left")
    headers = []
    for _ in range(count):
        key, cursor = _decode_bytes(data, cursor)
        if key is None:
            raise CorruptRecordError(f"header key at byte {cursor} is null")
        try:
            name = key.decode("utf-8")
        except UnicodeDecodeError as error:
            raise CorruptRecordError(f"header key before byte {cursor} is not UTF-8: {error}") from error
        value, cursor = _decode_bytes(data, cursor)
        headers.append((name, value))
    return tuple(headers), cursor


def build_batch(
    entries: Sequence[RecordInput],
    *,
    base_offset: int = 0,
    compression: int = COMPRESSION_NONE,
    timestamp_ms: int | None = None,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    partition_leader_epoch: int = -1,
    is_transactional: bool = False,
    is_control: bool = False,
    last_offset_delta: int | None = None,
) -> bytes:
    """Encode one batch. The first record's timestamp is the base, as Kafka's producer does.
    ``last_offset_delta`` None means the largest record offset delta (0 for no records)."""
    assert compression in COMPRESSION_CODECS, f"unknown compression codec {compression}"
    default_timestamp_ms = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    timestamps = [
        default_timestamp_ms if entry.timestamp_ms is None else entry.timestamp_ms for entry in entries
    ]
    base_timestamp = timestamps[0] if timestamps else default_timestamp_ms
    offset_deltas = [
        index if entry.offset_delta is None else entry.offset_delta
        for index, entry in enumerate(entries)
    ]
    section = b"".join(
        _encode_record(entry, offset_delta, timestamp - base_timestamp)
        for entry, offset_delta, timestamp in zip(entries, offset_deltas, timestamps)
    )
    if compression != COMPRESSION_NONE:
        section = compress(compression, section)
    attributes = compression
    attributes |= TRANSACTIONAL_MASK if is_transactional else 0
    attributes |= CONTROL_MASK if is_control else 0
    if last_offset_delta is None:
        last_offset_delta = max(offset_deltas, default=0)
    batch = bytearray(BATCH_HEADER_SIZE + len(section))
    _HEADER.pack_into(
        batch, 0, base_offset, BATCH_LENGTH_MIN + len(section), partition_leader_epoch, MAGIC_V2, 0,
        attributes, last_offset_delta, base_timestamp, max(timestamps, default=base_timestamp),
        producer_id, producer_epoch, base_sequence, len(entries),
    )
    batch[BATCH_HEADER_SIZE:] = section
    struct.pack_into(">I", batch, CRC_OFFSET, crc32c.crc32c(memoryview(batch)[CRC_START_OFFSET:]))
    return bytes(batch)


def _encode_record(entry: RecordInput, offset_delta: int, timestamp_delta: int) -> bytes:
    body = [b"\x00", encode_varint(timestamp_delta), encode_varint(offset_delta), _encode_bytes(entry.key),
            _encode_bytes(entry.value), encode_varint(len(entry.headers))]
    for name, value in entry.headers:
        body.append(_encode_bytes(name.encode("utf-8")))
        body.append(_encode_bytes(value))
    encoded = b"".join(body)
    return encode_varint(len(encoded)) + encoded


def _encode_bytes(field: bytes | None) -> bytes:
    if field is None:
        return encode_varint(-1)
    return encode_varint(len(field)) + bytes(field)
