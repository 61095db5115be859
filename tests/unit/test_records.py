"""RecordBatch v2: exact bytes against kafka-python as an independent oracle, round trips per
codec, and every way a batch can be damaged (CRC, truncation, garbled records)."""

from __future__ import annotations

import ast
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from protocol import compression, records
from protocol.records import (
    BATCH_HEADER_SIZE,
    COMPRESSION_GZIP,
    COMPRESSION_LZ4,
    COMPRESSION_NAMES,
    COMPRESSION_NONE,
    COMPRESSION_SNAPPY,
    COMPRESSION_ZSTD,
    CorruptRecordError,
    InvalidRecordError,
    RecordInput,
    build_batch,
    compute_crc,
    crc_is_valid,
    decode_batch,
    decode_varint,
    decode_varlong,
    encode_varint,
    iter_batches,
    read_header,
    stamp_batch,
    stamp_log_append_time,
    validate_batches,
)

ALL_CODECS = sorted(COMPRESSION_NAMES.values())
TIMESTAMP_MS = 1_700_000_000_000

SAMPLE_ENTRIES = (
    RecordInput(b"key-0", b"value-0", (("trace", b"abc"), ("empty", b""), ("null", None)), TIMESTAMP_MS),
    RecordInput(None, b"value-1", (), TIMESTAMP_MS + 5),
    RecordInput(b"key-2", None, (("\u00e9t\u00e9", b"\x00\xff"),), TIMESTAMP_MS - 3),
    RecordInput(b"", b"", (), TIMESTAMP_MS + 1000),
)


def kafka_python_batch(entries, compression_type=COMPRESSION_NONE) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=compression_type, is_transactional=False,
        producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=2**24,
    )
    for offset, entry in enumerate(entries):
        metadata = builder.append(offset, entry.timestamp_ms, entry.key, entry.value, list(entry.headers))
        assert metadata is not None, "kafka-python refused a record"
    return bytes(builder.build())


def as_tuples(records):
    return [(record.offset, record.timestamp, record.key, record.value, tuple(record.headers)) for record in records]


def expected_tuples(entries, base_offset=0):
    return [
        (base_offset + index, entry.timestamp_ms, entry.key, entry.value, entry.headers)
        for index, entry in enumerate(entries)
    ]


# ---- exact bytes and interoperability with kafka-python ----

def test_uncompressed_batch_is_byte_exact_with_kafka_python():
    ours = build_batch(SAMPLE_ENTRIES, partition_leader_epoch=0)
    theirs = kafka_python_batch(SAMPLE_ENTRIES)
    assert ours == theirs, f"expected kafka-python bytes\n{theirs.hex()}\ngot\n{ours.hex()}"


def test_known_bytes_of_a_one_record_batch():
    """Bytes worked out by hand from the format description, independent of any library."""
    batch = build_batch([RecordInput(b"k", b"v")], timestamp_ms=0, partition_leader_epoch=0)
    record = bytes([0x10, 0x00, 0x00, 0x00, 0x02]) + b"k" + bytes([0x02]) + b"v" + bytes([0x00])
    assert batch[BATCH_HEADER_SIZE:] == record
    assert batch[:8] == b"\x00" * 8
    assert struct.unpack_from(">i", batch, 8)[0] == 49 + len(record)
    assert batch[16] == 2
    assert batch[21:57] == struct.pack(">hiqqqhi", 0, 0, 0, 0, -1, -1, -1)
    assert struct.unpack_from(">i", batch, 57)[0] == 1


@pytest.mark.parametrize("codec", [COMPRESSION_NONE, COMPRESSION_GZIP])
def test_kafka_python_reads_our_batches(codec):
    batch = build_batch(SAMPLE_ENTRIES * 50, compression=codec, timestamp_ms=TIMESTAMP_MS)
    theirs = DefaultRecordBatch(bytearray(batch))
    assert theirs.validate_crc(), "kafka-python rejects our CRC"
    assert theirs.compression_type == codec
    decoded = [(r.offset, r.timestamp, r.key, r.value, tuple(r.headers)) for r in theirs]
    assert decoded == expected_tuples(SAMPLE_ENTRIES * 50)


