"""Property tests for RecordBatch v2: round trips for any records and codec, and that no input,
random or a damaged valid batch, escapes as anything but CorruptRecordError or InvalidRecordError."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from protocol.records import (
    BATCH_HEADER_SIZE,
    COMPRESSION_NAMES,
    CorruptRecordError,
    InvalidRecordError,
    RecordInput,
    build_batch,
    compute_crc,
    decode_batch,
    decode_varint,
    decode_varlong,
    encode_varint,
    iter_batches,
    read_header,
    validate_batches,
)

RECORD_ERRORS = (CorruptRecordError, InvalidRecordError)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

optional_bytes = st.none() | st.binary(max_size=64)
headers = st.lists(st.tuples(st.text(max_size=8), optional_bytes), max_size=3).map(tuple)
record_inputs = st.builds(
    RecordInput, key=optional_bytes, value=optional_bytes, headers=headers,
    timestamp_ms=st.none() | st.integers(0, 2**41),
)
codecs = st.sampled_from(sorted(COMPRESSION_NAMES.values()))


@FAST
@given(entries=st.lists(record_inputs, min_size=1, max_size=20), codec=codecs,
       base_offset=st.integers(0, 2**62), base_sequence=st.integers(-1, 2**31 - 1))
def test_build_then_decode_round_trips(entries, codec, base_offset, base_sequence):
    batch = build_batch(entries, compression=codec, base_offset=base_offset, timestamp_ms=1234,
                        producer_id=5, producer_epoch=0, base_sequence=base_sequence)
    assert validate_batches(batch) == [(0, read_header(batch))]
    header, records = decode_batch(batch)
    assert (header.records_count, header.compression, header.base_offset) == (len(entries), codec, base_offset)
    expected = [
        (base_offset + index, 1234 if entry.timestamp_ms is None else entry.timestamp_ms,
         entry.key, entry.value, entry.headers)
        for index, entry in enumerate(entries)
    ]
    assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in records] == expected
    assert header.max_timestamp == max(timestamp for _, timestamp, *_ in expected)


def expect_only_record_errors(action):
    try:
        action()
    except RECORD_ERRORS:
        pass


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=300))
@example(data=b"\x00" * 8 + struct.pack(">i", 49) + b"\x00" * 4 + b"\x02" + b"\x00" * 44)
def test_random_bytes_raise_only_record_errors(data):
    expect_only_record_errors(lambda: validate_batches(data))
    expect_only_record_errors(lambda: decode_batch(data))
    expect_only_record_errors(lambda: decode_batch(data, verify_crc=False))
    expect_only_record_errors(lambda: list(iter_batches(data)))
    expect_only_record_errors(lambda: list(iter_batches(data, allow_partial_tail=False)))


def with_fixed_crc(batch: bytearray) -> bytearray:
    """Recompute the CRC so the damage reaches the record decoder instead of the CRC check."""
    try:
        header = read_header(batch)
        struct.pack_into(">I", batch, 17, compute_crc(batch, 0, header))
    except RECORD_ERRORS:
        pass
    return batch


@FAST
@given(entries=st.lists(record_inputs, min_size=1, max_size=5), codec=codecs,
       edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
       cut=st.none() | st.integers(0, 10_000))
def test_damaged_batches_raise_only_record_errors(entries, codec, edits, cut):
    batch = bytearray(build_batch(entries, compression=codec))
    for index, byte in edits:
        position = BATCH_HEADER_SIZE - 40 + index % (len(batch) - BATCH_HEADER_SIZE + 40)
        batch[position] = byte
    if cut is not None:
        del batch[cut % len(batch):]
    damaged = with_fixed_crc(batch)
    expect_only_record_errors(lambda: decode_batch(damaged))
    expect_only_record_errors(lambda: validate_batches(damaged))


@FAST
@given(entries=st.lists(record_inputs, min_size=1, max_size=5), codec=codecs, index=st.integers(0, 10_000),
       flip=st.integers(1, 255))
def test_any_flip_in_crc_range_is_detected(entries, codec, index, flip):
    batch = bytearray(build_batch(entries, compression=codec))
    position = 17 + index % (len(batch) - 17)
    batch[position] ^= flip
    try:
        validate_batches(batch)
    except CorruptRecordError:
        return
    raise AssertionError(f"flip {flip:#04x} at byte {position} of {len(batch)} was not detected")


@given(value=st.integers(-(2**63), 2**63 - 1))
def test_varlong_round_trip(value):
    encoded = encode_varint(value)
    assert decode_varlong(encoded + b"\xff", 0) == (value, len(encoded))
    if -(2**31) <= value < 2**31:
        assert decode_varint(encoded, 0) == (value, len(encoded))


@given(base_sequence=st.integers(0, 2**31 - 1), delta=st.integers(0, 2**31 - 1))
def test_last_sequence_wraps_as_kafka_does(base_sequence, delta):
    batch = bytearray(build_batch([RecordInput()], base_sequence=base_sequence))
    struct.pack_into(">i", batch, 23, delta)
    int32_max = 2**31 - 1
    # Kafka's DefaultRecordBatch.incrementSequence, written the Java way
    if base_sequence > int32_max - delta:
        expected = delta - (int32_max - base_sequence) - 1
    else:
        expected = base_sequence + delta
    assert read_header(batch).last_sequence == expected
