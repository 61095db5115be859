"""The controller's decision logic: admin requests in, metadata records out.

This module is pure: it reads a ``MetadataImage`` and returns the records that carry
out a request plus a per-item result; it never writes anything itself. The active
controller appends those records to the metadata log and every broker applies them,
so the same rules hold however many nodes there are.

Rules (as Kafka's ReplicationControlManager):
- a topic name is 1-249 characters of ``[a-zA-Z0-9._-]``, not ``.`` or ``..``;
- partitions and replication factor default to ``num.partitions`` and
  ``default.replication.factor`` when the request says -1;
- replicas are placed only on registered, unfenced brokers, striped so that leaders
  spread evenly, and a replication factor above the number of usable brokers fails;
- when brokers carry racks, each partition's replicas go to distinct racks as far as the
  racks allow (see ``place_replicas``); brokers without a rack count as one rack of their own;
- every config value is validated before any record is produced, and a request with
  ``validate_only`` produces no records.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from kio.schema.errors import ErrorCode

from ..config import ConfigError, ServerConfig, topic_config_def, validate_topic_configs
from ..metadata import (
    TOPIC_RESOURCE, ConfigRecord, MetadataImage, PartitionChangeRecord, PartitionRecord, ProducerIdsRecord,
    RemoveTopicRecord, TopicRecord, new_topic_id,
)

TOPIC_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9._-]+$")
TOPIC_NAME_LENGTH_MAX = 249
PARTITIONS_MAX = 1_000_000
PRODUCER_ID_BLOCK_SIZE = 1000
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state", "__share_group_state"})


@dataclass(frozen=True, slots=True)
class NewTopic:
    name: str
    num_partitions: int = -1
    replication_factor: int = -1
    assignments: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    configs: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TopicResult:
    name: str
    error_code: ErrorCode = ErrorCode.none
    error_message: str | None = None
    topic_id: str | None = None
    num_partitions: int = -1
    replication_factor: int = -1


@dataclass(frozen=True, slots=True)
class ConfigChange:
    name: str
    value: str | None
    operation: int = 0  # 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT (IncrementalAlterConfigs)


class ControllerError(Exception):
    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


def validate_topic_name(name: str) -> None:
    if not name or name in (".", ".."):
        raise ControllerError(ErrorCode.invalid_topic_exception, f"Topic name '{name}' is illegal")
    if len(name) > TOPIC_NAME_LENGTH_MAX:
        raise ControllerError(
            ErrorCode.invalid_topic_exception,
            f"Topic name is illegal, it can't be longer than {TOPIC_NAME_LENGTH_MAX} characters,"
            f" topic name: {name}",
        )
    if not TOPIC_NAME_PATTERN.match(name):
        raise ControllerError(
            ErrorCode.invalid_topic_exception,
            f"Topic name '{name}' is illegal, it contains a character other than ASCII"
            " alphanumerics, '.', '_' and '-'",
        )


def usable_brokers(image: MetadataImage) -> list[int]:
    return sorted(b.broker_id for b in image.brokers.values() if not b.fenced)


def broker_racks(image: MetadataImage) -> dict[int, str | None]:
    """Each registered broker's rack (``broker.rack``), None where it has none."""
    return {b.broker_id: b.rack for b in image.brokers.values()}


def place_replicas(
    brokers: Sequence[int], first_partition: int, count: int, replication_factor: int,
    rng: random.Random, racks: Mapping[int, str | None] | None = None,
) -> list[tuple[int, ...]]:
    """Striped placement: partition p starts at a rotating broker so leaders spread.

    Without racks the stripe is the sorted broker list and the followers are the brokers after
    the leader in it. With racks (any broker in ``brokers`` having one in ``racks``) the stripe
    alternates racks, as Kafka's rack-alternated broker list and StripedReplicaPlacer do: one
    broker from each rack in turn, then the next broker of each rack. Leaders still rotate over
    the stripe, so every broker leads the same number of partitions, give or take one; the
    followers go round the racks after the leader's, so RF <= number of racks puts every replica
    on a rack of its own, and a larger RF uses every rack before a rack holds a second replica.
    """
    if replication_factor > len(brokers):
        raise ControllerError(
            ErrorCode.invalid_replication_factor,
            f"Unable to replicate the partition {replication_factor} time(s): The target"
            f" replication factor of {replication_factor} cannot be reached because only"
            f" {len(brokers)} broker(s) are registered.",
        )
    if racks is None or all(racks.get(b) is None for b in brokers):
        start = rng.randrange(len(brokers))
        result = []
        for index in range(first_partition, first_partition + count):
            first = (start + index) % len(brokers)
            result.append(tuple(brokers[(first + r) % len(brokers)] for r in range(replication_factor)))
        return result
    return _place_rack_aware(brokers, racks, first_partition, count, replication_factor, rng)