def test_we_read_kafka_python_gzip_batches():
    entries = SAMPLE_ENTRIES * 50  # repetitive so kafka-python keeps the compressed form
    batch = kafka_python_batch(entries, COMPRESSION_GZIP)
    header = read_header(batch)
    assert header.compression == COMPRESSION_GZIP, "kafka-python fell back to no compression"
    assert validate_batches(batch) == [(0, header)]
    _, records = decode_batch(batch)
    assert as_tuples(records) == expected_tuples(entries)


# ---- round trips ----

@pytest.mark.parametrize("codec", ALL_CODECS)
def test_round_trip_every_codec(codec):
    entries = SAMPLE_ENTRIES * 20
    batch = build_batch(entries, compression=codec, base_offset=100, producer_id=7, producer_epoch=3,
                        base_sequence=11, partition_leader_epoch=5, is_transactional=True)
    header, records = decode_batch(batch)
    assert header.compression == codec
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (7, 3, 11)
    assert header.is_transactional and not header.is_control
    assert header.last_offset == 100 + len(entries) - 1
    assert header.base_timestamp == TIMESTAMP_MS and header.max_timestamp == TIMESTAMP_MS + 1000
    assert as_tuples(records) == expected_tuples(entries, base_offset=100)
    assert validate_batches(batch) == [(0, header)]


@pytest.mark.parametrize("codec", ALL_CODECS)
def test_large_batch_round_trip(codec):
    value = bytes(range(256)) * 1024  # 256 KiB: several xerial blocks and lz4 blocks
    entries = [RecordInput(str(index).encode(), value) for index in range(8)]
    _, records = decode_batch(build_batch(entries, compression=codec, timestamp_ms=1))
    assert [record.value for record in records] == [value] * 8
    assert [record.key for record in records] == [str(index).encode() for index in range(8)]


def test_default_timestamp_and_per_record_offsets():
    batch = build_batch([RecordInput(b"a", offset_delta=0), RecordInput(b"b", offset_delta=5)], timestamp_ms=42)
    header, records = decode_batch(batch)
    assert header.last_offset_delta == 5 and header.records_count == 2
    assert [(record.offset, record.timestamp) for record in records] == [(0, 42), (5, 42)]
    with pytest.raises(InvalidRecordError):
        validate_batches(batch)  # produce rule: lastOffsetDelta must be count - 1


def test_log_append_time_replaces_record_timestamps():
    batch = bytearray(build_batch(SAMPLE_ENTRIES))
    stamp_log_append_time(batch, 0, 99)
    header, records = decode_batch(batch)
    assert header.timestamp_type == 1 and header.max_timestamp == 99
    assert crc_is_valid(batch, 0, header)
    assert {record.timestamp for record in records} == {99}


# ---- header view ----

def test_header_properties():
    batch = build_batch([RecordInput(b"x")] * 3, base_offset=10, base_sequence=2**31 - 2, is_control=True)
    header = read_header(batch)
    assert header.size_bytes == len(batch)
    assert (header.last_offset, header.next_offset) == (12, 13)
    assert header.last_sequence == 0, "sequence must wrap from 2**31-1 to 0"
    assert header.is_control and header.timestamp_type == 0
    assert read_header(build_batch([RecordInput()])).last_sequence == -1


def test_stamp_batch_keeps_crc_valid():
    batch = bytearray(build_batch(SAMPLE_ENTRIES, compression=COMPRESSION_LZ4))
    stamp_batch(batch, 0, base_offset=1_000_000, partition_leader_epoch=17)
    header = read_header(batch)
    assert (header.base_offset, header.partition_leader_epoch) == (1_000_000, 17)
    assert crc_is_valid(batch, 0, header)
    _, records = decode_batch(batch)
    assert [record.offset for record in records] == [1_000_000 + index for index in range(4)]


def test_stamp_batch_through_memoryview_at_a_position():
    first, second = build_batch([RecordInput(b"a")]), build_batch([RecordInput(b"b")] * 2)
    buffer = bytearray(first + second)
    stamp_batch(memoryview(buffer), len(first), 50, 3)
    positions = [(position, header.base_offset) for position, header in validate_batches(buffer)]
    assert positions == [(0, 0), (len(first), 50)]


# ---- damage ----

