"""How a broker reaches the active controller of a multi-node cluster.

Rules:
- When this node's controller is the active one, calls go straight to it.
- Otherwise a client's admin request (CreateTopics, DeleteTopics, CreatePartitions,
  AlterConfigs, IncrementalAlterConfigs, ElectLeaders, InitProducerId, DescribeQuorum) is
  forwarded as the same bytes to the active controller's controller listener, and its
  answer is relayed back: only the
  correlation id is rewritten. A forwarded request is never forwarded again: a controller
  that lost the leadership meanwhile closes the connection and the forwarder retries.
- Programmatic calls (topic auto-creation, broker registration and heartbeats) are sent
  as Kafka requests built here.
- Every wait is bounded: while no leader is known, or the connection fails, the
  forwarder retries every ``FORWARD_RETRY_S`` until ``FORWARD_DEADLINE_S``, then gives up
  and the client's connection is closed so the client retries on its own. A request
  waiting on a controller moves to the new one as soon as this node learns of it (a paused
  controller holds its connections open and never answers).
"""

from __future__ import annotations

import logging
import struct
from typing import Any, Callable

import trio

from protocol.framing import SIZE_PREFIX, FrameBuffer, RemoteProtocolError

logger = logging.getLogger(__name__)
FORWARDED_API_KEYS = frozenset({19, 20, 37, 33, 43, 44, 22, 55})  # 43 ElectLeaders, 55 DescribeQuorum, as Kafka
FORWARD_DEADLINE_S = 15.0
FORWARD_RETRY_S = 0.05
LEADER_CHECK_S = 0.02
SEND_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError)
RECEIVE_BYTES_MAX = 1 << 20
_CORRELATION = struct.Struct(">i")


class ForwardingFailed(RemoteProtocolError):
    """No active controller could be reached in time; the client's connection closes."""


class FramedConnection:
    """One request at a time on a connection to another node (a controller, or a leader's
    broker listener for the replica fetchers)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.frames = FrameBuffer()
        self.lock = trio.Lock()

    async def round_trip(self, frame: bytes) -> bytes:
        async with self.lock:
            await self.stream.send_all(SIZE_PREFIX.pack(len(frame)) + frame)
            while (answer := self.frames.next_frame()) is None:
                data = await self.stream.receive_some(RECEIVE_BYTES_MAX)
                if not data:
                    raise trio.BrokenResourceError("the peer closed the connection")
                self.frames.receive_data(data)
            return answer


class ControllerChannel:
    def __init__(self, node_id: int, is_active: Callable[[], bool], leader_id: Callable[[], int | None],
                 controller_endpoints: dict[int, tuple[str, int]]) -> None:
        self.node_id = node_id
        self._is_active = is_active
        self._leader_id = leader_id
        self._endpoints = controller_endpoints
        self._connections: dict[int, FramedConnection] = {}
        self._next_correlation = 1 << 30
        self._failed_leader: int | None = None

    def is_active(self) -> bool:
        return self._is_active()

    async def forward(self, frame: bytes) -> bytes | None:
        """Relay one request frame to the active controller; returns the framed answer, or
        None when this node has become the active controller and must answer itself."""
        original = frame[4:8]
        deadline = trio.current_time() + FORWARD_DEADLINE_S
        attempt = 0
        while True:
            leader = self._leader_id()
            if leader is not None and leader != self.node_id and leader in self._endpoints:
                try:
                    answer = await self._send_while_leader(leader, frame)
                    if answer is not None:
                        return SIZE_PREFIX.pack(len(answer)) + original + answer[4:]
                    logger.info("[node %d] controller %d lost the leadership while a request waited on it;"
                                " sending it to the new one", self.node_id, leader)
                    self._drop(leader)
                except SEND_ERRORS as error:
                    # Once per unreachable leader at info; the 50 ms retries after it at debug.
                    level = logging.DEBUG if self._failed_leader == leader else logging.INFO
                    logger.log(level, "[node %d] forwarding to controller %d failed: %s", self.node_id, leader, error)
                    self._failed_leader = leader
                    self._drop(leader)
            elif leader == self.node_id and self.is_active():
                return None  # this node became the active controller meanwhile: answer locally
            attempt += 1
            if trio.current_time() >= deadline:
                raise ForwardingFailed(f"no active controller reachable after {attempt} attempts"
                                       f" in {FORWARD_DEADLINE_S:.0f} s")
            await trio.sleep(FORWARD_RETRY_S)

    async def request(self, body: Any) -> Any:
        """Send a Kafka request built here to the active controller; the decoded answer."""
        from protocol.apis import decode_response, encode_request

        cls = type(body)
        frame = encode_request(0, f"kraft-node-{self.node_id}", body)[4:]
        answer = await self.forward(frame)
        if answer is None:
            raise ForwardingFailed("this node became the active controller; ask it directly")
        return decode_response(cls.__api_key__, cls.__version__, answer[4:])[1]

    async def _send_while_leader(self, leader: int, frame: bytes) -> bytes | None:
        """The answer of ``leader``, or None as soon as another leader is known: a controller
        that was paused or partitioned away may never answer, and the request must move on
        (as Kafka's channel disconnects from a controller that is no longer active)."""
        answer: list[bytes] = []
        failure: list[BaseException] = []
        async with trio.open_nursery() as nursery:
            async def send() -> None:
                try:
                    answer.append(await self._send(leader, frame))
                except SEND_ERRORS as error:
                    failure.append(error)  # raised below, outside the nursery's exception group
                nursery.cancel_scope.cancel()

            nursery.start_soon(send)
            while self._leader_id() in (leader, None):
                await trio.sleep(LEADER_CHECK_S)
            nursery.cancel_scope.cancel()
        if failure:
            raise failure[0]
        return answer[0] if answer else None

    async def _send(self, leader: int, frame: bytes) -> bytes:
        connection = self._connections.get(leader)
        if connection is None:
            host, port = self._endpoints[leader]
            with trio.fail_after(5):
                stream = await trio.open_tcp_stream(host, port)
            connection = self._connections[leader] = FramedConnection(stream)
        self._next_correlation += 1
        relayed = frame[:4] + _CORRELATION.pack(self._next_correlation) + frame[8:]
        with trio.fail_after(30):
            return await connection.round_trip(relayed)

    def _drop(self, leader: int) -> None:
        connection = self._connections.pop(leader, None)
        if connection is not None:
            connection.stream.socket.close()
