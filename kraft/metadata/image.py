"""The metadata image: an immutable view of the cluster built by replaying records.

Rules (after Kafka's MetadataImage/MetadataDelta): an image is never mutated; applying
records yields a new image that shares every sub-image the records did not touch. The
broker serves requests from whatever image is current, so a reader never sees a
half-applied batch of records. ``apply_delta`` also says what the records changed
(``ImageDelta``), so subscribers act on that instead of rescanning the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Iterable, Mapping

from .records import (
    TOPIC_RESOURCE, ConfigRecord, FeatureLevelRecord, FenceBrokerRecord, MetadataRecord,
    NoOpRecord, PartitionChangeRecord, PartitionRecord, ProducerIdsRecord,
    RegisterBrokerRecord, RemoveTopicRecord, TopicRecord, UnfenceBrokerRecord,
)

EMPTY: Mapping = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PartitionImage:
    partition_id: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int


@dataclass(frozen=True, slots=True)
class TopicImage:
    name: str
    topic_id: str
    partitions: Mapping[int, PartitionImage]


@dataclass(frozen=True, slots=True)
class BrokerImage:
    broker_id: int
    incarnation_id: str
    broker_epoch: int
    endpoints: tuple[tuple[str, str, int, str], ...]
    rack: str | None
    fenced: bool

    def endpoint(self, listener: str) -> tuple[str, int] | None:
        for name, host, port, _protocol in self.endpoints:
            if name == listener:
                return host, port
        return None


@dataclass(frozen=True, slots=True)
class ImageDelta:
    """What one batch of records changed, by key; ``full`` when anything may have (the first
    image a subscriber sees, a snapshot loaded), so the subscriber must look at everything.

    ``partitions`` are (topic id, partition) created or changed; ``removed_topics`` maps the
    id of each deleted topic to its name; ``topic_configs`` names the topics whose configs
    changed; ``brokers`` the broker ids registered, fenced or unfenced."""

    full: bool = False
    partitions: frozenset[tuple[str, int]] = frozenset()
    removed_topics: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    topic_configs: frozenset[str] = frozenset()
    brokers: frozenset[int] = frozenset()
    features: bool = False

    def touches_topic(self, topic_id: str) -> bool:
        return self.full or topic_id in self.removed_topics or any(t == topic_id for t, _ in self.partitions)


FULL_DELTA = ImageDelta(full=True)


@dataclass(frozen=True, slots=True)
class MetadataImage:
    offset: int = -1
    topics_by_id: Mapping[str, TopicImage] = field(default_factory=lambda: EMPTY)
    topic_ids_by_name: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    brokers: Mapping[int, BrokerImage] = field(default_factory=lambda: EMPTY)
    configs: Mapping[tuple[int, str], Mapping[str, str]] = field(default_factory=lambda: EMPTY)
    features: Mapping[str, int] = field(default_factory=lambda: EMPTY)
    next_producer_id: int = 0

    def topic(self, name: str) -> TopicImage | None:
        topic_id = self.topic_ids_by_name.get(name)
        return None if topic_id is None else self.topics_by_id[topic_id]

    def topic_configs(self, name: str) -> Mapping[str, str]:
        return self.configs.get((TOPIC_RESOURCE, name), EMPTY)

    def apply(self, records: Iterable[MetadataRecord], offset: int) -> "MetadataImage":
        return self.apply_delta(records, offset)[0]

    def apply_delta(self, records: Iterable[MetadataRecord], offset: int) -> tuple["MetadataImage", ImageDelta]:
        """The new image and what changed from this one to it."""
        delta = _Delta(self)
        for record in records:
            delta.replay(record)
        return delta.build(offset), delta.changes()


@dataclass
class _Delta:
    """Mutable scratch space for one batch of records; only ``build`` makes an image."""

    base: MetadataImage
    topics_by_id: dict[str, TopicImage] | None = None
    topic_ids_by_name: dict[str, str] | None = None
    brokers: dict[int, BrokerImage] | None = None
    configs: dict[tuple[int, str], Mapping[str, str]] | None = None
    features: dict[str, int] | None = None
    next_producer_id: int | None = None
    _partitions: dict[str, dict[int, PartitionImage]] = field(default_factory=dict)
    _changed_partitions: set[tuple[str, int]] = field(default_factory=set)
    _removed_topics: dict[str, str] = field(default_factory=dict)
    _changed_configs: set[str] = field(default_factory=set)
    _changed_brokers: set[int] = field(default_factory=set)

    def changes(self) -> ImageDelta:
        return ImageDelta(
            partitions=frozenset(p for p in self._changed_partitions if p[0] not in self._removed_topics),
            removed_topics=MappingProxyType(dict(self._removed_topics)),
            topic_configs=frozenset(self._changed_configs), brokers=frozenset(self._changed_brokers),
            features=self.features is not None)

    def _topics(self) -> tuple[dict[str, TopicImage], dict[str, str]]:
        if self.topics_by_id is None:
            self.topics_by_id = dict(self.base.topics_by_id)
            self.topic_ids_by_name = dict(self.base.topic_ids_by_name)
        return self.topics_by_id, self.topic_ids_by_name

    def _brokers(self) -> dict[int, BrokerImage]:
        if self.brokers is None:
            self.brokers = dict(self.base.brokers)
        return self.brokers

    def _partition_map(self, topic_id: str) -> dict[int, PartitionImage]:
        if topic_id not in self._partitions:
            topics, _ = self._topics()
            self._partitions[topic_id] = dict(topics[topic_id].partitions)
        return self._partitions[topic_id]

    def replay(self, record: MetadataRecord) -> None:
        handler = getattr(self, "_replay_" + type(record).__name__, None)
        assert handler is not None, f"no replay rule for {type(record).__name__}"
        handler(record)

    def _replay_TopicRecord(self, record: TopicRecord) -> None:
        topics, names = self._topics()
        topics[record.topic_id] = TopicImage(record.name, record.topic_id, EMPTY)
        names[record.name] = record.topic_id
        self._partitions[record.topic_id] = {}

    def _replay_PartitionRecord(self, record: PartitionRecord) -> None:
        partitions = self._partition_map(record.topic_id)
        partitions[record.partition_id] = PartitionImage(
            record.partition_id, tuple(record.replicas), tuple(record.isr), record.leader,
            record.leader_epoch, record.partition_epoch,
        )
        self._changed_partitions.add((record.topic_id, record.partition_id))

    def _replay_PartitionChangeRecord(self, record: PartitionChangeRecord) -> None:
        partitions = self._partition_map(record.topic_id)
        current = partitions[record.partition_id]
        changes: dict = {"partition_epoch": current.partition_epoch + 1}
        if record.isr is not None:
            changes["isr"] = tuple(record.isr)
        if record.replicas is not None:
            changes["replicas"] = tuple(record.replicas)
        if record.leader is not None and record.leader != current.leader:
            changes["leader"] = record.leader
            changes["leader_epoch"] = current.leader_epoch + 1
        partitions[record.partition_id] = replace(current, **changes)
        self._changed_partitions.add((record.topic_id, record.partition_id))

    def _replay_RemoveTopicRecord(self, record: RemoveTopicRecord) -> None:
        topics, names = self._topics()
        topic = topics.pop(record.topic_id, None)
        self._partitions.pop(record.topic_id, None)
        if topic is not None:
            self._removed_topics[record.topic_id] = topic.name
            names.pop(topic.name, None)
            if self.configs is None:
                self.configs = dict(self.base.configs)
            self.configs.pop((TOPIC_RESOURCE, topic.name), None)

    def _replay_ConfigRecord(self, record: ConfigRecord) -> None:
        if self.configs is None:
            self.configs = dict(self.base.configs)
        key = (record.resource_type, record.resource_name)
        if record.resource_type == TOPIC_RESOURCE:
            self._changed_configs.add(record.resource_name)
        entries = dict(self.configs.get(key, EMPTY))
        if record.value is None:
            entries.pop(record.name, None)
        else:
            entries[record.name] = record.value
        if entries:
            self.configs[key] = MappingProxyType(entries)
        else:
            self.configs.pop(key, None)  # a resource without overrides has no entry, as in a snapshot

    def _replay_RegisterBrokerRecord(self, record: RegisterBrokerRecord) -> None:
        self._changed_brokers.add(record.broker_id)
        self._brokers()[record.broker_id] = BrokerImage(
            record.broker_id, record.incarnation_id, record.broker_epoch,
            tuple(tuple(e) for e in record.endpoints), record.rack, record.fenced,
        )

    def _replay_FenceBrokerRecord(self, record: FenceBrokerRecord) -> None:
        self._changed_brokers.add(record.broker_id)
        brokers = self._brokers()
        if record.broker_id in brokers:
            brokers[record.broker_id] = replace(brokers[record.broker_id], fenced=True)

    def _replay_UnfenceBrokerRecord(self, record: UnfenceBrokerRecord) -> None:
        self._changed_brokers.add(record.broker_id)
        brokers = self._brokers()
        if record.broker_id in brokers:
            brokers[record.broker_id] = replace(brokers[record.broker_id], fenced=False)

    def _replay_FeatureLevelRecord(self, record: FeatureLevelRecord) -> None:
        if self.features is None:
            self.features = dict(self.base.features)
        self.features[record.name] = record.feature_level

    def _replay_ProducerIdsRecord(self, record: ProducerIdsRecord) -> None:
        self.next_producer_id = record.next_producer_id

    def _replay_NoOpRecord(self, record: NoOpRecord) -> None:
        pass

    def build(self, offset: int) -> MetadataImage:
        base = self.base
        topics_by_id = base.topics_by_id
        if self.topics_by_id is not None:
            for topic_id, partitions in self._partitions.items():
                if topic_id in self.topics_by_id:
                    topic = self.topics_by_id[topic_id]
                    self.topics_by_id[topic_id] = replace(
                        topic, partitions=MappingProxyType(dict(sorted(partitions.items())))
                    )
            topics_by_id = MappingProxyType(self.topics_by_id)
        return MetadataImage(
            offset=offset,
            topics_by_id=topics_by_id,
            topic_ids_by_name=_frozen(self.topic_ids_by_name, base.topic_ids_by_name),
            brokers=_frozen(self.brokers, base.brokers),
            configs=_frozen(self.configs, base.configs),
            features=_frozen(self.features, base.features),
            next_producer_id=(
                base.next_producer_id if self.next_producer_id is None else self.next_producer_id
            ),
        )


def _frozen(changed: dict | None, original: Mapping) -> Mapping:
    return original if changed is None else MappingProxyType(changed)
