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
- Leading a partition, this node keeps a ``LeaderState`` (kraft.broker.replication): the
  followers' progress from their fetches, the high watermark (the smallest log end of the
  ISR) and the ISR changes it proposes to the controller. A new leader epoch starts a new
  state; an ISR change within the epoch (the controller's, or ours committed) updates it.
- Following a partition, this node fetches it from its leader (``following``, read by the
  replica fetchers, kraft.broker.fetcher); a partition without a leader is not fetched.
- ``on_progress`` is called when a high watermark advances, so waiting fetches and acks=all
  produces look again; ``on_isr_change`` when a leader has an ISR change to send.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Callable

import trio

from kio.schema.errors import ErrorCode

from storage.config import LogConfig
from storage.manager import LogManager

from ..config import ServerConfig, effective_topic_config
from ..metadata import ImageDelta, MetadataImage, PartitionImage
from .replication import IsrChange, LeaderState

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
    leader_state: LeaderState | None = None

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
    def __init__(self, node_id: int, config: ServerConfig, logs: LogManager,
                 clock_ms: Callable[[], int] | None = None) -> None:
        self.node_id = node_id
        self._config = config
        self.logs = logs
        self._partitions: dict[tuple[str, int], Partition] = {}
        self._configs: dict[str, dict[str, str]] = {}
        self.clock_ms = clock_ms or (lambda: int(time.monotonic() * 1000))
        self.following: dict[tuple[str, int], int] = {}  # partition -> the leader it is fetched from
        self.on_progress: Callable[[], None] = lambda: None
        self.on_following_changed: Callable[[], None] = lambda: None
        self.on_isr_change: Callable[[Partition, IsrChange], None] = lambda partition, change: None
        self._progress = trio.Event()

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
            self._take_role(existing)

    def _take_role(self, partition: Partition) -> None:
        """Leader or follower as the partition's state says (Kafka's makeLeader/makeFollower)."""
        state, key = partition.state, (partition.topic, partition.index)
        if state.leader == self.node_id:
            leader = partition.leader_state
            if leader is None or leader.leader_epoch != state.leader_epoch:
                partition.log.assign_epoch_start(state.leader_epoch)  # Kafka's maybeAssignEpochStartOffset
                partition.leader_state = LeaderState.become_leader(
                    self.node_id, state.replicas, state.isr, state.leader_epoch, state.partition_epoch,
                    partition.log.log_end_offset, self.clock_ms())
                logger.info("[node %d] leading %s-%d in leader epoch %d (ISR %s, log end %d, high watermark %d)",
                            self.node_id, partition.topic, partition.index, state.leader_epoch, list(state.isr),
                            partition.log.log_end_offset, partition.log.high_watermark)
            else:
                leader.update_from_metadata(state.replicas, state.isr, state.partition_epoch)
            if self.following.pop(key, None) is not None:
                self.on_following_changed()
            self.advance_high_watermark(partition)
            return
        if partition.leader_state is not None:
            partition.leader_state = None
            self._signal_progress()  # writes waiting on this leader answer now
        wanted = state.leader if state.leader >= 0 else None
        if self.following.get(key) != wanted:
            if wanted is None:
                self.following.pop(key, None)
            else:
                self.following[key] = wanted
            self.on_following_changed()

    # ----- the leader's side of replication -----------------------------------------------

    def advance_high_watermark(self, partition: Partition) -> bool:
        """Move a leader's high watermark up to what its ISR holds; True if it moved."""
        leader, log = partition.leader_state, partition.log
        if leader is None:
            return False
        high_watermark = leader.high_watermark(log.log_end_offset, log.high_watermark)
        if high_watermark <= log.high_watermark:
            return False
        log.high_watermark = high_watermark
        self._signal_progress()
        return True

    def _signal_progress(self) -> None:
        self.on_progress()
        event, self._progress = self._progress, trio.Event()
        event.set()

    def replication_status(self, partition: Partition, leader_epoch: int, required_offset: int) -> ErrorCode | None:
        """Where an acks=-1 write ending before ``required_offset`` stands: None while it
        waits for the ISR, else its answer."""
        current = self._partitions.get((partition.topic, partition.index))
        if current is not partition or partition.leader_state is None or partition.leader_epoch != leader_epoch:
            return ErrorCode.not_leader_or_follower
        if partition.log.high_watermark < required_offset:
            return None
        if len(self.in_sync_replicas(partition)) < self.min_insync_replicas(partition):
            return ErrorCode.not_enough_replicas_after_append
        return ErrorCode.none

    async def wait_replicated(self, partition: Partition, leader_epoch: int, required_offset: int,
                              deadline: float) -> ErrorCode:
        """Wait (until the trio-clock ``deadline``) for an acks=-1 write to be committed."""
        while True:
            progress = self._progress
            status = self.replication_status(partition, leader_epoch, required_offset)
            if status is not None:
                return status
            if trio.current_time() >= deadline:
                return ErrorCode.request_timed_out
            with trio.move_on_at(deadline):
                await progress.wait()

    def record_follower_fetch(self, partition: Partition, replica_id: int, fetch_offset: int,
                              broker_epoch: int = -1) -> None:
        """A follower fetched from ``fetch_offset``: its progress, the high watermark, and an
        ISR expansion when it has caught up."""
        leader = partition.leader_state
        if leader is None:
            return
        leader.on_follower_fetch(replica_id, fetch_offset, partition.log.log_end_offset, self.clock_ms(),
                                 broker_epoch)
        self.advance_high_watermark(partition)
        change = leader.propose_expand(partition.log.high_watermark, self.clock_ms())
        if change is not None:
            self.on_isr_change(partition, change)

    def shrink_isrs(self) -> None:
        """Propose to drop the followers that fell behind for ``replica.lag.time.max.ms``."""
        lag_max_ms, now_ms = self._config["replica.lag.time.max.ms"], self.clock_ms()
        for partition in self._partitions.values():
            leader = partition.leader_state
            if leader is not None:
                change = leader.propose_shrink(now_ms, lag_max_ms)
                if change is not None:
                    logger.info("[node %d] %s-%d: followers %s are out of sync, proposing ISR %s", self.node_id,
                                partition.topic, partition.index,
                                sorted(set(leader.isr) - set(change.isr)), list(change.isr))
                    self.on_isr_change(partition, change)

    def isr_change_answered(self, partition: Partition, change: IsrChange, error_code: ErrorCode,
                            isr: tuple[int, ...] = (), leader_epoch: int = -1, partition_epoch: int = -1) -> None:
        """The controller's answer to an ISR change this leader proposed."""
        leader = partition.leader_state
        if leader is None or leader.pending is not change:
            return
        if error_code == ErrorCode.none and leader_epoch == leader.leader_epoch:
            leader.update_from_metadata(leader.replicas, isr, partition_epoch)
            leader.pending = None
            self.advance_high_watermark(partition)
        else:
            leader.change_refused(self.clock_ms())
            if error_code != ErrorCode.none:
                logger.info("[node %d] %s-%d: ISR change to %s refused: %s", self.node_id, partition.topic,
                            partition.index, list(change.isr), ErrorCode(error_code).name)

    def in_sync_replicas(self, partition: Partition) -> tuple[int, ...]:
        leader = partition.leader_state
        return leader.isr if leader is not None else partition.state.isr

    def min_insync_replicas(self, partition: Partition) -> int:
        value = self._configs.get(partition.topic, {}).get("min.insync.replicas")
        return int(value) if value is not None else self._config["min.insync.replicas"]

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
                self._take_role(existing)
        self._configs = {name: dict(image.topic_configs(name)) for name in image.topic_ids_by_name}

    def _add(self, topic: str, index: int, topic_id: str, state: PartitionImage,
             overrides: dict[str, str]) -> None:
        log = self.logs.get_or_create(topic, index, uuid.UUID(topic_id),
                                     log_config_for(self._config, overrides))
        log.high_watermark = max(log.high_watermark, 0)
        partition = self._partitions[(topic, index)] = Partition(topic, index, topic_id, state, log)
        logger.info("[node %d] hosting %s-%d (leader %d, epoch %d)", self.node_id, topic, index,
                    state.leader, state.leader_epoch)
        self._take_role(partition)

    def _remove(self, partition: Partition) -> None:
        del self._partitions[(partition.topic, partition.index)]
        if self.following.pop((partition.topic, partition.index), None) is not None:
            self.on_following_changed()
        if partition.leader_state is not None:
            partition.leader_state = None
            self._signal_progress()
        self.logs.delete(partition.topic, partition.index)
        logger.info("[node %d] deleted log of %s-%d", self.node_id, partition.topic, partition.index)
