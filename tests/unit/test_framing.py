"""FrameBuffer: size-prefixed frames come out whole and in order however the bytes are cut,
and sizes that break the protocol or the limit are refused before anything is buffered."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.framing import (
    DEFAULT_FRAME_BYTES_MAX, SIZE_PREFIX, FrameBuffer, FrameTooLarge, RemoteProtocolError, frame,
)

payloads = st.lists(st.binary(max_size=300), max_size=8)


def test_frame_prefixes_the_size_big_endian():
    assert frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert frame(b"") == b"\x00\x00\x00\x00"
    assert frame(bytearray(b"\x01" * 258))[:4] == b"\x00\x00\x01\x02"


def test_needs_data_until_the_whole_frame_is_there():
    buffer = FrameBuffer()
    wire = frame(b"hello")
    for cut in range(len(wire)):
        buffer.receive_data(wire[cut : cut + 1])
        expected = b"hello" if cut == len(wire) - 1 else None
        got = buffer.next_frame()
        assert got == expected, f"after {cut + 1} of {len(wire)} bytes: expected {expected!r}, got {got!r}"
    assert buffer.buffered_bytes == 0


def test_empty_frame_is_a_frame():
    buffer = FrameBuffer()
    buffer.receive_data(frame(b"") + frame(b"x"))
    assert buffer.frames() == [b"", b"x"]


@settings(max_examples=200, deadline=None)
@given(payloads, st.data())
def test_frames_survive_any_chunking(items, data):
    """Property: the frames out equal the frames in, for every way a socket may split the bytes."""
    wire = b"".join(frame(item) for item in items)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=12)))
    buffer = FrameBuffer()
    received = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)]):
        buffer.receive_data(wire[start:end])
        received.extend(buffer.frames())
    assert received == items, f"expected {items!r}, got {received!r} (cuts {cuts})"
    assert buffer.buffered_bytes == 0


def test_negative_size_is_the_peers_fault():
    buffer = FrameBuffer()
    buffer.receive_data(SIZE_PREFIX.pack(-1) + b"junk")
    with pytest.raises(RemoteProtocolError, match="negative frame size -1"):
        buffer.next_frame()


def test_oversized_frame_is_refused_from_its_prefix_alone():
    buffer = FrameBuffer(frame_bytes_max=1024)
    buffer.receive_data(SIZE_PREFIX.pack(1025))
    with pytest.raises(FrameTooLarge) as raised:
        buffer.next_frame()
    assert (raised.value.size_bytes, raised.value.frame_bytes_max) == (1025, 1024)
    assert "socket.request.max.bytes" in str(raised.value)
    assert isinstance(raised.value, RemoteProtocolError)


def test_frame_at_the_limit_is_accepted():
    buffer = FrameBuffer(frame_bytes_max=16)
    buffer.receive_data(frame(b"x" * 16))
    assert buffer.next_frame() == b"x" * 16


def test_default_limit_is_kafkas_socket_request_max_bytes():
    assert DEFAULT_FRAME_BYTES_MAX == 104857600
    buffer = FrameBuffer()
    buffer.receive_data(struct.pack(">i", 2**31 - 1))
    with pytest.raises(FrameTooLarge):
        buffer.next_frame()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_give_frames_or_need_data_or_a_protocol_error(data):
    """Property: garbage never raises anything but RemoteProtocolError, and never hangs."""
    buffer = FrameBuffer(frame_bytes_max=64)
    buffer.receive_data(data)
    try:
        frames = buffer.frames()
    except RemoteProtocolError:
        return
    assert sum(len(item) + 4 for item in frames) + buffer.buffered_bytes == len(data)
