"""The controller's rules for broker membership: registration, heartbeats, fencing, and
the partition leadership changes fencing implies (after Kafka's ClusterControlManager,
BrokerHeartbeatManager and ReplicationControlManager).

Rules:
- A broker registers with an incarnation id; its broker epoch is the offset of the log
  entry holding its registration (one write is one entry), so a restarted broker always
  has a higher epoch. A second
  registration with another incarnation is refused while the first one is alive
  (DUPLICATE_BROKER_REGISTRATION), and is accepted once its session has expired.
- A registered broker starts fenced; it is unfenced by a heartbeat that shows it has
  caught up with the metadata log to its registration, and fenced again when
  heartbeats stop for ``broker.session.timeout.ms`` or when it asks to be.
- Fencing a broker moves every partition it leads to the first other in-sync replica
  that is unfenced, and takes it out of the in-sync sets; a partition whose only
  in-sync replica is fenced keeps that ISR with no leader (-1) until it returns. Only
  where ``unclean.leader.election.enable`` is true (the topic's config, else the
  controller's) does such a partition go to an unfenced replica outside the ISR, which
  then is the whole ISR: it may lack acknowledged writes, as in Kafka.
- Heartbeat times live only in the active controller's memory: a new active controller
  gives every broker a full session before fencing it, as Kafka does.
This module is pure: it returns records and answers, and never writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from ..metadata import (
    FenceBrokerRecord, MetadataImage, PartitionChangeRecord, RegisterBrokerRecord,
    UnfenceBrokerRecord,
)


@dataclass(frozen=True, slots=True)
class HeartbeatAnswer:
    error_code: ErrorCode
    is_caught_up: bool = False
    is_fenced: bool = True
    should_shut_down: bool = False


class BrokerLifecycle:
    def __init__(self, session_timeout_ms: int, unclean_leader_election: bool = False) -> None:
        self.session_timeout_ms = session_timeout_ms
        self.unclean_leader_election = unclean_leader_election
        self.last_heartbeat_ms: dict[int, int] = {}
        self.registration_offset: dict[int, int] = {}

    def _alive(self, broker_id: int, now_ms: int) -> bool:
        seen = self.last_heartbeat_ms.get(broker_id)
        return seen is not None and now_ms - seen < self.session_timeout_ms

    def register(self, image: MetadataImage, broker_id: int, incarnation_id: str,
                 endpoints: tuple, rack: str | None, next_offset: int, now_ms: int,
                 *, from_this_node: bool = False) -> tuple[ErrorCode, list, int]:
        """(error, records, broker epoch); ``next_offset`` is where the write will land.

        As Kafka, a new incarnation is refused while the old one's session lives, since two
        brokers may not share an id. ``from_this_node``: the broker half of the active
        controller's own node; node ids are unique among the cluster's nodes, so the old
        incarnation can only be this node before a restart, and waiting out its session (as
        Kafka makes a restarted combined node wait) would protect nothing.
        """
        existing = image.brokers.get(broker_id)
        if (existing is not None and existing.incarnation_id != incarnation_id and not from_this_node
                and self._alive(broker_id, now_ms)):
            return ErrorCode.duplicate_broker_registration, [], -1
        records: list = []
        if existing is not None and not existing.fenced:
            records += self.fence(image, broker_id)
        records.append(RegisterBrokerRecord(broker_id, incarnation_id, next_offset,
                                            tuple(endpoints), rack, fenced=True))
        epoch = next_offset
        self.last_heartbeat_ms[broker_id] = now_ms
        self.registration_offset[broker_id] = epoch
        return ErrorCode.none, records, epoch

    def heartbeat(self, image: MetadataImage, broker_id: int, broker_epoch: int, metadata_offset: int,
                  want_fence: bool, want_shut_down: bool, now_ms: int) -> tuple[HeartbeatAnswer, list]:
        broker = image.brokers.get(broker_id)
        if broker is None:
            return HeartbeatAnswer(ErrorCode.broker_id_not_registered), []
        if broker.broker_epoch != broker_epoch:
            return HeartbeatAnswer(ErrorCode.stale_broker_epoch), []
        self.last_heartbeat_ms[broker_id] = now_ms
        caught_up = metadata_offset >= self.registration_offset.get(broker_id, broker.broker_epoch)
        records: list = []
        fenced = broker.fenced
        if want_fence or want_shut_down:
            if not fenced:
                records = self.fence(image, broker_id)
            fenced = True
        elif fenced and caught_up:
            records = self.unfence(image, broker_id)
            fenced = False
        return HeartbeatAnswer(ErrorCode.none, caught_up, fenced, want_shut_down), records

    def expired(self, image: MetadataImage, now_ms: int) -> list:
        """Fence every unfenced broker whose session has run out."""
        records: list = []
        for broker in image.brokers.values():
            seen = self.last_heartbeat_ms.setdefault(broker.broker_id, now_ms)
            if not broker.fenced and now_ms - seen >= self.session_timeout_ms:
                image = image.apply(records, image.offset) if records else image
                records += self.fence(image, broker.broker_id)
        return records

    def fence(self, image: MetadataImage, broker_id: int) -> list:
        broker = image.brokers[broker_id]
        records: list = [FenceBrokerRecord(broker_id, broker.broker_epoch)]
        usable = {b.broker_id for b in image.brokers.values() if not b.fenced and b.broker_id != broker_id}
        for topic in image.topics_by_id.values():
            for partition in topic.partitions.values():
                if broker_id not in partition.isr and partition.leader != broker_id:
                    continue
                others = tuple(r for r in partition.isr if r != broker_id)
                if partition.leader == broker_id:
                    successor = next((r for r in others if r in usable), -1)
                    isr = others if successor != -1 else partition.isr
                    if successor == -1 and self.unclean_allowed(image, topic.name):
                        successor = next((r for r in partition.replicas if r in usable), -1)
                        isr = (successor,) if successor != -1 else partition.isr
                    records.append(PartitionChangeRecord(topic.topic_id, partition.partition_id,
                                                         isr=isr, leader=successor))
                elif others:
                    records.append(PartitionChangeRecord(topic.topic_id, partition.partition_id, isr=others))
        return records

    def unfence(self, image: MetadataImage, broker_id: int) -> list:
        broker = image.brokers[broker_id]
        records: list = [UnfenceBrokerRecord(broker_id, broker.broker_epoch)]
        for topic in image.topics_by_id.values():
            for partition in topic.partitions.values():
                if partition.leader != -1:
                    continue
                if broker_id in partition.isr:
                    records.append(PartitionChangeRecord(topic.topic_id, partition.partition_id, leader=broker_id))
                elif broker_id in partition.replicas and self.unclean_allowed(image, topic.name):
                    records.append(PartitionChangeRecord(topic.topic_id, partition.partition_id, isr=(broker_id,),
                                                         leader=broker_id))
        return records

    def unclean_allowed(self, image: MetadataImage, topic: str) -> bool:
        value = image.topic_configs(topic).get("unclean.leader.election.enable")
        return self.unclean_leader_election if value is None else value.strip().lower() == "true"
