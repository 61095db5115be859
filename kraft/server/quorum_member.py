"""A node of a cluster whose quorum has several voters: combined broker+controller,
controller-only (a voter with no broker half) or broker-only (an observer of the
metadata log that fetches it from the leader).

Start-up order:
1. the Raft driver opens ``__cluster_metadata-0`` and joins the quorum over the
   controller listener; committed entries are applied to the image as the high
   watermark reaches them (on every node alike, through the driver's commit callback);
2. the node whose driver leads the quorum is the active controller: it first catches up
   with everything committed, writes the bootstrap features into an empty log, gives
   every broker a fresh session and fences those whose heartbeats stop;
3. the broker half registers with the active controller and heartbeats every
   ``broker.heartbeat.interval.ms``; it is unfenced once its image has caught up, and
   only then do its client listeners accept connections;
4. admin requests that reach a broker whose controller is not active are forwarded to
   the active controller (``kraft.controller.channel``).
A controller-only node has no client listener; a broker-only node has no controller
listener and reaches the controllers through ``controller.quorum.voters``.
"""

from __future__ import annotations

import logging
import os
import random
import uuid
from typing import Any

import trio
from kio.schema.errors import ErrorCode

from protocol.uuids import uuid_from_text

from ..broker import Broker, ReplicaManager
from ..broker.alter_partition import AlterPartitionManager
from ..broker.fetcher import ReplicaFetcherManager
from ..controller.control import IsrRequest, IsrResult, NewTopic, TopicResult
from ..controller.channel import ControllerChannel, ForwardingFailed
from ..group import GroupCoordinator
from ..meta_properties import read_bootstrap, read_meta_properties
from ..metadata import FeatureLevelRecord
from ..metadata.snapshot import encode_snapshot
from .network import Listener
from ..controller.quorum_controller import ActiveController, MetadataPublisher, QuorumLog
from .quorum_info import Endpoint, QuorumInfo, ReplicaInfo, wall_clock_ms
from ..raft import METADATA_PARTITION, DiskRaftLog, NotLeaderError, RaftConfig, RaftWire
from ..raft.driver import AppendLostError, RaftDriver
from ..raft.net import RAFT_API_KEYS, RaftNetwork

logger = logging.getLogger(__name__)
DUTY_INTERVAL_S = 0.5
TAKE_UP_INTERVAL_S = 0.02
STARTING_HEARTBEAT_S = 0.05
LEADER_WAIT_S = 0.01
CATCH_UP_WAIT_S = 60
SNAPSHOT_CHECK_INTERVAL_S = 1.0


def _directory_uuid(text: str | None) -> uuid.UUID | None:
    if not text:
        return None
    try:
        return uuid_from_text(text)
    except ValueError:
        return None


class ControllerFacade:
    """What the broker half calls: the local active controller, or the remote one."""

    def __init__(self, local: ActiveController, channel: ControllerChannel) -> None:
        self._local = local
        self._channel = channel

    def __getattr__(self, name: str) -> Any:
        return getattr(self._local, name)

    async def create_topics(self, topics: list[NewTopic], validate_only: bool) -> list[TopicResult]:
        if self._channel.is_active():
            return await self._local.create_topics(topics, validate_only)
        from kio.schema.create_topics.v7.request import CreatableTopic, CreatableTopicConfig, CreateTopicsRequest
        import datetime

        request = CreateTopicsRequest(topics=tuple(CreatableTopic(
            name=t.name, num_partitions=t.num_partitions, replication_factor=t.replication_factor,
            assignments=(), configs=tuple(CreatableTopicConfig(name=k, value=v) for k, v in t.configs.items()))
            for t in topics), timeout=datetime.timedelta(seconds=30), validate_only=validate_only)
        try:
            response = await self._channel.request(request)
        except ForwardingFailed as error:
            if self._channel.is_active():  # this node took over meanwhile
                return await self._local.create_topics(topics, validate_only)
            return [TopicResult(t.name, ErrorCode.not_controller, str(error)) for t in topics]
        return [TopicResult(r.name, r.error_code, r.error_message, str(r.topic_id), r.num_partitions,
                            r.replication_factor) for r in response.topics]


    async def alter_partition(self, broker_id: int, broker_epoch: int,
                              items: list[IsrRequest]) -> tuple[ErrorCode, list[IsrResult]]:
        """AlterPartition to the active controller, wherever it runs."""
        if self._channel.is_active():
            return await self._local.alter_partition(broker_id, broker_epoch, items)
        from kio.schema.alter_partition.v3.request import AlterPartitionRequest, BrokerState, PartitionData, TopicData

        by_topic: dict[str, list] = {}
        for item in items:
            by_topic.setdefault(item.topic_id, []).append(PartitionData(
                partition_index=item.partition_index, leader_epoch=item.leader_epoch,
                new_isr_with_epochs=tuple(BrokerState(broker_id=b, broker_epoch=e) for b, e in item.new_isr),
                leader_recovery_state=0, partition_epoch=item.partition_epoch))
        request = AlterPartitionRequest(broker_id=broker_id, broker_epoch=broker_epoch, topics=tuple(
            TopicData(topic_id=uuid.UUID(topic_id), partitions=tuple(partitions))
            for topic_id, partitions in by_topic.items()))
        try:
            response = await self._channel.request(request)
        except ForwardingFailed as error:
            if self._channel.is_active():
                return await self._local.alter_partition(broker_id, broker_epoch, items)
            logger.info("AlterPartition not sent: %s", error)
            return ErrorCode.not_controller, []
        results = [IsrResult(str(topic.topic_id), p.partition_index, ErrorCode(p.error_code), p.leader_id,
                             p.leader_epoch, tuple(p.isr), p.partition_epoch)
                   for topic in response.topics for p in topic.partitions]
        return ErrorCode(response.error_code), results