def _place_rack_aware(
    brokers: Sequence[int], racks: Mapping[int, str | None], first_partition: int, count: int,
    replication_factor: int, rng: random.Random,
) -> list[tuple[int, ...]]:
    # Racks in name order (None, brokers without a rack, first), brokers by id within a rack,
    # so a seeded rng alone decides the layout.
    members: dict[str | None, list[int]] = {}
    for broker in sorted(brokers):
        members.setdefault(racks.get(broker), []).append(broker)
    rack_order = sorted(members, key=lambda rack: (rack is not None, rack or ""))
    rack_members = [members[rack] for rack in rack_order]
    rack_of = {broker: index for index, group in enumerate(rack_members) for broker in group}
    depth = max(len(group) for group in rack_members)
    stripe = [group[i] for i in range(depth) for group in rack_members if i < len(group)]
    start = rng.randrange(len(stripe))
    # Each rack hands out followers in turn from its own rotating cursor, so followers spread
    # over a rack's brokers as leaders do over the stripe.
    cursors = [rng.randrange(len(group)) for group in rack_members]
    result = []
    for index in range(first_partition, first_partition + count):
        leader = stripe[(start + index) % len(stripe)]
        replicas = [leader]
        rack_index = rack_of[leader]
        while len(replicas) < replication_factor:
            rack_index = (rack_index + 1) % len(rack_members)
            group = rack_members[rack_index]
            for step in range(len(group)):
                candidate = group[(cursors[rack_index] + step) % len(group)]
                if candidate not in replicas:
                    replicas.append(candidate)
                    cursors[rack_index] = (cursors[rack_index] + step + 1) % len(group)
                    break
        result.append(tuple(replicas))
    return result


