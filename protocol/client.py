"""A small trio Kafka client shared by kraft's tools and tests.

It speaks to one broker per ``Connection``: requests are framed by ``apis``, sent in
order, and matched to responses by correlation id (Kafka answers in order on one
connection). ``Client`` adds bootstrap, the broker's ApiVersions and a metadata view,
which is all the command-line tools need. Deadlines are the caller's cancel scopes.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Any

import trio

from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic

from .apis import API_VERSIONS_KEY, decode_response, encode_request
from .framing import FrameBuffer

logger = logging.getLogger(__name__)
RECEIVE_BYTES_MAX = 1 << 20
CLIENT_SOFTWARE_NAME = "kraft-tools"
CLIENT_SOFTWARE_VERSION = "0.1.0"


class KafkaClientError(Exception):
    """A broker could not be reached or answered something unusable."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    node_id: int
    host: str
    port: int


def parse_bootstrap(servers: str) -> list[tuple[str, int]]:
    """``host:port[,host:port...]`` as (host, port) pairs, with a clear error."""
    result = []
    for item in servers.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not port.isdigit():
            raise KafkaClientError(f"invalid bootstrap server {item!r}: expected host:port")
        result.append((host.strip("[]") or "localhost", int(port)))
    if not result:
        raise KafkaClientError("no bootstrap server given")
    return result


class Connection:
    """One TCP connection to one broker."""

    def __init__(self, stream: trio.SocketStream, client_id: str) -> None:
        self._stream = stream
        self._client_id = client_id
        self._frames = FrameBuffer()
        self._correlation = itertools.count(1)
        self._lock = trio.Lock()
        self.api_versions: dict[int, tuple[int, int]] = {}

    @classmethod
    async def open(cls, host: str, port: int, client_id: str = "kraft-tools") -> "Connection":
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError as error:
            raise KafkaClientError(f"cannot connect to {host}:{port}: {error}") from error
        connection = cls(stream, client_id)
        try:
            await connection._negotiate()
        except BaseException:
            await trio.aclose_forcefully(stream)  # a failed handshake must not leak the socket
            raise
        return connection

    async def _negotiate(self) -> None:
        response = await self.request(
            ApiVersionsRequest(
                client_software_name=CLIENT_SOFTWARE_NAME,
                client_software_version=CLIENT_SOFTWARE_VERSION,
            )
        )
        if response.error_code != 0:
            raise KafkaClientError(f"ApiVersions failed: {response.error_code.name}")
        self.api_versions = {
            key.api_key: (key.min_version, key.max_version) for key in response.api_keys
        }

    def version_for(self, api_key: int, preferred: int, lowest: int = 0) -> int:
        """The highest version both sides support, at most ``preferred``."""
        low, high = self.api_versions.get(api_key, (-1, -1))
        version = min(preferred, high)
        if version < max(low, lowest):
            raise KafkaClientError(
                f"broker supports API {api_key} versions {low}-{high}; this tool needs"
                f" {lowest}-{preferred}"
            )
        return version

    async def request(self, body: Any) -> Any:
        """Send ``body`` and return the decoded response body."""
        cls = type(body)
        async with self._lock:
            correlation_id = next(self._correlation)
            try:
                await self._stream.send_all(encode_request(correlation_id, self._client_id, body))
                frame = await self._receive_frame()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
                raise KafkaClientError(f"connection lost: {error}") from error
        api_version = cls.__version__
        got_id, response = decode_response(cls.__api_key__, api_version, frame)
        if got_id != correlation_id:
            raise KafkaClientError(f"expected correlation id {correlation_id}, got {got_id}")
        return response

    async def request_frame(self, frame: bytes) -> bytes:
        """Send a request the caller framed itself (its own correlation id, e.g. the Raft
        core's) and return the response frame without its size prefix, for the caller to
        decode; requests on the connection still go one at a time."""
        async with self._lock:
            try:
                await self._stream.send_all(frame)
                return await self._receive_frame()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
                raise KafkaClientError(f"connection lost: {error}") from error

    async def _receive_frame(self) -> bytes:
        while (frame := self._frames.next_frame()) is None:
            data = await self._stream.receive_some(RECEIVE_BYTES_MAX)
            if not data:
                raise KafkaClientError("broker closed the connection")
            self._frames.receive_data(data)
        return frame

    async def aclose(self) -> None:
        await self._stream.aclose()


class Client:
    """Bootstrap plus one connection per broker, opened on demand."""

    def __init__(self, bootstrap_servers: str, client_id: str = "kraft-tools") -> None:
        self._bootstrap = parse_bootstrap(bootstrap_servers)
        self._client_id = client_id
        self._connections: dict[int, Connection] = {}
        self._bootstrap_connection: Connection | None = None
        self.brokers: dict[int, BrokerAddress] = {}

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def any_connection(self) -> Connection:
        if self._bootstrap_connection is not None:
            return self._bootstrap_connection
        errors = []
        for host, port in self._bootstrap:
            try:
                self._bootstrap_connection = await Connection.open(host, port, self._client_id)
                return self._bootstrap_connection
            except KafkaClientError as error:
                errors.append(str(error))
        raise KafkaClientError("; ".join(errors))

    async def connection_to(self, node_id: int) -> Connection:
        if node_id in self._connections:
            return self._connections[node_id]
        if node_id not in self.brokers:
            await self.metadata([])
        broker = self.brokers.get(node_id)
        if broker is None:
            raise KafkaClientError(f"broker {node_id} is not in the cluster metadata")
        connection = await Connection.open(broker.host, broker.port, self._client_id)
        self._connections[node_id] = connection
        return connection

    async def metadata(self, topics: list[str] | None, auto_create: bool = False) -> Any:
        """A Metadata v12 response; ``None`` asks for every topic."""
        connection = await self.any_connection()
        request_topics = None
        if topics is not None:
            request_topics = tuple(MetadataRequestTopic(topic_id=None, name=t) for t in topics)
        response = await connection.request(
            MetadataRequest(
                topics=request_topics,
                allow_auto_topic_creation=auto_create,
                include_topic_authorized_operations=False,
            )
        )
        self.brokers = {
            b.node_id: BrokerAddress(b.node_id, b.host, b.port) for b in response.brokers
        }
        return response

    async def aclose(self) -> None:
        for connection in list(self._connections.values()):
            await connection.aclose()
        if self._bootstrap_connection is not None:
            await self._bootstrap_connection.aclose()
        self._connections.clear()
        self._bootstrap_connection = None


__all__ = ["API_VERSIONS_KEY", "Client", "Connection", "KafkaClientError", "parse_bootstrap"]
