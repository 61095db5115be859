"""The broker: decodes each request, routes it to its handler, encodes the answer.

Rules:
- ApiVersions at a version we do not know is answered at v0 with UNSUPPORTED_VERSION
  and our ranges (KIP-511), so the client can retry at a version we share.
- Any other unknown API or version, and any request whose bytes do not decode, closes
  only that connection (as Kafka's socket server does); the log line names the peer.
- A handler bug is logged with the request's API and answered by closing the
  connection: it never takes down the node.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import trio

from kio.schema.errors import ErrorCode

from protocol.apis import (
    API_VERSIONS_KEY, BROKER_APIS, CONTROLLER_ONLY_APIS, Request, UnsupportedRequest,
    decode_request, encode_response, peek_header, response_class,
)
from protocol.framing import RemoteProtocolError

from ..config import ServerConfig
from ..controller.channel import FORWARDED_API_KEYS
from ..metadata import MetadataImage
from ..server.network import ConnectionInfo
from .build import make, nested

logger = logging.getLogger(__name__)
Handler = Callable[["Broker", Request, ConnectionInfo], Awaitable[Any]]
HANDLERS: dict[int, Handler] = {}


def handles(api_key: int) -> Callable[[Handler], Handler]:
    def register(function: Handler) -> Handler:
        HANDLERS[api_key] = function
        return function
    return register


class InternalError(RemoteProtocolError):
    """A handler failed on a request it should have answered; the connection closes."""


class Broker:
    """The request-serving half of a node; state lives in the objects it is given."""

    def __init__(self, node_id: int, cluster_id: str, config: ServerConfig, replicas: Any,
                 controller: Any, image_source: Callable[[], MetadataImage]) -> None:
        self.node_id = node_id
        self.cluster_id = cluster_id
        self.config = config
        self.replicas = replicas
        self.controller = controller
        self._image_source = image_source
        self.apis = {api.api_key: api for api in BROKER_APIS}
        # The controller listener also serves the controller-only APIs.
        self.controller_apis = {**self.apis, **{api.api_key: api for api in CONTROLLER_ONLY_APIS}}
        # The channel to the active controller in a multi-node cluster (None: this node's
        # controller is the only one); admin requests are forwarded through it.
        self.forwarder: Any = None
        self.listener_name = "PLAINTEXT"
        # Woken on every append so that waiting fetches (min.bytes) see new data.
        self.data_arrived = trio.Event()
        self.groups: Any = None  # the group coordinator, set by the node
        self.quorum: Any = None  # the metadata quorum's QuorumSource (kraft.server.quorum_info), set by the node

    @property
    def image(self) -> MetadataImage:
        return self._image_source()

    def notify_data_arrived(self) -> None:
        self.data_arrived.set()
        self.data_arrived = trio.Event()

    def _apis_for(self, info: ConnectionInfo) -> dict:
        return self.controller_apis if info.listener in self.config.controller_listener_names else self.apis

    async def dispatch(self, frame: bytes, info: ConnectionInfo) -> bytes:
        apis = self._apis_for(info)
        try:
            request = decode_request(frame, apis)
        except UnsupportedRequest as error:
            if error.api_key == API_VERSIONS_KEY:
                return self._api_versions_fallback(error.correlation_id, apis)
            raise
        if (self.forwarder is not None and request.api_key in FORWARDED_API_KEYS
                and not self.forwarder.is_active()):
            if apis is self.controller_apis:
                raise RemoteProtocolError("a forwarded request reached a controller that is not active")
            answer = await self.forwarder.forward(frame)
            if answer is not None:
                return answer
        handler = HANDLERS.get(request.api_key)
        if handler is None:
            raise UnsupportedRequest(request.api_key, request.api_version, request.correlation_id)
        try:
            body = await handler(self, request, info)
        except (RemoteProtocolError, trio.Cancelled):
            raise
        except Exception as error:  # a bug in a handler must not kill the node
            logger.exception("[node %d] %s v%d from %s failed", self.node_id,
                             apis[request.api_key].name, request.api_version, info.peer)
            raise InternalError(f"internal error handling API {request.api_key}: {error!r}") from error
        if body is None:
            return b""
        return encode_response(request.api_key, request.api_version, request.correlation_id, body)

    def _api_versions_fallback(self, correlation_id: int, apis: dict) -> bytes:
        cls = response_class(API_VERSIONS_KEY, 0)
        return encode_response(API_VERSIONS_KEY, 0, correlation_id, self.api_versions_body(
            cls, ErrorCode.unsupported_version, apis))

    def api_versions_body(self, cls: type, error_code: ErrorCode = ErrorCode.none, apis: dict | None = None) -> Any:
        api_version = nested(cls, "ApiVersion")
        keys = tuple(
            make(api_version, api_key=api.api_key, min_version=api.advertised_min,
                 max_version=api.advertised_max)
            for api in sorted((apis or self.apis).values(), key=lambda a: a.api_key)
        )
        features = self.image.features if error_code == ErrorCode.none else {}
        finalized_cls = nested(cls, "FinalizedFeatureKey")
        supported_cls = nested(cls, "SupportedFeatureKey")
        finalized = supported = ()
        if finalized_cls is not None and supported_cls is not None:
            finalized = tuple(
                make(finalized_cls, name=name, max_version_level=level, min_version_level=level)
                for name, level in sorted(features.items()))
            supported = tuple(
                make(supported_cls, name=name, min_version=1 if name == "metadata.version" else 0,
                     max_version=level)
                for name, level in sorted(features.items()))
        return make(cls, error_code=error_code, api_keys=keys, throttle_time=0,
                    supported_features=supported, finalized_features_epoch=max(self.image.offset, -1),
                    finalized_features=finalized, zk_migration_ready=False)


@handles(API_VERSIONS_KEY)
async def handle_api_versions(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    cls = response_class(API_VERSIONS_KEY, request.api_version)
    return broker.api_versions_body(cls, apis=broker._apis_for(info))


__all__ = ["Broker", "HANDLERS", "handles", "peek_header"]