class ControllerLogic:
    """Turns admin requests into records against the current committed image."""

    def __init__(self, config: ServerConfig, rng: random.Random | None = None) -> None:
        self._config = config
        self._rng = rng or random.Random()

    def create_topics(
        self, image: MetadataImage, topics: Sequence[NewTopic], validate_only: bool = False,
    ) -> tuple[list, list[TopicResult]]:
        records: list = []
        results: list[TopicResult] = []
        seen: set[str] = set()
        for topic in topics:
            if topic.name in seen:
                results.append(TopicResult(
                    topic.name, ErrorCode.invalid_request,
                    f"Duplicate topic name {topic.name} in the request."))
                continue
            seen.add(topic.name)
            try:
                topic_records, result = self._create_topic(image, topic)
            except ControllerError as error:
                results.append(TopicResult(topic.name, error.error_code, error.message))
                continue
            if not validate_only:
                records.extend(topic_records)
            results.append(result)
        return records, results

    def _create_topic(self, image: MetadataImage, topic: NewTopic) -> tuple[list, TopicResult]:
        validate_topic_name(topic.name)
        if image.topic(topic.name) is not None:
            raise ControllerError(
                ErrorCode.topic_already_exists, f"Topic '{topic.name}' already exists.")
        configs = self._validated_configs(topic.configs)
        assignments = self._assignments(image, topic)
        topic_id = new_topic_id(self._rng)
        records: list = [TopicRecord(topic.name, topic_id)]
        for key, value in sorted(configs.items()):
            records.append(ConfigRecord(TOPIC_RESOURCE, topic.name, key, value))
        for partition_id, replicas in enumerate(assignments):
            records.append(PartitionRecord(topic_id, partition_id, replicas, replicas, replicas[0]))
        result = TopicResult(
            topic.name, topic_id=topic_id, num_partitions=len(assignments),
            replication_factor=len(assignments[0]),
        )
        return records, result

    def _validated_configs(self, configs: Mapping[str, str | None]) -> dict[str, str]:
        nulls = sorted(key for key, value in configs.items() if value is None)
        if nulls:
            raise ControllerError(ErrorCode.invalid_config,
                                  f"Null value not supported for topic configs: {', '.join(nulls)}")
        try:
            return validate_topic_configs(configs, self._config)
        except ConfigError as error:
            raise ControllerError(ErrorCode.invalid_config, str(error)) from None

    def _assignments(self, image: MetadataImage, topic: NewTopic) -> list[tuple[int, ...]]:
        if topic.assignments:
            if topic.num_partitions != -1 or topic.replication_factor != -1:
                raise ControllerError(
                    ErrorCode.invalid_request,
                    "Both numPartitions or replicationFactor and replicasAssignments were set."
                    " Both cannot be used at the same time.")
            return self._manual_assignments(image, topic.assignments)
        partitions = topic.num_partitions
        if partitions == -1:
            partitions = self._config["num.partitions"]
        replication_factor = topic.replication_factor
        if replication_factor == -1:
            replication_factor = self._config["default.replication.factor"]
        if partitions <= 0 or partitions > PARTITIONS_MAX:
            raise ControllerError(
                ErrorCode.invalid_partitions, "Number of partitions was set to an invalid non-positive value.")
        if replication_factor <= 0:
            raise ControllerError(
                ErrorCode.invalid_replication_factor, "Replication factor must be larger than 0.")
        return place_replicas(usable_brokers(image), 0, partitions, replication_factor, self._rng,
                              broker_racks(image))

    def _manual_assignments(
        self, image: MetadataImage, assignments: Mapping[int, tuple[int, ...]],
    ) -> list[tuple[int, ...]]:
        if sorted(assignments) != list(range(len(assignments))):
            raise ControllerError(
                ErrorCode.invalid_replica_assignment,
                "Partitions should be a consecutive 0-based integer sequence")
        result = []
        for index in range(len(assignments)):
            replicas = tuple(assignments[index])
            if not replicas or len(set(replicas)) != len(replicas):
                raise ControllerError(
                    ErrorCode.invalid_replica_assignment,
                    f"Duplicate or empty replica assignment for partition {index}")
            unknown = [r for r in replicas if r not in image.brokers]
            if unknown:
                raise ControllerError(
                    ErrorCode.invalid_replica_assignment,
                    f"The manual partition assignment includes broker {unknown[0]}, but no"
                    " broker with that id is registered.")
            result.append(replicas)
        return result

    def delete_topics(self, image: MetadataImage, names: Sequence[str]) -> tuple[list, list[TopicResult]]:
        records: list = []
        results: list[TopicResult] = []
        for name in names:
            topic = image.topic(name)
            if not self._config["delete.topic.enable"]:
                results.append(TopicResult(name, ErrorCode.topic_deletion_disabled,
                                           "Topic deletion is disabled."))
            elif topic is None:
                results.append(TopicResult(name, ErrorCode.unknown_topic_or_partition,
                                           "This server does not host this topic-partition."))
            else:
                records.append(RemoveTopicRecord(topic.topic_id))
                results.append(TopicResult(name, topic_id=topic.topic_id))
        return records, results

    def create_partitions(
        self, image: MetadataImage, name: str, count: int,
        assignments: Sequence[tuple[int, ...]] | None, validate_only: bool,
    ) -> list:
        topic = image.topic(name)
        if topic is None:
            raise ControllerError(ErrorCode.unknown_topic_or_partition,
                                  f"The topic '{name}' does not exist.")
        current = len(topic.partitions)
        if count < current:
            raise ControllerError(ErrorCode.invalid_partitions,
                                  f"The topic {name} currently has {current} partition(s); {count}"
                                  " would not be an increase.")
        if count == current:
            raise ControllerError(ErrorCode.invalid_partitions,
                                  f"Topic already has {current} partition(s).")
        replication_factor = len(topic.partitions[0].replicas)
        if assignments:
            if len(assignments) != count - current:
                raise ControllerError(
                    ErrorCode.invalid_replica_assignment,
                    f"Attempted to add {count - current} additional partition(s), but only"
                    f" {len(assignments)} assignment(s) were specified.")
            placed = self._manual_assignments(
                image, {i: tuple(a) for i, a in enumerate(assignments)})
        else:
            placed = place_replicas(usable_brokers(image), current, count - current,
                                    replication_factor, self._rng, broker_racks(image))
        if validate_only:
            return []
        return [
            PartitionRecord(topic.topic_id, current + index, replicas, replicas, replicas[0])
            for index, replicas in enumerate(placed)
        ]

    def alter_topic_configs(
        self, image: MetadataImage, name: str, changes: Sequence[ConfigChange], incremental: bool,
    ) -> list:
        # As Kafka's controller, the values are checked before whether the topic exists.
        current = dict(image.topic_configs(name))
        wanted = dict(current) if incremental else {}
        for change in changes:
            definition = topic_config_def(change.name)
            if change.operation in (2, 3) and (definition is None or definition.type != "list"):
                raise ControllerError(ErrorCode.invalid_config,
                                      f"Can't {'APPEND' if change.operation == 2 else 'SUBTRACT'} to key"
                                      f" {change.name} because its type is not LIST.")
            wanted = _apply_change(wanted, change)
        wanted = self._validated_configs(wanted)
        if image.topic(name) is None:
            raise ControllerError(ErrorCode.unknown_topic_or_partition,
                                  f"The topic '{name}' does not exist.")
        records = []
        for key in sorted(set(current) | set(wanted)):
            if current.get(key) != wanted.get(key):
                records.append(ConfigRecord(TOPIC_RESOURCE, name, key, wanted.get(key)))
        return records

    def allocate_producer_ids(self, image: MetadataImage, broker_id: int, broker_epoch: int) -> tuple[list, int]:
        start = image.next_producer_id
        return [ProducerIdsRecord(broker_id, broker_epoch, start + PRODUCER_ID_BLOCK_SIZE)], start


