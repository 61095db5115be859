"""The broker's partitions: which logs this node hosts and leads, built from the image.

Rules:
- The metadata image is the only source of truth for which partitions exist here:
  ``apply_image`` opens a log for every partition whose replicas include this node and
  deletes the logs of partitions that left the image (topic deletion). It looks only at
  what the image delta names (partitions created or changed, topics removed, topic configs
  changed), so a batch touching one partition costs the same in a cluster of any size;
  a full delta (the first image, a snapshot) rescans everything.
- A partition whose log directory is offline answers KAFKA_STORAGE_ERROR to every data
  request until a restart, as Kafka's getPartitionOrException does.
- A partition's leader epoch comes from the image; produce and fetch check the epoch a
  client sends against it (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH as Kafka).
- The high watermark is the offset every in-sync replica has; with this node as the
  only in-sync replica it is the log end offset after each append. Replication to
  followers (and an ISR larger than one) arrives with the multi-node issues.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from storage.config import LogConfig
from storage.manager import LogManager

from ..config import ServerConfig, effective_topic_config
from ..metadata import ImageDelta, MetadataImage, PartitionImage

logger = logging.getLogger(__name__)


class PartitionError(Exception):
    def __init__(self, error_code: ErrorCode, message: str = "") -> None:
        super().__init__(message or error_code.name)
        self.error_code = error_code


@dataclass
class Partition:
    topic: str
    index: int
    topic_id: str
    state: PartitionImage
    log: object  # storage.log.PartitionLog

    @property
    def leader_epoch(self) -> int:
        return self.state.leader_epoch

    def check_epoch(self, current_leader_epoch: int) -> None:
        """Kafka's rule for the client's view of the leader epoch (-1 = unknown)."""
        if current_leader_epoch < 0 or current_leader_epoch == self.leader_epoch:
            return
        if current_leader_epoch < self.leader_epoch:
            raise PartitionError(ErrorCode.fenced_leader_epoch)
        raise PartitionError(ErrorCode.unknown_leader_epoch)


def log_config_for(config: ServerConfig, overrides: dict[str, str]) -> LogConfig:
    effective = effective_topic_config(config, overrides)
    return LogConfig.from_topic_configs(effective)


class ReplicaManager:
    def __init__(self, node_id: int, config: ServerConfig, logs: LogManager) -> None:
        self.node_id = node_id
        self._config = config
        self.logs = logs
        self._partitions: dict[tuple[str, int], Partition] = {}
        self._configs: dict[str, dict[str, str]] = {}

    def partition(self, topic: str, index: int) -> Partition | None:
        return self._partitions.get((topic, index))

    def leader_partition(self, topic: str, index: int, image: MetadataImage) -> Partition:
        """The partition if this node leads it, else the Kafka error a client expects."""
        partition = self._partitions.get((topic, index))
        if partition is None:
            topic_image = image.topic(topic)
            if topic_image is None or index not in topic_image.partitions:
                raise PartitionError(ErrorCode.unknown_topic_or_partition)
            raise PartitionError(ErrorCode.not_leader_or_follower)
        if partition.log.is_offline:
            # Its log directory failed (storage.manager): Kafka answers before any other check.
            raise PartitionError(ErrorCode.kafka_storage_error, partition.log.offline_error)
        if partition.state.leader != self.node_id:
            raise PartitionError(ErrorCode.not_leader_or_follower)
        return partition

    def all_partitions(self) -> list[Partition]:
        return list(self._partitions.values())

    def apply_image(self, delta: ImageDelta, image: MetadataImage) -> None:
        """Follow the image: the partitions and topics ``delta`` names, or all of them."""
        if delta.full:
            self._apply_everything(image)
            return
        if delta.removed_topics:
            for partition in [p for p in self._partitions.values() if p.topic_id in delta.removed_topics]:
                self._remove(partition)
        for name in sorted(delta.topic_configs):
            overrides = dict(image.topic_configs(name))
            if self._configs.get(name) == overrides:
                continue
            self._configs[name] = overrides
            topic = image.topic(name)
            for index in (topic.partitions if topic is not None else ()):
                partition = self._partitions.get((name, index))
                if partition is not None:
                    partition.log.config = log_config_for(self._config, overrides)
        # After the configs, so a partition that arrives with them opens with them too.
        topics = image.topics_by_id
        for topic_id, index in sorted(delta.partitions):
            topic = topics.get(topic_id)
            if topic is not None and index in topic.partitions:
                self._follow(topic.name, index, topic_id, topic.partitions[index], image)
        for name in delta.removed_topics.values():
            if name not in image.topic_ids_by_name:
                self._configs.pop(name, None)

    def _follow(self, topic: str, index: int, topic_id: str, state: PartitionImage, image: MetadataImage) -> None:
        """One partition as the image has it: hosted here or not, with its current state."""
        existing = self._partitions.get((topic, index))
        if existing is not None and (existing.topic_id != topic_id or self.node_id not in state.replicas):
            self._remove(existing)
            existing = None
        if self.node_id not in state.replicas:
            return
        if existing is None:
            overrides = dict(image.topic_configs(topic))
            self._configs[topic] = overrides
            self._add(topic, index, topic_id, state, overrides)
        else:
            existing.state = state

    def _apply_everything(self, image: MetadataImage) -> None:
        wanted: dict[tuple[str, int], tuple[str, PartitionImage]] = {}
        for topic in image.topics_by_id.values():
            for index, state in topic.partitions.items():
                if self.node_id in state.replicas:
                    wanted[(topic.name, index)] = (topic.topic_id, state)
        for key in list(self._partitions):
            partition = self._partitions[key]
            still = wanted.get(key)
            if still is None or still[0] != partition.topic_id:
                self._remove(partition)
        for (topic, index), (topic_id, state) in wanted.items():
            overrides = dict(image.topic_configs(topic))
            existing = self._partitions.get((topic, index))
            if existing is None:
                self._add(topic, index, topic_id, state, overrides)
            else:
                existing.state = state
                if self._configs.get(topic) != overrides:
                    existing.log.config = log_config_for(self._config, overrides)
        self._configs = {name: dict(image.topic_configs(name)) for name in image.topic_ids_by_name}

    def _add(self, topic: str, index: int, topic_id: str, state: PartitionImage,
             overrides: dict[str, str]) -> None:
        log = self.logs.get_or_create(topic, index, uuid.UUID(topic_id),
                                     log_config_for(self._config, overrides))
        log.high_watermark = max(log.high_watermark, 0)
        if state.leader == self.node_id and len(state.isr) == 1:
            log.high_watermark = log.log_end_offset
        self._partitions[(topic, index)] = Partition(topic, index, topic_id, state, log)
        logger.info("[node %d] hosting %s-%d (leader %d, epoch %d)", self.node_id, topic, index,
                    state.leader, state.leader_epoch)

    def _remove(self, partition: Partition) -> None:
        del self._partitions[(partition.topic, partition.index)]
        self.logs.delete(partition.topic, partition.index)
        logger.info("[node %d] deleted log of %s-%d", self.node_id, partition.topic, partition.index)
