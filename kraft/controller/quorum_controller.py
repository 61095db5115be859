"""The active controller's runtime: one writer turning decisions into committed records.

Writes are serialized by one lock so every decision is made against the image that
includes all earlier committed writes; the records go to the metadata quorum through a
``MetadataLog`` and the call returns only once they are committed and applied to the
shared image, so the broker half of the node sees the change before the admin request
is answered. The log is the Raft quorum (``QuorumLog``: committed when a majority of the
voters has it, which for a standalone node is this node alone, and applied by the driver's
commit callback on every node alike).
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Sequence

import trio

from kio.schema.errors import ErrorCode

from .cluster_control import BrokerLifecycle, HeartbeatAnswer
from ..config import ServerConfig
from .control import (
    PREFERRED_ELECTION, UNCLEAN_ELECTION, ConfigChange, ControllerError, ControllerLogic, IsrRequest, IsrResult,
    NewTopic, TopicResult, alter_partition, elect_leaders,
)
from ..metadata import FULL_DELTA, ImageDelta, MetadataImage, MetadataLoader, MetadataRecordError, encode_records

logger = logging.getLogger(__name__)


class MetadataPublisher:
    """Holds the current image and tells listeners about each new one, with what changed.

    Listeners are called with (delta, new image), as Kafka's ``MetadataPublisher``s are: a
    new subscriber first gets ``FULL_DELTA`` with the current image, and so does every
    listener when a snapshot replaces the image; otherwise the delta names exactly what the
    batch of records changed, so a listener's work follows the change, not the image size.
    The image comes from a ``MetadataLoader`` (the simulation runs the same one);
    ``applied_offset`` counts every committed entry, control entries included, so a writer
    can wait until its own entry has been applied (``wait_applied``)."""

    def __init__(self) -> None:
        self.loader = MetadataLoader()
        self._listeners: list[Callable[[ImageDelta, MetadataImage], None]] = []
        self._applied = trio.Event()

    @property
    def image(self) -> MetadataImage:
        return self.loader.image

    @property
    def applied_offset(self) -> int:
        return self.loader.applied_offset

    @property
    def bytes_since_snapshot(self) -> int:
        return self.loader.bytes_since_snapshot

    def snapshot_taken(self) -> None:
        self.loader.bytes_since_snapshot = 0

    def subscribe(self, listener: Callable[[ImageDelta, MetadataImage], None]) -> None:
        self._listeners.append(listener)
        listener(FULL_DELTA, self.image)

    def _notify(self, delta: ImageDelta | None) -> None:
        if delta is not None:
            for listener in self._listeners:
                listener(delta, self.image)
        self._applied.set()
        self._applied = trio.Event()

    def apply_entries(self, entries: Sequence) -> None:
        """The Raft driver's commit callback: committed entries in offset order."""
        try:
            delta = self.loader.apply_entries(entries)
        except MetadataRecordError:
            logger.exception("the metadata log is unreadable")
            raise
        self._notify(delta)

    def load_snapshot(self, data: bytes, end_offset: int) -> None:
        """Replace the image by a snapshot's (the Raft driver's snapshot callback)."""
        self.loader.load_snapshot(data, end_offset)
        self._notify(FULL_DELTA)

    async def wait_applied(self, offset: int) -> None:
        while self.applied_offset < offset:
            await self._applied.wait()


class QuorumLog:
    """The Raft quorum: appended through the driver, applied by its commit callback."""

    def __init__(self, driver, publisher: MetadataPublisher) -> None:
        self._driver = driver
        self._publisher = publisher

    @property
    def high_watermark(self) -> int:
        return self._driver.high_watermark

    def is_leader(self) -> bool:
        return self._driver.is_leader

    async def commit(self, records: Sequence) -> int:
        offset = await self._driver.append(encode_records(list(records)))
        await self._publisher.wait_applied(offset)
        return offset