def test_every_single_byte_flip_in_crc_range_is_caught():
    batch = build_batch(SAMPLE_ENTRIES, timestamp_ms=TIMESTAMP_MS)
    for index in range(17, len(batch)):  # the CRC field itself and everything it covers
        damaged = bytearray(batch)
        damaged[index] ^= 0x01
        if index >= 21:
            assert not crc_is_valid(damaged, 0, read_header(damaged)), f"flip at byte {index} kept the CRC valid"
        with pytest.raises(CorruptRecordError):
            validate_batches(damaged)
        with pytest.raises((CorruptRecordError, InvalidRecordError)):
            decode_batch(damaged)


def test_flips_outside_crc_range_do_not_break_the_crc():
    batch = build_batch(SAMPLE_ENTRIES)
    for index in list(range(0, 8)) + list(range(12, 16)):
        damaged = bytearray(batch)
        damaged[index] ^= 0xFF
        assert crc_is_valid(damaged, 0, read_header(damaged)), f"byte {index} should not be CRC-covered"


@pytest.mark.parametrize("codec", ALL_CODECS)
def test_truncation_at_every_position(codec):
    first = build_batch(SAMPLE_ENTRIES, compression=codec)
    buffer = first + build_batch(SAMPLE_ENTRIES, compression=codec, base_offset=4)
    for cut in range(1, len(buffer)):
        if cut == len(first):
            continue
        truncated = buffer[:cut]
        with pytest.raises(CorruptRecordError):
            validate_batches(truncated)
        with pytest.raises(CorruptRecordError):
            list(iter_batches(truncated, allow_partial_tail=False))
        complete = [position for position, _ in iter_batches(truncated)]
        assert complete == ([0] if cut > len(first) else []), f"cut at {cut}"
        if cut < len(first):
            with pytest.raises(CorruptRecordError):
                decode_batch(truncated)


def rewrite_section(batch: bytes, section: bytes, records_count: int | None = None) -> bytearray:
    """A batch whose records section is replaced, with lengths and CRC fixed so only the records
    themselves are wrong."""
    rebuilt = bytearray(batch[:BATCH_HEADER_SIZE] + section)
    struct.pack_into(">i", rebuilt, 8, len(rebuilt) - 12)
    if records_count is not None:
        struct.pack_into(">i", rebuilt, 57, records_count)
    struct.pack_into(">I", rebuilt, 17, compute_crc(rebuilt, 0, read_header(rebuilt)))
    return rebuilt


def test_truncated_records_with_valid_crc_are_corrupt():
    batch = build_batch(SAMPLE_ENTRIES)
    section = batch[BATCH_HEADER_SIZE:]
    for cut in range(len(section)):
        with pytest.raises(CorruptRecordError):
            decode_batch(rewrite_section(batch, section[:cut]))


@pytest.mark.parametrize("codec", [COMPRESSION_GZIP, COMPRESSION_SNAPPY, COMPRESSION_LZ4, COMPRESSION_ZSTD])
def test_garbled_compressed_section_is_corrupt(codec):
    batch = build_batch(SAMPLE_ENTRIES * 10, compression=codec)
    section = bytearray(batch[BATCH_HEADER_SIZE:])
    for index in range(0, len(section), 3):
        section[index] ^= 0x5A
    with pytest.raises(CorruptRecordError):
        decode_batch(rewrite_section(batch, bytes(section)))


def test_count_mismatch():
    batch = build_batch(SAMPLE_ENTRIES)
    section = batch[BATCH_HEADER_SIZE:]
    with pytest.raises(InvalidRecordError, match="remain"):
        decode_batch(rewrite_section(batch, section, records_count=3))
    with pytest.raises(CorruptRecordError):
        decode_batch(rewrite_section(batch, section, records_count=5))
    with pytest.raises(InvalidRecordError):
        validate_batches(rewrite_section(batch, section, records_count=3))
    with pytest.raises(InvalidRecordError):
        validate_batches(rewrite_section(build_batch([]), b"", records_count=0))


def test_empty_control_batch_is_accepted():
    batch = build_batch([], is_control=True)
    assert [header.records_count for _, header in validate_batches(batch)] == [0]