class DriverQuorum:
    """``QuorumSource`` for DescribeQuorum from the Raft driver's leader state."""

    def __init__(self, driver: RaftDriver, directory_ids: dict[int, str | None],
                 endpoints: dict[int, tuple[Endpoint, ...]]) -> None:
        self._driver = driver
        self._directory_ids = directory_ids
        self._endpoints = endpoints

    def describe_quorum(self) -> QuorumInfo | None:
        core = self._driver.core
        if core is None or not self._driver.is_leader:
            return None
        now_ms = wall_clock_ms()
        started_ms = now_ms - core.now_ms  # the core counts milliseconds from the driver's start
        replicas = getattr(core.role, "replicas", {})

        def wall(ms: int | None) -> int:
            return -1 if ms is None else started_ms + ms

        def info(node_id: int, progress) -> ReplicaInfo:
            if node_id == self._driver.local_id:
                return ReplicaInfo(node_id, self._directory_ids.get(node_id), core.log.end_offset, now_ms, now_ms)
            if progress is None:
                return ReplicaInfo(node_id, self._directory_ids.get(node_id), -1)
            return ReplicaInfo(node_id, self._directory_ids.get(node_id), progress.end_offset,
                               wall(progress.last_fetch_ms), wall(progress.last_caught_up_ms))

        voters = [info(voter, replicas.get(voter)) for voter in sorted(self._driver.voters)]
        observers = tuple(info(node_id, progress) for node_id, progress in sorted(replicas.items())
                          if node_id not in self._driver.voters)
        return QuorumInfo(self._driver.local_id, self._driver.epoch, self._driver.high_watermark,
                          tuple(voters), observers, endpoints=tuple(self._endpoints.items()))


def check_roles(config, voters: dict[int, tuple[str, int]]) -> dict[int, tuple[str, int]]:
    """Voters must include every controller; a broker-only node is an observer."""
    is_voter = config.node_id in voters
    if "controller" in config.roles and not is_voter:
        raise ValueError(f"node {config.node_id} has the controller role but is not among"
                         f" controller.quorum.voters {sorted(voters)}")
    if "controller" not in config.roles and is_voter:
        raise ValueError(f"node {config.node_id} is in controller.quorum.voters but has no controller role")
    return voters


def raft_config(config) -> RaftConfig:
    return RaftConfig(
        election_timeout_ms=config["controller.quorum.election.timeout.ms"],
        fetch_timeout_ms=config["controller.quorum.fetch.timeout.ms"],
        election_backoff_max_ms=config["controller.quorum.election.backoff.max.ms"],
        request_timeout_ms=config["controller.quorum.request.timeout.ms"])


