"""The KRaft RPCs between controllers over TCP: the driver's ``Transport`` on real sockets.

Rules:
- Outbound, ``send`` never blocks. A request goes to a bounded queue for its destination
  (the oldest waiting request is dropped when the queue is full: the core has retried it
  by then); a response goes to the inbound request waiting for it, found by (peer,
  correlation id); anything else is dropped. Every drop is counted and logged at debug.
- Each peer has two lanes, each its own connection and task: Fetch and FetchSnapshot,
  which the leader may park for ``fetch_max_wait_ms``, and the quorum RPCs (Vote,
  BeginQuorumEpoch, EndQuorumEpoch), so a parked Fetch never delays a vote. A lane sends
  one request at a time and hands the decoded answer to ``driver.deliver``.
- The wire carries the core's own correlation ids (unique per sender, over both lanes), so
  the receiving side can key waiting requests by (source, correlation id).
- A lane connects when it has something to send. A failed connect, a lost connection or
  a request unanswered within ``request_timeout_ms`` (plus a grace) closes the connection
  and drops that request: the core's own timers retry, as on a lossy network. Reconnects
  back off exponentially from ``RECONNECT_BACKOFF_MIN_MS`` to ``RECONNECT_BACKOFF_MAX_MS``;
  the first failure after a success is a warning naming both nodes, repeats are debug.
  A request that waited in the queue longer than ``request_timeout_ms`` is not sent.
- Inbound, ``handle_frame`` decodes a request, delivers it and waits, at most
  ``request_timeout_ms``, for the core's answer. A request the core must not see
  (``WireError``) is answered with the Kafka error at once; a timeout, a request the
  driver's inbox dropped, a full table of waiting requests or a (source, correlation id)
  already waiting is answered with REQUEST_TIMED_OUT, which our peers treat as a lost
  message. (The core answers every request it steps except a parked Fetch it forgets on
  a role change or on a newer Fetch from the same replica: those wait for the timeout.) Bytes that do not decode
  raise ``RemoteProtocolError`` and the listener closes that connection only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio
from kio.schema.errors import ErrorCode
from kio.serial.errors import SerialError

from protocol import apis
from protocol.client import Connection, KafkaClientError

from .messages import FetchRequest, FetchSnapshotRequest, Message
from .wire import RAFT_API_RANGES, RESPONSE_OF, RaftWire, WireError

if TYPE_CHECKING:
    from .driver import RaftDriver

logger = logging.getLogger(__name__)

RAFT_API_KEYS = frozenset(RAFT_API_RANGES)  # what a controller listener hands to handle_frame
OUTBOUND_QUEUE_MAX = 64           # requests waiting per lane (per peer and kind)
INBOUND_WAITING_MAX = 256         # inbound requests waiting for the core's answer
RECONNECT_BACKOFF_MIN_MS = 20
RECONNECT_BACKOFF_MAX_MS = 400
RESPONSE_GRACE_MS = 500           # beyond request_timeout_ms, before a lane gives up on an answer
FETCH_LANE, QUORUM_LANE = "fetch", "quorum"
# What kio raises on response bytes that do not fit the schema (as protocol.apis).
_DECODE_ERRORS = (SerialError, ValueError, TypeError, OverflowError, UnicodeDecodeError, KeyError)


def lane_of(message: Message) -> str:
    return FETCH_LANE if isinstance(message.body, (FetchRequest, FetchSnapshotRequest)) else QUORUM_LANE


@dataclass(slots=True)
class _Lane:
    """One peer's requests of one kind: a bounded queue and, while it works, a connection."""

    peer_id: int
    kind: str
    host: str
    port: int
    queue_max: int
    send_channel: trio.MemorySendChannel = field(init=False)
    receive_channel: trio.MemoryReceiveChannel = field(init=False)
    connection: Connection | None = None
    failures: int = 0

    def __post_init__(self) -> None:
        self.send_channel, self.receive_channel = trio.open_memory_channel(self.queue_max)

    def put(self, message: Message, now_s: float) -> Message | None:
        """Queue ``message``; returns the request dropped to make room, if any."""
        dropped = None
        try:
            self.send_channel.send_nowait((now_s, message))
        except trio.WouldBlock:
            _, dropped = self.receive_channel.receive_nowait()
            self.send_channel.send_nowait((now_s, message))
        return dropped