def test_wrong_magic_and_unknown_codec_are_invalid():
    batch = bytearray(build_batch(SAMPLE_ENTRIES))
    batch[16] = 1
    with pytest.raises(InvalidRecordError, match="magic"):
        validate_batches(batch)
    batch = bytearray(build_batch(SAMPLE_ENTRIES))
    struct.pack_into(">h", batch, 21, 5)
    struct.pack_into(">I", batch, 17, compute_crc(batch, 0, read_header(batch)))
    with pytest.raises(InvalidRecordError, match="codec"):
        validate_batches(batch)
    with pytest.raises(InvalidRecordError, match="codec"):
        decode_batch(batch)


def test_impossible_batch_length_is_corrupt():
    batch = bytearray(build_batch(SAMPLE_ENTRIES))
    for length in (-1, 0, 48):
        struct.pack_into(">i", batch, 8, length)
        with pytest.raises(CorruptRecordError, match="batchLength"):
            read_header(batch)


def test_empty_buffer_has_no_batches():
    assert validate_batches(b"") == []
    assert list(iter_batches(b"")) == []


# ---- codecs ----

def test_xerial_snappy_framing():
    data = bytes(range(256)) * 300  # 76800 bytes: three 32 KiB blocks
    framed = compression.compress(COMPRESSION_SNAPPY, data)
    assert framed[:16] == b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
    position, blocks = 16, 0
    while position < len(framed):
        (block_bytes,) = struct.unpack_from(">i", framed, position)
        position += 4 + block_bytes
        blocks += 1
    assert (position, blocks) == (len(framed), 3)
    assert compression.decompress(COMPRESSION_SNAPPY, framed) == data


def test_raw_snappy_is_accepted():
    import cramjam

    raw = bytes(cramjam.snappy.compress_raw(b"plain raw snappy" * 10))
    assert compression.decompress(COMPRESSION_SNAPPY, raw) == b"plain raw snappy" * 10


def test_lz4_is_frame_format_with_independent_blocks():
    framed = compression.compress(COMPRESSION_LZ4, b"abc" * 1000)
    assert framed[:4] == b"\x04\x22\x4d\x18", "expected the LZ4 frame magic"
    assert framed[4] & 0x20, "Kafka's Java reader needs independent blocks"


def test_codec_magic_numbers():
    assert compression.compress(COMPRESSION_GZIP, b"x")[:2] == b"\x1f\x8b"
    assert compression.compress(COMPRESSION_ZSTD, b"x")[:4] == b"\x28\xb5\x2f\xfd"


@pytest.mark.parametrize("codec", [COMPRESSION_GZIP, COMPRESSION_SNAPPY, COMPRESSION_LZ4, COMPRESSION_ZSTD])
def test_garbage_does_not_decompress(codec):
    for garbage in (b"", b"\x01", b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\x7f\xff\xff\xff", b"garbage" * 9):
        with pytest.raises(ValueError):
            compression.decompress(codec, garbage)


# ---- varints ----

@pytest.mark.parametrize(
    "value, encoded",
    [(0, "00"), (-1, "01"), (1, "02"), (63, "7e"), (-64, "7f"), (64, "8001"), (300, "d804"),
     (2**31 - 1, "feffffff0f"), (-(2**31), "ffffffff0f")],
)
def test_varint_known_encodings(value, encoded):
    assert encode_varint(value).hex() == encoded
    assert decode_varint(bytes.fromhex(encoded), 0) == (value, len(encoded) // 2)


def test_varint_limits():
    with pytest.raises(CorruptRecordError, match="overflows"):
        decode_varint(encode_varint(2**31), 0)
    with pytest.raises(CorruptRecordError, match="longer"):
        decode_varint(b"\x80" * 6, 0)
    with pytest.raises(CorruptRecordError, match="past the end"):
        decode_varint(b"\x80\x80", 0)
    assert decode_varlong(encode_varint(-(2**63)), 0) == (-(2**63), 10)


def test_records_modules_import_neither_trio_nor_socket():
    """House rule 1. Checked in the source: crc32c itself pulls in socket through
    importlib.metadata, which is not our import."""
    for module in (records, compression):
        tree = ast.parse(Path(module.__file__).read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module}
        assert not imported & {"trio", "socket"}, f"{module.__name__} imports {imported & {'trio', 'socket'}}"
    code = "import sys, protocol.records; assert 'trio' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
