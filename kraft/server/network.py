"""Listeners: trio sockets in front of the sans-I/O frame buffer and the dispatcher.

Rules:
- One task per connection; requests on a connection are answered in order, because
  each is handled to completion before the next (Kafka clients pipeline and rely on
  that order).
- Every complete frame in the buffer is handled per wake-up and the responses go out
  in one ``send_all`` (the performance notes measured this as the pattern that makes
  trio keep up), except that answers already made are sent before a request that may
  wait (Fetch, Produce, JoinGroup, SyncGroup), so they are not held back by it.
- Bad bytes never kill the node: a frame over ``socket.request.max.bytes`` or a request
  that cannot be decoded closes that connection only, with a log line naming the peer.
- A listener on port 0 binds a free port; the real port is logged as
  ``listener NAME bound to HOST:PORT`` and kept in ``bound``, so tests never race. A host that
  resolves to several addresses (``:9092`` is IPv4 and IPv6) binds the same port on each.
- Binding and accepting are two steps, as Kafka's SocketServer enables request processing only
  once the broker can serve: the socket is bound at start (so the node knows its port and can
  register it) but listens only after ``open()``. Until then a client's connect is refused, as
  if nothing were there, and its retry finds a broker that is registered and caught up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Awaitable, Callable

import trio

from protocol.apis import Request
from protocol.framing import FrameBuffer, RemoteProtocolError

logger = logging.getLogger(__name__)
RECEIVE_BYTES_MAX = 1 << 20
CONNECTIONS_MAX = 10_000
LISTEN_BACKLOG = 1024
# Requests whose handler may wait (Fetch until min.bytes; Produce with acks=all once
# replication arrives; JoinGroup and SyncGroup until the rebalance step), as big-endian
# api keys: the first two bytes of a request frame.
MAY_WAIT_API_KEYS = frozenset({b"\x00\x00", b"\x00\x01", b"\x00\x0b", b"\x00\x0e"})

# A dispatcher turns one request frame into response bytes (or b"" for none); it
# raises RemoteProtocolError when the connection must be closed.
Dispatch = Callable[[bytes, "ConnectionInfo"], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    listener: str
    peer: str


@dataclass(frozen=True, slots=True)
class BoundListener:
    name: str
    host: str
    port: int


class Listener:
    def __init__(self, node_id: int, name: str, host: str, port: int, dispatch: Dispatch,
                 frame_bytes_max: int, *, accept_at_once: bool = True) -> None:
        """``accept_at_once=False``: bind at ``run`` but accept only after ``open()``."""
        self.node_id = node_id
        self.name = name
        self.host = host
        self.port = port
        self._dispatch = dispatch
        self._frame_bytes_max = frame_bytes_max
        self._connections = 0
        self._open = trio.Event()
        self._accepting = trio.Event()
        if accept_at_once:
            self._open.set()
        self.bound: BoundListener | None = None

    def open(self) -> None:
        """Start accepting connections (at once if ``run`` has bound already, else when it has)."""
        self._open.set()

    async def wait_accepting(self) -> None:
        """Until the sockets listen: a client that connects from then on is accepted."""
        await self._accepting.wait()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        sockets = await self._bind()
        try:
            sockname = sockets[0].getsockname()
            self.bound = BoundListener(self.name, sockname[0], sockname[1])
            logger.info("[node %d] listener %s bound to %s:%d", self.node_id, self.name,
                        sockname[0], sockname[1])
            task_status.started(self.bound)
            await self._open.wait()
            for sock in sockets:
                sock.listen(LISTEN_BACKLOG)
            self._accepting.set()
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        logger.info("[node %d] listener %s accepting connections on %s:%d", self.node_id, self.name,
                    self.bound.host, self.bound.port)
        async with trio.open_nursery() as nursery:
            for sock in sockets:
                nursery.start_soon(self._accept_loop, trio.SocketListener(sock), nursery)

    async def _bind(self) -> list[trio.socket.SocketType]:
        """One bound, not yet listening, socket per address of the host; port 0 picks a free
        port on the first and the others take the same one."""
        addresses = await trio.socket.getaddrinfo(self.host or None, self.port, type=trio.socket.SOCK_STREAM,
                                                  flags=trio.socket.AI_PASSIVE)
        sockets: list[trio.socket.SocketType] = []
        port = self.port
        try:
            for family, kind, proto, _, address in addresses:
                sock = trio.socket.socket(family, kind, proto)
                sockets.append(sock)
                sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
                if family == trio.socket.AF_INET6:
                    sock.setsockopt(trio.socket.IPPROTO_IPV6, trio.socket.IPV6_V6ONLY, 1)
                await sock.bind((address[0], port, *address[2:]))
                port = sock.getsockname()[1]
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        return sockets

    async def _accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        async with listener:
            while True:
                stream = await listener.accept()
                if self._connections >= CONNECTIONS_MAX:
                    logger.warning("[node %d] %s: too many connections, refusing one",
                                   self.node_id, self.name)
                    await stream.aclose()
                    continue
                nursery.start_soon(self._serve, stream)

    async def _serve(self, stream: trio.SocketStream) -> None:
        try:
            peer = "%s:%d" % stream.socket.getpeername()[:2]
        except OSError:
            peer = "unknown"
        info = ConnectionInfo(self.name, peer)
        frames = FrameBuffer(self._frame_bytes_max)
        self._connections += 1
        try:
            async with stream:
                await self._serve_frames(stream, frames, info)
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
            pass
        except RemoteProtocolError as error:
            logger.warning("[node %d] closing connection from %s on %s: %s",
                           self.node_id, peer, self.name, error)
        finally:
            self._connections -= 1

    async def _serve_frames(self, stream: trio.SocketStream, frames: FrameBuffer,
                            info: ConnectionInfo) -> None:
        while True:
            data = await stream.receive_some(RECEIVE_BYTES_MAX)
            if not data:
                return
            frames.receive_data(data)
            responses: list[bytes] = []
            while (frame := frames.next_frame()) is not None:
                if responses and frame[:2] in MAY_WAIT_API_KEYS:
                    # Answers already made go out before a request that may park.
                    await stream.send_all(b"".join(responses))
                    responses = []
                response = await self._dispatch(frame, info)
                if response:
                    responses.append(response)
            if responses:
                await stream.send_all(b"".join(responses))


__all__ = ["BoundListener", "ConnectionInfo", "Listener", "Request"]
