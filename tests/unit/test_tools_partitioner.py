"""Kafka's default partitioner: murmur2 against kafka-python's implementation and Java's vectors."""

from __future__ import annotations

import random

import pytest
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from tools.partitioner import StickyPartitioner, murmur2, partition_for_key, to_positive

# Expected values from Apache Kafka's UtilsTest.testMurmur2 (signed 32-bit results).
JAVA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize("data, expected", sorted(JAVA_VECTORS.items()))
def test_murmur2_matches_java_vectors(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected, f"murmur2({data!r}): expected {expected}, got {murmur2(data)}"


def test_murmur2_matches_kafka_python_for_every_tail_length() -> None:
    rng = random.Random(1234)
    for length in range(0, 70):
        for _ in range(20):
            data = bytes(rng.randrange(256) for _ in range(length))
            ours, oracle = murmur2(data), kafka_python_murmur2(data)
            # kafka-python returns the same 32 bits as an unsigned number.
            assert ours & 0xFFFFFFFF == oracle & 0xFFFFFFFF, f"{data!r}: ours {ours}, kafka-python {oracle}"
            assert -(2**31) <= ours < 2**31


def test_partition_for_key_uses_to_positive_not_abs() -> None:
    assert to_positive(-1) == 2**31 - 1
    assert to_positive(-(2**31)) == 0
    for key in (b"21", b"foobar", b"key17"):
        assert partition_for_key(key, 7) == (murmur2(key) & 0x7FFFFFFF) % 7


def test_sticky_partitioner_keeps_a_partition_until_its_batch_closes() -> None:
    sticky = StickyPartitioner(random.Random(7))
    first = sticky.partition(5)
    assert all(sticky.partition(5) == first for _ in range(10))
    sticky.batch_closed(first, 5)
    second = sticky.partition(5)
    assert second != first and 0 <= second < 5
    single = StickyPartitioner(random.Random(7))
    assert single.partition(1) == 0
    single.batch_closed(0, 1)
    assert single.partition(1) == 0