@dataclass(frozen=True, slots=True)
class IsrRequest:
    """One partition of an AlterPartition request: the leader's view and the ISR it wants,
    as (broker id, broker epoch) pairs (epoch -1: not checked)."""
    topic_id: str
    partition_index: int
    leader_epoch: int
    partition_epoch: int
    new_isr: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class IsrResult:
    topic_id: str
    partition_index: int
    error_code: ErrorCode = ErrorCode.none
    leader_id: int = -1
    leader_epoch: int = -1
    isr: tuple[int, ...] = ()
    partition_epoch: int = -1


def alter_partition(image: MetadataImage, broker_id: int, broker_epoch: int,
                    items: Sequence[IsrRequest]) -> tuple[ErrorCode, list, list[IsrResult]]:
    """AlterPartition, as Kafka's ReplicationControlManager validates it: (top-level error,
    records, per-partition results). A partition's result carries the state it has once the
    records are applied (its partition epoch moves by one per PartitionChangeRecord)."""
    requester = image.brokers.get(broker_id)
    if requester is None or (broker_epoch != -1 and requester.broker_epoch != broker_epoch):
        return ErrorCode.stale_broker_epoch, [], []
    records: list = []
    results: list[IsrResult] = []
    for item in items:
        topic = image.topics_by_id.get(item.topic_id)
        if topic is None:
            results.append(IsrResult(item.topic_id, item.partition_index, ErrorCode.unknown_topic_id))
            continue
        partition = topic.partitions.get(item.partition_index)
        error = _validate_isr_request(image, broker_id, partition, item)
        if error != ErrorCode.none:
            results.append(IsrResult(item.topic_id, item.partition_index, error))
            continue
        new_isr = tuple(replica for replica, _ in item.new_isr)
        partition_epoch = partition.partition_epoch
        if new_isr != partition.isr:
            records.append(PartitionChangeRecord(item.topic_id, item.partition_index, isr=new_isr))
            partition_epoch += 1
        results.append(IsrResult(item.topic_id, item.partition_index, ErrorCode.none, partition.leader,
                                 partition.leader_epoch, new_isr, partition_epoch))
    return ErrorCode.none, records, results