class ActiveController:
    def __init__(self, config: ServerConfig, log, publisher: MetadataPublisher) -> None:
        self._logic = ControllerLogic(config)
        self._log = log
        self._publisher = publisher
        self._lock = trio.Lock()
        self._producer_ids: tuple[int, int] = (0, 0)  # next id, end of the block (exclusive)
        self.node_id = config.node_id
        self._unclean = config["unclean.leader.election.enable"]
        self.lifecycle = BrokerLifecycle(config["broker.session.timeout.ms"], self._unclean)

    @property
    def image(self) -> MetadataImage:
        return self._publisher.image

    async def _commit(self, records: Sequence) -> None:
        if records:
            await self._log.commit(records)

    async def write_bootstrap(self, records: Sequence) -> None:
        async with self._lock:
            await self._commit(records)

    async def create_topics(self, topics: Sequence[NewTopic], validate_only: bool) -> list[TopicResult]:
        async with self._lock:
            records, results = self._logic.create_topics(self.image, topics, validate_only)
            await self._commit(records)
        for result in results:
            if result.error_code == 0:
                logger.info("[node %d] created topic %s (%d partitions)", self.node_id, result.name,
                            result.num_partitions)
        return results

    async def delete_topics(self, names: Sequence[str]) -> list[TopicResult]:
        async with self._lock:
            records, results = self._logic.delete_topics(self.image, names)
            await self._commit(records)
        return results

    async def create_partitions(self, name: str, count: int, assignments, validate_only: bool) -> None:
        async with self._lock:
            records = self._logic.create_partitions(self.image, name, count, assignments, validate_only)
            await self._commit(records)

    async def alter_topic_configs(self, name: str, changes: Sequence[ConfigChange], incremental: bool,
                                  validate_only: bool) -> None:
        async with self._lock:
            records = self._logic.alter_topic_configs(self.image, name, changes, incremental)
            if not validate_only:
                await self._commit(records)
        # Turned on, unclean election gives the topic's leaderless partitions a leader now, as
        # Kafka's controller does.
        image = self.image
        topic = image.topic(name)
        if (not validate_only and topic is not None and self.lifecycle.unclean_allowed(image, name)
                and any(c.name == "unclean.leader.election.enable" for c in changes)):
            leaderless = [(name, index) for index, p in sorted(topic.partitions.items()) if p.leader == -1]
            if leaderless:
                await self.elect_leaders(UNCLEAN_ELECTION, leaderless)

    async def next_producer_id(self) -> int:
        """One producer id, from a block allocated through the metadata log."""
        async with self._lock:
            next_id, end = self._producer_ids
            if next_id >= end:
                broker = self.image.brokers.get(self.node_id)
                epoch = broker.broker_epoch if broker else -1
                records, start = self._logic.allocate_producer_ids(self.image, self.node_id, epoch)
                await self._commit(records)
                next_id, end = start, records[0].next_producer_id
            self._producer_ids = (next_id + 1, end)
            return next_id

    async def alter_partition(self, broker_id: int, broker_epoch: int,
                              items: Sequence[IsrRequest]) -> tuple[ErrorCode, list[IsrResult]]:
        """AlterPartition from a partition leader: ISR changes, committed before the answer."""
        async with self._lock:
            error, records, results = alter_partition(self.image, broker_id, broker_epoch, items)
            await self._commit(records)
        for result in results:
            if result.error_code == ErrorCode.none:
                topic = self.image.topics_by_id.get(result.topic_id)
                logger.info("[node %d] ISR of %s-%d is now %s (partition epoch %d, from broker %d)", self.node_id,
                            topic.name if topic else result.topic_id, result.partition_index, list(result.isr),
                            result.partition_epoch, broker_id)
        return error, results

    async def elect_leaders(self, election_type: int,
                            partitions: Sequence[tuple[str, int]] | None) -> dict[str, list]:
        async with self._lock:
            records, results = elect_leaders(self.image, election_type, partitions)
            await self._commit(records)
        if records:
            logger.info("[node %d] %s leader election moved %d partitions", self.node_id,
                        "preferred" if election_type == PREFERRED_ELECTION else "unclean", len(records))
        return results

    async def balance_leaders(self) -> None:
        """``auto.leader.rebalance.enable``: leadership back to each partition's first replica
        wherever it can lead (a preferred election of every partition)."""
        await self.elect_leaders(PREFERRED_ELECTION, None)

    # ----- brokers (BrokerRegistration, BrokerHeartbeat) -------------------------------------

    def reset_broker_sessions(self, session_timeout_ms: int) -> None:
        """A newly active controller gives every broker a full session (as Kafka does)."""
        self.lifecycle = BrokerLifecycle(session_timeout_ms, self._unclean)

    async def register(self, broker_id: int, incarnation_id: str, endpoints, rack: str | None,
                       *, from_this_node: bool = False) -> tuple:
        """``from_this_node``: the broker half of this very process (see BrokerLifecycle)."""
        async with self._lock:
            error, records, epoch = self.lifecycle.register(
                self.image, broker_id, incarnation_id, tuple(endpoints), rack, self._log.high_watermark,
                wall_clock_ms(), from_this_node=from_this_node and broker_id == self.node_id)
            await self._commit(records)
        if error == 0:
            logger.info("[node %d] registered broker %d with epoch %d", self.node_id, broker_id, epoch)
        return error, epoch

    async def heartbeat(self, broker_id: int, broker_epoch: int, metadata_offset: int,
                        want_fence: bool, want_shut_down: bool) -> HeartbeatAnswer:
        async with self._lock:
            answer, records = self.lifecycle.heartbeat(self.image, broker_id, broker_epoch, metadata_offset,
                                                       want_fence, want_shut_down, wall_clock_ms())
            await self._commit(records)
        if records:
            logger.info("[node %d] broker %d is now %s", self.node_id, broker_id,
                        "fenced" if answer.is_fenced else "unfenced")
        return answer

    async def fence_expired_brokers(self) -> None:
        async with self._lock:
            records = self.lifecycle.expired(self.image, wall_clock_ms())
            if records:
                logger.warning("[node %d] fencing brokers whose sessions expired: %s", self.node_id,
                               sorted({r.broker_id for r in records if hasattr(r, "broker_epoch")}))
            await self._commit(records)


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


__all__ = ["ActiveController", "ControllerError", "MetadataPublisher"]
