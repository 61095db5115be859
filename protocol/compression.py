"""Compression codecs of Kafka record batches (gzip, snappy, lz4, zstd), built on cramjam.

A RecordBatch v2 compresses its records section as one unit; the codec id sits in bits 0-2 of the
batch attributes. Each codec here is chosen so Apache Kafka's Java client, librdkafka and
kafka-python can read what we write, and so we can read what they write:

- gzip: a single RFC 1952 member.
- snappy: Kafka frames snappy the way xerial's snappy-java does (a 16-byte header, then blocks
  each prefixed by a big-endian int32 length). Some producers send plain raw snappy instead, and
  Kafka and librdkafka accept that, so reading falls back to raw when the header is absent.
- lz4: the LZ4 *frame* format. Kafka's Java reader decodes every block on its own, so we write
  independent blocks (``block_linked=False``); cramjam's one-shot ``compress`` links them.
- zstd: a standard zstd frame.

Bad compressed input from a peer is an operating error, so every codec failure becomes
``CompressionError`` (a ``ValueError``); ``protocol.records`` turns it into CORRUPT_MESSAGE.
Known gap: output size is not bounded while decompressing (cramjam offers no cap), so a
decompression bomb costs memory before any caller-side limit can see the result.
"""

from __future__ import annotations

import struct

import cramjam

COMPRESSION_NONE = 0
COMPRESSION_GZIP = 1
COMPRESSION_SNAPPY = 2
COMPRESSION_LZ4 = 3
COMPRESSION_ZSTD = 4

COMPRESSION_NAMES = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
COMPRESSION_CODECS = frozenset(COMPRESSION_NAMES.values())

XERIAL_MAGIC = b"\x82SNAPPY\x00"
XERIAL_HEADER = XERIAL_MAGIC + struct.pack(">ii", 1, 1)  # version 1, minimum compatible version 1
XERIAL_BLOCK_BYTES = 32 * 1024
_INT32 = struct.Struct(">i")


class CompressionError(ValueError):
    """Compressed bytes that the codec cannot decode, or a codec id Kafka does not define."""


def compress(codec: int, data: bytes | bytearray | memoryview) -> bytes:
    """Compress a batch's records section with ``codec`` (one of the COMPRESSION_* ids)."""
    if codec == COMPRESSION_NONE:
        return bytes(data)
    if codec == COMPRESSION_GZIP:
        return bytes(cramjam.gzip.compress(data))
    if codec == COMPRESSION_SNAPPY:
        return _xerial_compress(data)
    if codec == COMPRESSION_LZ4:
        compressor = cramjam.lz4.Compressor(block_linked=False)
        compressor.compress(data)
        return bytes(compressor.finish())
    if codec == COMPRESSION_ZSTD:
        return bytes(cramjam.zstd.compress(data))
    raise CompressionError(f"unknown compression codec {codec}; Kafka defines 0..4")


def decompress(codec: int, data: bytes | bytearray | memoryview) -> bytes:
    """Decompress a records section; any failure of the codec raises CompressionError."""
    if codec == COMPRESSION_NONE:
        return bytes(data)
    try:
        if codec == COMPRESSION_GZIP:
            return bytes(cramjam.gzip.decompress(data))
        if codec == COMPRESSION_SNAPPY:
            return _xerial_decompress(memoryview(data))
        if codec == COMPRESSION_LZ4:
            return bytes(cramjam.lz4.decompress(data))
        if codec == COMPRESSION_ZSTD:
            return bytes(cramjam.zstd.decompress(data))
    except (cramjam.DecompressionError, ValueError, OverflowError) as error:
        name = _codec_name(codec)
        raise CompressionError(f"cannot decompress {name} data ({len(data)} bytes): {error}") from error
    raise CompressionError(f"unknown compression codec {codec}; Kafka defines 0..4")


def _codec_name(codec: int) -> str:
    for name, value in COMPRESSION_NAMES.items():
        if value == codec:
            return name
    return f"codec {codec}"


def _xerial_compress(data: bytes | bytearray | memoryview) -> bytes:
    """Write xerial framing with 32 KiB blocks, as snappy-java's SnappyOutputStream does."""
    view = memoryview(data)
    parts = [XERIAL_HEADER]
    for start in range(0, len(view), XERIAL_BLOCK_BYTES):
        block = bytes(cramjam.snappy.compress_raw(view[start : start + XERIAL_BLOCK_BYTES]))
        parts.append(_INT32.pack(len(block)))
        parts.append(block)
    return b"".join(parts)


def _xerial_decompress(view: memoryview) -> bytes:
    """Read xerial framing; fall back to one raw snappy block when the magic is absent."""
    if bytes(view[: len(XERIAL_MAGIC)]) != XERIAL_MAGIC:
        return bytes(cramjam.snappy.decompress_raw(view))
    if len(view) < len(XERIAL_HEADER):
        raise CompressionError(f"xerial snappy header needs {len(XERIAL_HEADER)} bytes, got {len(view)}")
    parts = []
    position = len(XERIAL_HEADER)
    while position < len(view):
        if len(view) - position < 4:
            raise CompressionError(f"xerial snappy block length cut short at byte {position}")
        (block_bytes,) = _INT32.unpack_from(view, position)
        position += 4
        if block_bytes < 0 or block_bytes > len(view) - position:
            raise CompressionError(
                f"xerial snappy block of {block_bytes} bytes at byte {position} "
                f"exceeds the {len(view) - position} bytes left"
            )
        parts.append(bytes(cramjam.snappy.decompress_raw(view[position : position + block_bytes])))
        position += block_bytes
    return b"".join(parts)
