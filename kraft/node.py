"""A kraft node: controller and/or broker roles in one trio process.

Start-up order (each step must succeed before the next):
1. storage is formatted for this node (``meta.properties`` in every directory);
2. the metadata quorum opens ``__cluster_metadata-0`` and the committed records are
   replayed into the image;
3. this voter leads the next epoch; an empty log first receives the bootstrap features;
4. partition logs are loaded and recovered, listeners bind (port 0 picks a free port);
5. the broker registers with its endpoints, the image places this node's partitions;
   only then do the broker listeners accept connections and the node log that it has
   started (a client that connects earlier is refused and retries).
Shutdown runs in reverse: listeners stop, logs flush and write their checkpoints and
the clean-shutdown marker, the metadata log closes.
"""

from __future__ import annotations

import logging
import socket
import uuid
from typing import Any

import trio

from storage.config import LogConfig
from storage.errors import StorageError
from storage.manager import LogManager

from .broker import Broker, ReplicaManager
from .config import ServerConfig
from .group import GroupCoordinator
from .meta_properties import check_formatted, read_bootstrap, read_standalone_voters
from .metadata import FeatureLevelRecord
from .network import Listener
from .quorum_controller import ActiveController, MetadataPublisher, SingleVoterLog
from .quorum_info import Endpoint, SingleVoterQuorum
from .raft import MetadataLogError, SingleVoterRaft

logger = logging.getLogger(__name__)
CHECKPOINT_INTERVAL_S_MIN = 1.0
SHUTDOWN_HANDOVER_S = 3.0


class NodeStartError(Exception):
    """The node cannot start; the message says why and names the key or directory."""


def _single_voter(config: ServerConfig) -> None:
    voters = [v.node_id for v in config.voters]
    if not voters:
        voters = read_standalone_voters(config.metadata_log_dir) or []
    if voters != [config.node_id]:
        raise NodeStartError(
            f"this build runs a metadata quorum of one voter that is this node ({config.node_id});"
            f" the configured voters are {voters or 'unknown'}: format with --standalone or set"
            f" controller.quorum.voters={config.node_id}@host:port")
    if set(config.roles) != {"broker", "controller"}:
        raise NodeStartError("process.roles must be broker,controller for a single-node cluster")


class Node:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.node_id = config.node_id
        self.listeners: list[Listener] = []
        self.bound: dict[str, Any] = {}
        self.started = trio.Event()
        self._member = None  # the QuorumMember of a multi-voter cluster

    def _advertised(self) -> list[tuple[str, str, int, str]]:
        advertised = {}
        for item in self.config.get("advertised.listeners", ()) or ():
            from .config import parse_listener
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
        config = self.config
        cluster_id = check_formatted(sorted(set(config.log_dirs) | {config.metadata_log_dir}),
                                     self.node_id)
        if len(config.voters) > 1:
            await self._run_quorum_member(cluster_id, task_status)
            return
        _single_voter(config)
        raft = SingleVoterRaft(config.metadata_log_dir, self.node_id, config["metadata.log.segment.bytes"])
        publisher = MetadataPublisher()
        for offset, records in raft.replay():
            publisher.publish(records, offset)
        logs = LogManager(list(config.log_dirs), LogConfig())
        try:
            await self._serve(config, cluster_id, raft, publisher, logs, task_status)
        finally:
            await self._close_logs(logs, raft.close)

    def open_listeners(self) -> None:
        """The broker can serve (registered, image caught up): its listeners start accepting."""
        for listener in self.listeners:
            listener.open()

    async def prepare_shutdown(self) -> None:
        """Before the tasks are cancelled: hand over the controller role and the broker's
        partitions (controlled shutdown), bounded by ``SHUTDOWN_HANDOVER_S``."""
        if self._member is not None:
            with trio.move_on_after(SHUTDOWN_HANDOVER_S):
                await self._member.prepare_shutdown()

    async def _run_quorum_member(self, cluster_id: str, task_status) -> None:
        from .cluster_node import QuorumMember

        logs = LogManager(list(self.config.log_dirs), LogConfig())
        try:
            member = self._member = QuorumMember(self, cluster_id, logs)
        except ValueError as error:
            logs.close()
            raise NodeStartError(str(error)) from None
        try:
            await member.run(task_status)
        finally:
            await self._close_logs(logs)

    async def _close_logs(self, logs: LogManager, *also_close) -> None:
        """Flush, checkpoint and close every log (shielded: this runs while cancelled)."""
        with trio.CancelScope(shield=True):
            logger.info("[node %d] shutting down: flushing logs and writing checkpoints", self.node_id)
            await trio.to_thread.run_sync(logs.close)
            for close in also_close:
                close()
            logger.info("[node %d] shut down cleanly", self.node_id)

    async def _serve(self, config, cluster_id, raft, publisher, logs, task_status) -> None:
        raft.become_leader()
        controller = ActiveController(config, SingleVoterLog(raft, publisher), publisher)
        if publisher.image.offset < 0:
            features = read_bootstrap(config.metadata_log_dir)
            await controller.write_bootstrap(
                [FeatureLevelRecord(name, level) for name, level in sorted(features.items())])
        await trio.to_thread.run_sync(logs.load_all)
        replicas = ReplicaManager(self.node_id, config, logs)
        broker = Broker(self.node_id, cluster_id, config, replicas, controller, lambda: publisher.image)
        async with trio.open_nursery() as nursery:
            for listener_config in config.listeners:
                listener = Listener(self.node_id, listener_config.name, listener_config.host,
                                    listener_config.port, broker.dispatch, config["socket.request.max.bytes"],
                                    accept_at_once=listener_config.name in config.controller_listener_names)
                self.bound[listener_config.name] = await nursery.start(listener.run)
                self.listeners.append(listener)
            broker_endpoints = [e for e in self._advertised() if e[0] not in config.controller_listener_names]
            broker.quorum = SingleVoterQuorum.of_node(raft, config.metadata_log_dir, [
                Endpoint(*e[:3]) for e in self._advertised() if e[0] in config.controller_listener_names])
            await controller.register_broker(str(uuid.uuid4()), broker_endpoints, config.get("broker.rack"))
            publisher.subscribe(replicas.apply_image)
            groups = GroupCoordinator(self.node_id, config, replicas, controller, lambda: publisher.image)
            broker.groups = groups
            publisher.subscribe(groups.on_image)
            await nursery.start(groups.run)
            nursery.start_soon(self._checkpoint_loop, logs)
            nursery.start_soon(self._retention_loop, logs)
            self.open_listeners()
            logger.info("[node %d] Kafka Server started (kraft node %d, cluster %s)",
                        self.node_id, self.node_id, cluster_id)
            self.started.set()
            task_status.started(self)

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


__all__ = ["MetadataLogError", "Node", "NodeStartError"]