@dataclass(slots=True)
class _Waiting:
    request: Message
    done: trio.Event = field(default_factory=trio.Event)
    response: Message | None = None


class RaftNetwork:
    """The transport of one controller: ``attach(driver)``, run ``run`` in a nursery, give
    the controller listener's Raft frames to ``handle_frame``."""

    def __init__(self, local_id: int, endpoints: Mapping[int, tuple[str, int]], wire: RaftWire, *,
                 request_timeout_ms: int = 2000, queue_max: int = OUTBOUND_QUEUE_MAX,
                 waiting_max: int = INBOUND_WAITING_MAX) -> None:
        assert wire.local_id == local_id, (wire.local_id, local_id)
        assert request_timeout_ms > 0 and queue_max > 0 and waiting_max > 0
        self.local_id = local_id
        self.endpoints = dict(endpoints)
        self.request_timeout_ms = request_timeout_ms
        self._wire = wire
        self._waiting_max = waiting_max
        self._lanes = {
            (peer_id, kind): _Lane(peer_id, kind, host, port, queue_max)
            for peer_id, (host, port) in sorted(self.endpoints.items()) if peer_id != local_id
            for kind in (FETCH_LANE, QUORUM_LANE)
        }
        self._waiting: dict[tuple[int, int], _Waiting] = {}
        self._driver: RaftDriver | None = None
        self.dropped_requests = 0
        self.dropped_responses = 0

    def attach(self, driver: RaftDriver) -> None:
        assert driver.local_id == self.local_id, (driver.local_id, self.local_id)
        self._driver = driver

    # ----- outbound ---------------------------------------------------------------------

    def send(self, message: Message) -> None:
        """The driver's Transport: queue a request, or answer a waiting inbound request."""
        assert message.source == self.local_id, message
        if not message.is_request:
            self._answer(message)
            return
        lane = self._lanes.get((message.destination, lane_of(message)))
        if lane is None:
            self._drop_request(message, "no endpoint for that node")
            return
        dropped = lane.put(message, trio.current_time())
        if dropped is not None:
            self._drop_request(dropped, f"the {lane.kind} queue is full ({lane.queue_max})")

    def _drop_request(self, message: Message, why: str) -> None:
        self.dropped_requests += 1
        logger.debug("[node %d] raft: dropping %s to node %d: %s", self.local_id,
                     type(message.body).__name__, message.destination, why)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """One task per lane; returns only when cancelled, closing its connections."""
        assert self._driver is not None, "attach(driver) before run"
        async with trio.open_nursery() as nursery:
            for lane in self._lanes.values():
                nursery.start_soon(self._run_lane, lane)
            task_status.started()

    async def _run_lane(self, lane: _Lane) -> None:
        backoff_ms = RECONNECT_BACKOFF_MIN_MS
        try:
            async for enqueued_s, request in lane.receive_channel:
                if (trio.current_time() - enqueued_s) * 1000 > self.request_timeout_ms:
                    self._drop_request(request, "it waited longer than the request timeout")
                    continue
                error = await self._exchange(lane, request)
                if error is None:
                    backoff_ms = RECONNECT_BACKOFF_MIN_MS
                    continue
                self._drop_request(request, error)
                await self._close(lane)
                self._log_failure(lane, error, backoff_ms)
                await trio.sleep(backoff_ms / 1000)
                backoff_ms = min(2 * backoff_ms, RECONNECT_BACKOFF_MAX_MS)
        finally:
            await self._close(lane)

    async def _exchange(self, lane: _Lane, request: Message) -> str | None:
        """Send ``request`` and deliver its answer; returns why the lane failed, or None."""
        deadline_s = trio.current_time() + (self.request_timeout_ms + RESPONSE_GRACE_MS) / 1000
        with trio.move_on_at(deadline_s):
            try:
                if lane.connection is None:
                    lane.connection = await Connection.open(lane.host, lane.port, f"raft-client-{self.local_id}")
                    if lane.failures:
                        logger.info("[node %d] raft: connected to node %d (%s) at %s:%d after %d failures",
                                    self.local_id, lane.peer_id, lane.kind, lane.host, lane.port, lane.failures)
                frame = await lane.connection.request_frame(self._wire.encode_request(request))
            except KafkaClientError as error:
                return str(error)
            except _DECODE_ERRORS as error:  # the peer's ApiVersions answer
                return f"cannot decode the peer's ApiVersions answer: {error!r}"
            lane.failures = 0
            self._deliver_response(frame, request)
            return None
        return f"no answer within {self.request_timeout_ms + RESPONSE_GRACE_MS} ms"

    def _deliver_response(self, frame: bytes, request: Message) -> None:
        try:
            response = self._wire.decode_response(frame, request)
        except (WireError, *_DECODE_ERRORS) as error:
            # REQUEST_TIMED_OUT lands here too: to the core it is a lost message.
            self.dropped_responses += 1
            logger.debug("[node %d] raft: dropping the answer of node %d to %s: %s", self.local_id,
                         request.destination, type(request.body).__name__, error)
            return
        self._driver.deliver(response)

    async def _close(self, lane: _Lane) -> None:
        connection, lane.connection = lane.connection, None
        if connection is not None:
            await trio.aclose_forcefully(connection)

    def _log_failure(self, lane: _Lane, error: str, backoff_ms: int) -> None:
        lane.failures += 1
        log = logger.warning if lane.failures == 1 else logger.debug
        log("[node %d] raft: node %d (%s) at %s:%d: %s; retrying in %d ms (failure %d)",
            self.local_id, lane.peer_id, lane.kind, lane.host, lane.port, error, backoff_ms, lane.failures)

    # ----- inbound ----------------------------------------------------------------------

    async def handle_frame(self, frame: bytes) -> bytes:
        """Answer one Raft request frame (without its size prefix) from a peer. Raises
        RemoteProtocolError (UnsupportedRequest, MalformedRequest) for bytes that do not
        decode: the listener then closes that connection."""
        api_key, api_version, correlation_id = apis.peek_header(frame)
        if api_key not in RAFT_API_KEYS:
            raise apis.UnsupportedRequest(api_key, api_version, correlation_id)
        try:
            request = self._wire.decode_request(frame)
        except WireError as error:
            logger.debug("[node %d] raft: refusing API %d: %s", self.local_id, api_key, error)
            return self._wire.error_response(api_key, correlation_id, error.error_code)
        response = await self._wait_for_answer(request)
        if response is None:
            return self._wire.error_response(api_key, correlation_id, ErrorCode.request_timed_out)
        return self._wire.encode_response(response)

    async def _wait_for_answer(self, request: Message) -> Message | None:
        key = (request.source, request.correlation_id)
        if self._driver is None or key in self._waiting or len(self._waiting) >= self._waiting_max:
            why = ("no driver attached" if self._driver is None else "already waiting"
                   if key in self._waiting else f"{self._waiting_max} requests already waiting")
            logger.debug("[node %d] raft: not delivering %s from node %d (correlation id %d): %s",
                         self.local_id, type(request.body).__name__, request.source,
                         request.correlation_id, why)
            return None
        waiting = self._waiting[key] = _Waiting(request)
        try:
            dropped_before = self._driver.dropped_messages
            self._driver.deliver(request)
            if self._driver.dropped_messages != dropped_before:  # inbox full, or the driver stopped
                return None
            with trio.move_on_after(self.request_timeout_ms / 1000):
                await waiting.done.wait()
        finally:
            del self._waiting[key]
        return waiting.response

    def _answer(self, response: Message) -> None:
        waiting = self._waiting.get((response.destination, response.correlation_id))
        if waiting is None or RESPONSE_OF[type(waiting.request.body)] is not type(response.body):
            self.dropped_responses += 1
            logger.debug("[node %d] raft: no request of node %d waits for %s (correlation id %d)",
                         self.local_id, response.destination, type(response.body).__name__,
                         response.correlation_id)
            return
        waiting.response = response
        waiting.done.set()


__all__ = ["RAFT_API_KEYS", "RaftNetwork", "lane_of"]
