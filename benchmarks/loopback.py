"""Raw loopback-socket baselines: what this machine moves between two processes with no broker.

A sink process (a separate process, as the broker is) listens on 127.0.0.1:0 and serves one
connection per measurement with blocking sockets and `recv_into` a preallocated buffer, the
fastest read path measured in reference/performance.md section 4.2. Three shapes:

  ingest   client sendall()s 1 MiB chunks, the sink reads and discards, then answers one 8-byte
           count, so the clock stops only when every byte has arrived (as a flush would).
  request  client sends 1 MiB frames with a 4-byte size prefix, one at a time, and waits for a
           tiny (8-byte) response to each: the shape of an acks=all produce at depth one.
  egress   the sink sendall()s 1 MiB chunks and the client reads them: the shape of a fetch.

Every shape moves the same payload bytes (values only, no Kafka framing), cycled from a pool of
random bytes, so compression or caching cannot flatter it.
"""

from __future__ import annotations

import multiprocessing
import socket
import statistics
import struct
import time
from dataclasses import dataclass

CHUNK_BYTES = 1024 * 1024
COUNT = struct.Struct(">q")
FRAME_SIZE = struct.Struct(">i")
ACCEPT_TIMEOUT_S = 30.0
SHAPES = ("ingest", "request", "egress")


@dataclass(frozen=True, slots=True)
class BaselineResult:
    shape: str
    total_bytes: int
    elapsed_s: list[float]

    @property
    def median_s(self) -> float:
        return statistics.median(self.elapsed_s)

    @property
    def megabytes_per_s(self) -> float:
        return self.total_bytes / self.median_s / 1e6


def _receive_exactly(sock: socket.socket, view: memoryview) -> None:
    received = 0
    while received < len(view):
        count = sock.recv_into(view[received:])
        if count == 0:
            raise ConnectionError(f"peer closed after {received} of {len(view)} bytes")
        received += count


def _chunks(pool: bytes, total_bytes: int):
    """1 MiB memoryview slices cycling through `pool` until `total_bytes` have been yielded."""
    view = memoryview(pool)
    sent = 0
    offset = 0
    while sent < total_bytes:
        size = min(CHUNK_BYTES, total_bytes - sent, len(pool) - offset)
        yield view[offset:offset + size]
        sent += size
        offset = (offset + size) % len(pool)


def _serve_one(connection: socket.socket, shape: str, total_bytes: int, pool: bytes) -> None:
    buffer = bytearray(CHUNK_BYTES + FRAME_SIZE.size)
    view = memoryview(buffer)
    if shape == "ingest":
        received = 0
        while received < total_bytes:
            count = connection.recv_into(view)
            if count == 0:
                break
            received += count
        connection.sendall(COUNT.pack(received))
    elif shape == "request":
        header = view[:FRAME_SIZE.size]
        while True:
            try:
                _receive_exactly(connection, header)
            except ConnectionError:
                return
            (size,) = FRAME_SIZE.unpack(header)
            assert 0 < size <= CHUNK_BYTES, f"frame size {size} outside 1..{CHUNK_BYTES}"
            _receive_exactly(connection, view[FRAME_SIZE.size:FRAME_SIZE.size + size])
            connection.sendall(COUNT.pack(size))
    elif shape == "egress":
        for chunk in _chunks(pool, total_bytes):
            connection.sendall(chunk)
    else:
        raise AssertionError(f"unknown shape {shape!r}")


def _sink_main(pipe, pool: bytes, plan: list[tuple[str, int]]) -> None:
    """The sink process: one accepted connection per (shape, total_bytes) in `plan`."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(ACCEPT_TIMEOUT_S)
        pipe.send(listener.getsockname()[1])
        for shape, total_bytes in plan:
            connection, _ = listener.accept()
            connection.settimeout(None)
            with connection:
                _serve_one(connection, shape, total_bytes, pool)


def _run_client(port: int, shape: str, total_bytes: int, pool: bytes) -> float:
    """One transfer; returns seconds from connect to the last byte acknowledged or received."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.perf_counter()
        if shape == "ingest":
            for chunk in _chunks(pool, total_bytes):
                sock.sendall(chunk)
            answer = bytearray(COUNT.size)
            _receive_exactly(sock, memoryview(answer))
            assert COUNT.unpack(answer)[0] == total_bytes, f"sink counted {COUNT.unpack(answer)[0]}, sent {total_bytes}"
        elif shape == "request":
            answer = memoryview(bytearray(COUNT.size))
            for chunk in _chunks(pool, total_bytes):
                sock.sendall(FRAME_SIZE.pack(len(chunk)))
                sock.sendall(chunk)
                _receive_exactly(sock, answer)
        else:
            buffer = memoryview(bytearray(CHUNK_BYTES))
            received = 0
            while received < total_bytes:
                count = sock.recv_into(buffer)
                if count == 0:
                    raise ConnectionError(f"sink closed after {received} of {total_bytes} bytes")
                received += count
        return time.perf_counter() - started


def measure(pool: bytes, total_bytes: int, repeats: int) -> dict[str, BaselineResult]:
    """Runs every shape `repeats` times against a fresh sink process; the median is the figure."""
    plan = [(shape, total_bytes) for shape in SHAPES for _ in range(repeats)]
    context = multiprocessing.get_context("spawn")
    parent_pipe, child_pipe = context.Pipe()
    sink = context.Process(target=_sink_main, args=(child_pipe, pool, plan), daemon=True)
    sink.start()
    try:
        if not parent_pipe.poll(ACCEPT_TIMEOUT_S):
            raise RuntimeError(f"loopback sink did not report its port within {ACCEPT_TIMEOUT_S} s")
        port = parent_pipe.recv()
        elapsed: dict[str, list[float]] = {shape: [] for shape in SHAPES}
        for shape, size in plan:
            elapsed[shape].append(_run_client(port, shape, size, pool))
    finally:
        sink.join(timeout=ACCEPT_TIMEOUT_S)
        if sink.is_alive():
            sink.kill()
            sink.join()
    return {shape: BaselineResult(shape, total_bytes, times) for shape, times in elapsed.items()}
