"""Size-prefixed Kafka frames, sans-I/O.

Rules: every Kafka message on the wire is an int32 big-endian size followed by that
many bytes. The buffer takes whatever bytes a socket produced (``receive_data``) and
hands back every complete frame (``next_frame``), or ``None`` when more bytes are
needed. It never touches a socket, so the same code serves the broker, the client and
the fuzz tests.

A frame larger than ``frame_bytes_max`` is the peer's fault (Kafka's
``socket.request.max.bytes``): ``FrameTooLarge`` is raised before any of it is
buffered, and the connection is closed by its owner.
"""

from __future__ import annotations

import struct

SIZE_PREFIX = struct.Struct(">i")
DEFAULT_FRAME_BYTES_MAX = 100 * 1024 * 1024


class RemoteProtocolError(Exception):
    """The peer sent bytes that break the Kafka protocol; close its connection."""


class FrameTooLarge(RemoteProtocolError):
    def __init__(self, size_bytes: int, frame_bytes_max: int) -> None:
        super().__init__(
            f"frame of {size_bytes} bytes exceeds the limit of {frame_bytes_max} bytes"
            " (socket.request.max.bytes)"
        )
        self.size_bytes = size_bytes
        self.frame_bytes_max = frame_bytes_max


class FrameBuffer:
    """Accumulates received bytes and splits them into frames."""

    __slots__ = ("_buffer", "_position", "frame_bytes_max")

    def __init__(self, frame_bytes_max: int = DEFAULT_FRAME_BYTES_MAX) -> None:
        self._buffer = bytearray()
        self._position = 0
        self.frame_bytes_max = frame_bytes_max

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        if self._position:
            # Drop consumed bytes only when new data arrives, so ``next_frame`` in a
            # loop never moves memory more than once per receive.
            del self._buffer[: self._position]
            self._position = 0
        self._buffer += data

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer) - self._position

    def next_frame(self) -> bytes | None:
        """Return the next complete frame's payload (without its size), or None."""
        available = len(self._buffer) - self._position
        if available < SIZE_PREFIX.size:
            return None
        (size_bytes,) = SIZE_PREFIX.unpack_from(self._buffer, self._position)
        if size_bytes < 0:
            raise RemoteProtocolError(f"negative frame size {size_bytes}")
        if size_bytes > self.frame_bytes_max:
            raise FrameTooLarge(size_bytes, self.frame_bytes_max)
        if available < SIZE_PREFIX.size + size_bytes:
            return None
        start = self._position + SIZE_PREFIX.size
        with memoryview(self._buffer) as view:
            frame = bytes(view[start : start + size_bytes])  # the one copy a frame costs
        self._position = start + size_bytes
        return frame

    def frames(self) -> list[bytes]:
        """Every complete frame currently buffered, in order."""
        result = []
        while (frame := self.next_frame()) is not None:
            result.append(frame)
        return result


def frame(payload: bytes | bytearray) -> bytes:
    """Prefix ``payload`` with its size."""
    return SIZE_PREFIX.pack(len(payload)) + payload
