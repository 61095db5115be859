"""Kafka's default partitioning, so keyed records land where a Java producer would put them.

A keyed record goes to ``toPositive(murmur2(key)) % partitions``; murmur2 is Kafka's variant of
MurmurHash2 (seed 0x9747b28c) computed in 32-bit two's complement arithmetic. Records without a
key stick to one partition until its batch is closed and then move on, the idea of Kafka's
"sticky" built-in partitioner (KIP-480/KIP-794) without its load-based weighting.
"""

from __future__ import annotations

import random

MURMUR2_SEED = 0x9747B28C
MURMUR2_MULTIPLIER = 0x5BD1E995
MURMUR2_SHIFT = 24
_MASK32 = 0xFFFFFFFF


def _to_int32(value: int) -> int:
    value &= _MASK32
    return value - (1 << 32) if value & 0x80000000 else value


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2``: a signed 32-bit hash of ``data``."""
    length = len(data)
    h = (MURMUR2_SEED ^ length) & _MASK32
    whole_words = length // 4
    for index in range(whole_words):
        k = int.from_bytes(data[index * 4 : index * 4 + 4], "little")
        k = (k * MURMUR2_MULTIPLIER) & _MASK32
        k ^= k >> MURMUR2_SHIFT
        k = (k * MURMUR2_MULTIPLIER) & _MASK32
        h = (h * MURMUR2_MULTIPLIER) & _MASK32
        h ^= k
    tail = data[whole_words * 4 :]
    if tail:
        # The tail bytes are folded in as in the Java switch fall-through: byte 2, 1, then 0.
        for position in range(len(tail) - 1, -1, -1):
            h ^= tail[position] << (8 * position)
        h = (h * MURMUR2_MULTIPLIER) & _MASK32
    h ^= h >> 13
    h = (h * MURMUR2_MULTIPLIER) & _MASK32
    h ^= h >> 15
    return _to_int32(h)


def to_positive(number: int) -> int:
    """Kafka's ``Utils.toPositive``: clear the sign bit (not ``abs``, which overflows)."""
    return number & 0x7FFFFFFF


def partition_for_key(key: bytes, partition_count: int) -> int:
    assert partition_count > 0, "a topic has at least one partition"
    return to_positive(murmur2(key)) % partition_count


class StickyPartitioner:
    """Chooses partitions for unkeyed records: the same one until ``batch_closed`` is called."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._current: int | None = None

    def partition(self, partition_count: int) -> int:
        if self._current is None or self._current >= partition_count:
            self._current = self._rng.randrange(partition_count)
        return self._current

    def batch_closed(self, partition: int, partition_count: int) -> None:
        """Move on to another partition once the sticky one has a full batch."""
        if partition != self._current or partition_count < 2:
            return
        choice = self._rng.randrange(partition_count - 1)
        self._current = choice if choice < partition else choice + 1
