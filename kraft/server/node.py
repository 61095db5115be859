"""A kraft node: controller and/or broker roles in one trio process.

Every node runs the same path (``kraft.server.quorum_member.QuorumMember``): the Raft driver over
``__cluster_metadata-0`` and, for the broker half, registration and heartbeats with the
active controller through one channel that is local when this node is the active
controller and remote otherwise. A standalone node (formatted with ``--standalone``) is a
quorum of one voter, itself: it elects itself at once, writes a LeaderChange entry,
snapshots its metadata and fences like any other.

Start-up order (each step must succeed before the next):
1. storage is formatted for this node (``meta.properties`` in every directory); the voters
   come from ``controller.quorum.voters`` or, for a standalone node, from the bootstrap
   checkpoint that ``kafka-storage format --standalone`` wrote;
2. the Raft driver opens the metadata log and joins the quorum; committed records are
   replayed into the image;
3. partition logs are loaded and recovered, listeners bind (port 0 picks a free port);
4. the broker registers with its endpoints and is unfenced once its image has caught up;
   only then do the client listeners accept connections and the node log that it has
   started (a client that connects earlier is refused and retries).
Shutdown runs in reverse: controlled shutdown, listeners stop, logs flush and write their
checkpoints and the clean-shutdown marker, the metadata log closes.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import trio

from storage.config import LogConfig
from storage.errors import StorageError
from storage.manager import LogManager

from ..config import ServerConfig, parse_listener
from ..meta_properties import check_formatted, read_standalone_voters
from .network import Listener
from ..raft import DiskLogError

logger = logging.getLogger(__name__)
CHECKPOINT_INTERVAL_S_MIN = 1.0
SHUTDOWN_HANDOVER_S = 3.0


class NodeStartError(Exception):
    """The node cannot start; the message says why and names the key or directory."""


def quorum_voters(config: ServerConfig) -> dict[int, tuple[str, int]]:
    """The voters of the metadata quorum: node id -> controller (host, port)."""
    if config.voters:
        return {voter.node_id: (voter.host, voter.port) for voter in config.voters}
    standalone = read_standalone_voters(config.metadata_log_dir) or []
    if standalone != [config.node_id]:
        raise NodeStartError(
            f"node {config.node_id} has no controller.quorum.voters and its storage names the voters"
            f" {standalone or 'of no standalone quorum'}: format it with --standalone, or set"
            f" controller.quorum.voters (id@host:port,...) and format every node without --standalone")
    if "controller" not in config.roles:
        raise NodeStartError("a standalone node (formatted with --standalone) needs the controller role:"
                             " set process.roles=broker,controller")
    names = set(config.controller_listener_names)
    listener = next((item for item in config.listeners if item.name in names), None)
    host, port = (listener.host, listener.port) if listener else ("localhost", 0)
    return {config.node_id: (host or "localhost", port)}


class Node:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.node_id = config.node_id
        self.listeners: list[Listener] = []
        self.bound: dict[str, Any] = {}
        self.started = trio.Event()
        self._member = None  # the QuorumMember, once it runs

    def _advertised(self) -> list[tuple[str, str, int, str]]:
        advertised = {}
        for item in self.config.get("advertised.listeners", ()) or ():
            parsed = parse_listener(item, "advertised.listeners")
            advertised[parsed.name] = parsed
        endpoints = []
        for name, bound in self.bound.items():
            chosen = advertised.get(name)
            host = chosen.host if chosen and chosen.host else bound.host
            port = chosen.port if chosen and chosen.port else bound.port
            if host in ("", "0.0.0.0", "::"):
                host = socket.getfqdn()
            endpoints.append((name, host, port, "PLAINTEXT"))
        return endpoints

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        from .quorum_member import QuorumMember

        config = self.config
        cluster_id = check_formatted(sorted(set(config.log_dirs) | {config.metadata_log_dir}), self.node_id)
        voters = quorum_voters(config)
        logs = LogManager(list(config.log_dirs), LogConfig())
        try:
            member = self._member = QuorumMember(self, cluster_id, logs, voters)
        except ValueError as error:
            logs.close()
            raise NodeStartError(str(error)) from None
        try:
            await member.run(task_status)
        finally:
            await self._close_logs(logs)

    async def open_listeners(self) -> None:
        """The broker can serve (registered, image caught up): its listeners start accepting,
        and this returns once they do (so "started" is logged only when clients get in)."""
        for listener in self.listeners:
            listener.open()
        for listener in self.listeners:
            await listener.wait_accepting()

    async def prepare_shutdown(self) -> None:
        """Before the tasks are cancelled: hand over the controller role and the broker's
        partitions (controlled shutdown), bounded by ``SHUTDOWN_HANDOVER_S``."""
        if self._member is not None:
            with trio.move_on_after(SHUTDOWN_HANDOVER_S):
                await self._member.prepare_shutdown()

    async def _close_logs(self, logs: LogManager) -> None:
        """Flush, checkpoint and close every log (shielded: this runs while cancelled)."""
        with trio.CancelScope(shield=True):
            logger.info("[node %d] shutting down: flushing logs and writing checkpoints", self.node_id)
            await trio.to_thread.run_sync(logs.close)
            logger.info("[node %d] shut down cleanly", self.node_id)

    async def _checkpoint_loop(self, logs: LogManager) -> None:
        """Write recovery points and flush logs whose flush.ms/flush.messages are due."""
        interval_s = max(self.config["log.flush.offset.checkpoint.interval.ms"] / 1000,
                         CHECKPOINT_INTERVAL_S_MIN)
        next_checkpoint = trio.current_time() + interval_s
        while True:
            await trio.sleep(1.0)
            # On the event loop, not in a worker thread: the log engine is not
            # thread-safe against concurrent appends. Only topics with flush.ms or
            # flush.messages set are flushed here; Kafka's default leaves it to the OS.
            for log in [log for log in logs.logs().values() if log.needs_flush]:
                try:
                    log.flush()
                except (StorageError, OSError) as error:
                    # The log is offline from here (appends answer KAFKA_STORAGE_ERROR);
                    # the node and its other logs go on.
                    logger.error("[node %d] flush of %s failed: %s", self.node_id, log.directory, error)
            if trio.current_time() >= next_checkpoint:
                try:
                    logs.checkpoint()
                except (StorageError, OSError) as error:
                    logger.error("[node %d] writing checkpoints failed: %s", self.node_id, error)
                next_checkpoint = trio.current_time() + interval_s

    async def _retention_loop(self, logs: LogManager) -> None:
        """Every log.retention.check.interval.ms, delete segments past retention.ms or
        retention.bytes, then compact the logs of cleanup.policy=compact topics that are due.
        On the event loop, as above: the log engine is not thread-safe."""
        interval_s = self.config["log.retention.check.interval.ms"] / 1000
        while True:
            await trio.sleep(interval_s)
            logs.apply_retention()
            if self.config["log.cleaner.enable"]:
                logs.clean_compacted()


__all__ = ["DiskLogError", "Node", "NodeStartError"]