class QuorumMember:
    """Runs one combined node of a multi-voter cluster; ``node`` is the kraft.server.node.Node."""

    def __init__(self, node: Any, cluster_id: str, logs: Any, voters: dict[int, tuple[str, int]]) -> None:
        self.node = node
        self.config = node.config
        self.node_id = node.node_id
        self.cluster_id = cluster_id
        self.logs = logs
        self.voters = check_roles(self.config, voters)
        self.publisher = MetadataPublisher()
        self._broker_epoch: int | None = None
        self._active_epoch: int | None = None  # the epoch whose controller duties have begun here
        self._shutting_down = False

    def _driver(self) -> RaftDriver:
        config = self.config
        meta = read_meta_properties(config.metadata_log_dir)
        wire = RaftWire(local_id=self.node_id, cluster_id=self.cluster_id,
                        directory_id=_directory_uuid(meta.directory_id if meta else None))
        self.network = RaftNetwork(self.node_id, self.voters, wire,
                                   request_timeout_ms=config["controller.quorum.request.timeout.ms"])
        disk = DiskRaftLog.open(os.path.join(config.metadata_log_dir, METADATA_PARTITION))
        driver = RaftDriver(self.node_id, set(self.voters), disk, self.network, config=raft_config(config),
                            rng=random.Random(), on_commit=self.publisher.apply_entries,
                            on_load_snapshot=self._load_snapshot)
        self.network.attach(driver)
        self._disk = disk
        return driver

    def _load_snapshot(self, snapshot: Any) -> None:
        self.publisher.load_snapshot(snapshot.data, snapshot.snapshot_id.end_offset)
        logger.info("[node %d] loaded the metadata snapshot %s", self.node_id, snapshot.snapshot_id)

    async def _take_snapshots(self, driver: RaftDriver) -> None:
        """Snapshot the image after ``metadata.log.max.record.bytes.between.snapshots`` of
        new records, or ``metadata.log.max.snapshot.interval.ms`` after the last one, so the
        metadata log is cut and lagging replicas catch up from the snapshot (KIP-630)."""
        bytes_max = self.config["metadata.log.max.record.bytes.between.snapshots"]
        interval_s = self.config["metadata.log.max.snapshot.interval.ms"] / 1000
        last_snapshot_s = trio.current_time()
        while True:
            await trio.sleep(SNAPSHOT_CHECK_INTERVAL_S)
            publisher = self.publisher
            pending = publisher.bytes_since_snapshot
            timed_out = interval_s > 0 and trio.current_time() - last_snapshot_s >= interval_s
            if publisher.applied_offset < 0 or pending == 0 or (pending < bytes_max and not timed_out):
                continue
            end_offset = publisher.applied_offset + 1
            await driver.snapshot(end_offset, encode_snapshot(publisher.image))
            publisher.snapshot_taken()
            last_snapshot_s = trio.current_time()
            logger.info("[node %d] metadata snapshot requested at offset %d", self.node_id, end_offset)

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        config, node = self.config, self.node
        driver = self.driver = self._driver()
        controller = ActiveController(config, QuorumLog(driver, self.publisher), self.publisher)
        channel = ControllerChannel(self.node_id, lambda: driver.is_leader, lambda: driver.leader_id, self.voters)
        facade = ControllerFacade(controller, channel)
        is_broker = "broker" in config.roles
        if is_broker:
            await trio.to_thread.run_sync(self.logs.load_all)
        replicas = ReplicaManager(self.node_id, config, self.logs) if is_broker else None
        broker = Broker(self.node_id, self.cluster_id, config, replicas, facade, lambda: self.publisher.image)
        broker.forwarder = channel
        controller_names = set(config.controller_listener_names)

        async def controller_dispatch(frame: bytes, info) -> bytes:
            if len(frame) >= 2 and int.from_bytes(frame[:2], "big", signed=True) in RAFT_API_KEYS:
                return await self.network.handle_frame(frame)
            return await broker.dispatch(frame, info)

        try:
            async with trio.open_nursery() as nursery:
                for listener_config in config.listeners:
                    dispatch = controller_dispatch if listener_config.name in controller_names else broker.dispatch
                    listener = Listener(self.node_id, listener_config.name, listener_config.host,
                                        listener_config.port, dispatch, config["socket.request.max.bytes"],
                                        accept_at_once=listener_config.name in controller_names)
                    node.bound[listener_config.name] = await nursery.start(listener.run)
                    node.listeners.append(listener)
                await nursery.start(self.network.run)
                await nursery.start(driver.run)
                broker.quorum = DriverQuorum(driver, {self.node_id: self._directory_id()}, self._voter_endpoints())
                nursery.start_soon(self._take_snapshots, driver)
                if "controller" in config.roles:
                    nursery.start_soon(self._controller_duties, driver, controller)
                if is_broker:
                    await self._start_broker(nursery, broker, replicas, facade, controller, channel)
                logger.info("[node %d] Kafka Server started (kraft node %d, cluster %s, roles %s, quorum of %d"
                            " voters)", self.node_id, self.node_id, self.cluster_id, ",".join(config.roles),
                            len(self.voters))
                node.started.set()
                task_status.started(node)
        finally:
            self._disk.close() if hasattr(self._disk, "close") else None

    def _directory_id(self) -> str | None:
        meta = read_meta_properties(self.config.metadata_log_dir)
        return meta.directory_id if meta and meta.directory_id else None

    def _voter_endpoints(self) -> dict[int, tuple[Endpoint, ...]]:
        """Every voter's controller endpoint as configured; this node's as it is bound and
        advertised (a standalone voter may have bound port 0)."""
        endpoints = {voter: (Endpoint("CONTROLLER", host, port),) for voter, (host, port) in self.voters.items()}
        names = set(self.config.controller_listener_names)
        own = tuple(Endpoint(name, host, port) for name, host, port, _ in self.node._advertised() if name in names)
        if self.node_id in endpoints and own:
            endpoints[self.node_id] = own
        return endpoints

    async def _start_broker(self, nursery: trio.Nursery, broker: Broker, replicas: ReplicaManager,
                            facade: ControllerFacade, controller: ActiveController,
                            channel: ControllerChannel) -> None:
        """The broker half: partitions and groups from the image, registration, heartbeats."""
        config, node = self.config, self.node
        # Replication hooks first: the first image already makes this node leader or follower.
        replicas.on_progress = broker.notify_data_arrived
        fetchers = ReplicaFetcherManager(self.node_id, config, replicas, lambda: self.publisher.image,
                                         lambda: self._broker_epoch)
        isr_changes = AlterPartitionManager(self.node_id, config, replicas, facade, lambda: self._broker_epoch)
        self.publisher.subscribe(replicas.apply_image)
        await nursery.start(fetchers.run)
        await nursery.start(isr_changes.run)
        groups = GroupCoordinator(self.node_id, config, replicas, facade, lambda: self.publisher.image)
        broker.groups = groups
        self.publisher.subscribe(groups.on_image)
        await nursery.start(groups.run)
        nursery.start_soon(node._checkpoint_loop, self.logs)
        nursery.start_soon(node._retention_loop, self.logs)
        registered = trio.Event()
        nursery.start_soon(self._broker_heartbeats, controller, channel, registered)
        # As Kafka's brokers, clients are served only by a broker that the active controller
        # has registered and unfenced, which it does once the broker's image has caught up.
        while True:
            with trio.move_on_after(CATCH_UP_WAIT_S):
                await registered.wait()
            if registered.is_set():
                break
            logger.warning("[node %d] not yet registered and unfenced by an active controller after %d s;"
                           " the client listeners stay closed until it is", self.node_id, CATCH_UP_WAIT_S)
        logger.info("[node %d] registered and unfenced with broker epoch %s; the client listeners open",
                    self.node_id, self._broker_epoch)
        await node.open_listeners()

    async def prepare_shutdown(self) -> None:
        """Controlled shutdown: the broker asks to be fenced (its partitions move to other
        in-sync replicas), then a leading controller resigns so another takes over at
        once (EndQuorumEpoch) instead of after a fetch timeout."""
        self._shutting_down = True
        if self._broker_epoch is not None:
            try:
                await self._heartbeat(self._controller, self._channel, self._broker_epoch, want_shut_down=True)
            except (ForwardingFailed, NotLeaderError, AppendLostError) as error:
                logger.info("[node %d] controlled shutdown: %s", self.node_id, error)
        if self.driver.is_leader and len(self.voters) > 1:
            logger.info("[node %d] resigning as quorum leader in epoch %d", self.node_id, self.driver.epoch)
            await self.driver.resign()
            while self.driver.is_leader:
                await trio.sleep(0.05)

    async def _controller_duties(self, driver: RaftDriver, controller: ActiveController) -> None:
        """On the active controller: catch up, bootstrap an empty log, fence silent brokers,
        move leaders back to preferred replicas (``auto.leader.rebalance.enable``, every
        ``leader.imbalance.check.interval.seconds``, as Kafka's controller does it)."""
        was_leader = False
        balance = self.config["auto.leader.rebalance.enable"]
        balance_interval_s = self.config["leader.imbalance.check.interval.seconds"]
        next_balance_s = 0.0
        while True:
            # Quick while the role is not taken up yet, so a new leader (a standalone node at
            # start among them) begins its duties at once; then every DUTY_INTERVAL_S.
            await trio.sleep(DUTY_INTERVAL_S if was_leader else TAKE_UP_INTERVAL_S)
            core = driver.core
            if core is not None and logger.isEnabledFor(logging.DEBUG):
                logger.debug("[node %d] raft role %s epoch %d leader %s high watermark %d",
                             self.node_id, type(core.role).__name__, core.epoch, core.leader_id,
                             core.high_watermark)
            if not driver.is_leader:
                was_leader = False
                continue
            try:
                if not was_leader:
                    await self.publisher.wait_applied(driver.high_watermark - 1)
                    controller.reset_broker_sessions(self.config["broker.session.timeout.ms"])
                    if "metadata.version" not in self.publisher.image.features:
                        features = read_bootstrap(self.config.metadata_log_dir)
                        await controller.write_bootstrap(
                            [FeatureLevelRecord(name, level) for name, level in sorted(features.items())])
                    was_leader = True
                    self._active_epoch = driver.epoch
                    next_balance_s = trio.current_time() + balance_interval_s
                    logger.info("[node %d] active controller in epoch %d", self.node_id, driver.epoch)
                await controller.fence_expired_brokers()
                if balance and trio.current_time() >= next_balance_s:
                    next_balance_s = trio.current_time() + balance_interval_s
                    await controller.balance_leaders()
            except (NotLeaderError, AppendLostError) as error:
                logger.info("[node %d] lost the controller role: %s", self.node_id, error)
                was_leader = False

    async def _broker_heartbeats(self, controller: ActiveController, channel: ControllerChannel,
                                 registered: trio.Event) -> None:
        interval_s = self.config["broker.heartbeat.interval.ms"] / 1000
        incarnation = uuid.uuid4()
        epoch = None
        self._controller, self._channel = controller, channel
        while True:
            self._broker_epoch = epoch
            if epoch is None and not self._controller_known():
                await trio.sleep(LEADER_WAIT_S)  # no active controller to register with yet
                continue
            try:
                if epoch is None:
                    epoch = self._broker_epoch = await self._register(controller, channel, incarnation)
                if epoch is not None:
                    error, fenced = await self._heartbeat(controller, channel, epoch,
                                                          want_shut_down=self._shutting_down)
                    if error in (ErrorCode.stale_broker_epoch, ErrorCode.broker_id_not_registered):
                        epoch = None
                    elif error == ErrorCode.none and not fenced:
                        registered.set()
            except (ForwardingFailed, NotLeaderError, AppendLostError) as error:
                logger.info("[node %d] broker heartbeat: %s", self.node_id, error)
            # Kafka's broker heartbeats at once while it waits to be unfenced; so quickly here,
            # at the interval once unfenced.
            await trio.sleep(interval_s if registered.is_set() else min(interval_s, STARTING_HEARTBEAT_S))

    def _controller_known(self) -> bool:
        """A leader is known and, when it is this node, its controller duties have begun."""
        driver = self.driver
        if driver.leader_id is None:
            return False
        return not driver.is_leader or self._active_epoch == driver.epoch

    def _endpoints(self) -> list[tuple[str, str, int, str]]:
        names = set(self.config.controller_listener_names)
        return [e for e in self.node._advertised() if e[0] not in names]

    async def _register(self, controller: ActiveController, channel: ControllerChannel,
                        incarnation: uuid.UUID) -> int | None:
        if channel.is_active():
            error, epoch = await controller.register(self.node_id, str(incarnation), self._endpoints(),
                                                     self.config.get("broker.rack"), from_this_node=True)
        else:
            from kio.schema.broker_registration.v4.request import BrokerRegistrationRequest, Feature, Listener as Endpoint_

            request = BrokerRegistrationRequest(
                broker_id=self.node_id, cluster_id=self.cluster_id, incarnation_id=incarnation,
                listeners=tuple(Endpoint_(name=n, host=h, port=p, security_protocol=0) for n, h, p, _ in self._endpoints()),
                features=(Feature(name="metadata.version", min_supported_version=1, max_supported_version=25),),
                rack=self.config.get("broker.rack"), is_migrating_zk_broker=False, log_dirs=(), previous_broker_epoch=-1)
            response = await channel.request(request)
            error, epoch = response.error_code, response.broker_epoch
        if error != ErrorCode.none:
            logger.info("[node %d] broker registration refused: %s", self.node_id, ErrorCode(error).name)
            return None
        return epoch

    async def _heartbeat(self, controller: ActiveController, channel: ControllerChannel, epoch: int,
                         want_shut_down: bool = False) -> tuple:
        offset = self.publisher.applied_offset
        if channel.is_active():
            answer = await controller.heartbeat(self.node_id, epoch, offset, False, want_shut_down)
            return answer.error_code, answer.is_fenced
        from kio.schema.broker_heartbeat.v1.request import BrokerHeartbeatRequest

        response = await channel.request(BrokerHeartbeatRequest(
            broker_id=self.node_id, broker_epoch=epoch, current_metadata_offset=offset, want_fence=False,
            want_shut_down=want_shut_down, offline_log_dirs=()))
        return response.error_code, response.is_fenced
