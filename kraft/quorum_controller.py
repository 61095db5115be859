"""The active controller's runtime: one writer turning decisions into committed records.

Writes are serialized by one lock so every decision is made against the image that
includes all earlier committed writes; the records are appended to the metadata quorum
(fsync in a worker thread) and, once committed, applied to the shared image, so the
broker half of the node sees the change before the admin request is answered.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import trio

from .config import ServerConfig
from .controller import ConfigChange, ControllerError, ControllerLogic, NewTopic, TopicResult
from .metadata import MetadataImage, RegisterBrokerRecord
from .raft import SingleVoterRaft

logger = logging.getLogger(__name__)


class MetadataPublisher:
    """Holds the current image and tells listeners about each new one."""

    def __init__(self) -> None:
        self.image = MetadataImage()
        self._listeners: list[Callable[[MetadataImage], None]] = []

    def subscribe(self, listener: Callable[[MetadataImage], None]) -> None:
        self._listeners.append(listener)
        listener(self.image)

    def publish(self, records: Sequence, offset: int) -> None:
        self.image = self.image.apply(records, offset)
        for listener in self._listeners:
            listener(self.image)


class ActiveController:
    def __init__(self, config: ServerConfig, raft: SingleVoterRaft, publisher: MetadataPublisher) -> None:
        self._logic = ControllerLogic(config)
        self._raft = raft
        self._publisher = publisher
        self._lock = trio.Lock()
        self._producer_ids: tuple[int, int] = (0, 0)  # next id, end of the block (exclusive)
        self.node_id = config.node_id

    @property
    def image(self) -> MetadataImage:
        return self._publisher.image

    async def _commit(self, records: Sequence) -> None:
        if not records:
            return
        _, last_offset = await trio.to_thread.run_sync(self._raft.append, list(records))
        self._publisher.publish(records, last_offset)

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

    async def register_broker(self, incarnation_id: str, endpoints, rack: str | None) -> int:
        async with self._lock:
            epoch = self._raft.high_watermark
            record = RegisterBrokerRecord(self.node_id, incarnation_id, epoch, tuple(endpoints),
                                          rack, fenced=False)
            await self._commit([record])
            return epoch


__all__ = ["ActiveController", "ControllerError", "MetadataPublisher"]