def _validate_isr_request(image: MetadataImage, broker_id: int, partition, item: IsrRequest) -> ErrorCode:
    if partition is None:
        return ErrorCode.unknown_topic_or_partition
    # A leader that knows newer epochs than this controller talks to a deposed controller.
    if item.leader_epoch > partition.leader_epoch or item.partition_epoch > partition.partition_epoch:
        return ErrorCode.not_controller
    if item.leader_epoch < partition.leader_epoch:
        return ErrorCode.fenced_leader_epoch
    if broker_id != partition.leader:
        return ErrorCode.invalid_request
    if item.partition_epoch < partition.partition_epoch:
        return ErrorCode.invalid_update_version
    new_isr = [replica for replica, _ in item.new_isr]
    if (not new_isr or len(set(new_isr)) != len(new_isr) or any(r not in partition.replicas for r in new_isr)
            or partition.leader not in new_isr):
        return ErrorCode.invalid_request
    for replica, epoch in item.new_isr:
        broker = image.brokers.get(replica)
        if broker is None or broker.fenced or (epoch != -1 and broker.broker_epoch != epoch):
            return ErrorCode.ineligible_replica
    return ErrorCode.none


PREFERRED_ELECTION, UNCLEAN_ELECTION = 0, 1


def elect_leaders(image: MetadataImage, election_type: int,
                  partitions: Sequence[tuple[str, int]] | None) -> tuple[list, dict[str, list]]:
    """ElectLeaders, as Kafka's ReplicationControlManager.electLeaders: (records, results by
    topic as (partition, error, message)). PREFERRED moves the leadership to the first replica
    when it is in the ISR and unfenced; UNCLEAN gives a leaderless partition a leader from the
    ISR, else from any unfenced replica (an operator's explicit choice, whatever the topic's
    config). Asked for every partition (``partitions`` None), it leaves out those that need no
    election."""
    usable = set(usable_brokers(image))
    records: list = []
    results: dict[str, list] = {}
    wanted = partitions
    if wanted is None:
        wanted = [(name, index) for name in sorted(image.topic_ids_by_name)
                  for index in sorted(image.topic(name).partitions)]
        for name in image.topic_ids_by_name:
            results[name] = []
    for name, index in wanted:
        error, message, record = _elect(image, usable, election_type, name, index)
        if record is not None:
            records.append(record)
        if partitions is not None or error != ErrorCode.election_not_needed:
            results.setdefault(name, []).append((index, error, message))
    return records, results


def _elect(image: MetadataImage, usable: set[int], election_type: int, name: str, index: int):
    topic = image.topic(name)
    partition = topic.partitions.get(index) if topic is not None else None
    if partition is None:
        return ErrorCode.unknown_topic_or_partition, f"No such partition as {name}-{index}", None
    if election_type == PREFERRED_ELECTION:
        preferred = partition.replicas[0]
        if partition.leader == preferred:
            return ErrorCode.election_not_needed, None, None
        if preferred not in partition.isr or preferred not in usable:
            return ErrorCode.preferred_leader_not_available, None, None
        return ErrorCode.none, None, PartitionChangeRecord(topic.topic_id, index, leader=preferred)
    if partition.leader != -1:
        return ErrorCode.election_not_needed, None, None
    clean = next((r for r in partition.replicas if r in partition.isr and r in usable), None)
    if clean is not None:
        return ErrorCode.none, None, PartitionChangeRecord(topic.topic_id, index, leader=clean)
    unclean = next((r for r in partition.replicas if r in usable), None)
    if unclean is None:
        return ErrorCode.eligible_leaders_not_available, None, None
    return ErrorCode.none, None, PartitionChangeRecord(topic.topic_id, index, isr=(unclean,), leader=unclean)


def _apply_change(configs: dict[str, str], change: ConfigChange) -> dict[str, str]:
    if change.operation == 0:
        if change.value is None:
            configs.pop(change.name, None)
        else:
            configs[change.name] = change.value
    elif change.operation == 1:
        configs.pop(change.name, None)
    elif change.operation in (2, 3):
        items = [item for item in configs.get(change.name, "").split(",") if item]
        values = [item for item in (change.value or "").split(",") if item]
        if change.operation == 2:
            items += [v for v in values if v not in items]
        else:
            items = [item for item in items if item not in values]
        if items:
            configs[change.name] = ",".join(items)
        else:
            configs.pop(change.name, None)
    else:
        raise ControllerError(ErrorCode.invalid_request, f"Unknown config operation {change.operation}")
    return configs
