"""The simulation's clients: admin requests decided by the controller's own record logic.

Rules:
- Each request is turned into metadata records by ``ControllerLogic`` and
  ``BrokerLifecycle`` (the code the active controller runs) against the leader's applied
  image, and the records go into the log as one batch, as ``ActiveController`` commits them.
- The leader decides only when it has applied everything in its log, as the active
  controller decides under one lock after its previous write was applied; a request that
  finds it behind is dropped (the client would retry).
- The request mix covers every record type: the bootstrap feature level, broker
  registrations, heartbeats that unfence, fences, topics created and deleted, partitions
  added, topic configs altered, producer id blocks. Topic names and broker ids come from
  small pools, so requests collide (already exists, unknown topic) as real ones do.
- Every choice, the topic ids and the replica placement included, comes from the
  simulation's seed.
"""

from __future__ import annotations

import random
import uuid

from kraft.config import parse_server_config
from kraft.controller import BrokerLifecycle, ConfigChange, ControllerError, ControllerLogic, NewTopic
from kraft.metadata import FeatureLevelRecord, MetadataImage

BROKER_IDS = (100, 101, 102, 103)
TOPIC_NAMES = ("orders", "payments", "clicks", "audit", "events")
SESSION_TIMEOUT_MS = 9000
METADATA_VERSION = 21

CONFIG = parse_server_config({
    "process.roles": "controller", "node.id": "0", "controller.quorum.voters": "0@localhost:9093",
    "listeners": "CONTROLLER://:9093", "controller.listener.names": "CONTROLLER",
    "num.partitions": "2", "default.replication.factor": "1",
})


class ControllerWorkload:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.logic = ControllerLogic(CONFIG, rng)
        self._lifecycle: tuple[tuple[int, int], BrokerLifecycle] | None = None
        self.decided = 0
        self.refused = 0

    def lifecycle(self, leader_id: int, epoch: int) -> BrokerLifecycle:
        """A new active controller starts with no heartbeat times, as Kafka's does."""
        if self._lifecycle is None or self._lifecycle[0] != (leader_id, epoch):
            self._lifecycle = ((leader_id, epoch), BrokerLifecycle(SESSION_TIMEOUT_MS))
        return self._lifecycle[1]

    def records(self, image: MetadataImage, lifecycle: BrokerLifecycle, next_offset: int, now_ms: int) -> list:
        """The records of one request drawn at random, decided against ``image``; empty
        when the request is refused (the refusal is as real as the records)."""
        records = self._decide(image, lifecycle, next_offset, now_ms)
        if records:
            self.decided += 1
        else:
            self.refused += 1
        return records

    def _decide(self, image: MetadataImage, lifecycle: BrokerLifecycle, next_offset: int, now_ms: int) -> list:
        rng = self.rng
        if "metadata.version" not in image.features:
            return [FeatureLevelRecord("metadata.version", METADATA_VERSION)]
        kind = rng.choices(("register", "heartbeat", "fence", "create", "delete", "partitions", "config",
                            "producer_ids"), weights=(3, 4, 1, 4, 1, 2, 3, 1))[0]
        broker_id = rng.choice(BROKER_IDS)
        broker = image.brokers.get(broker_id)
        name = rng.choice(TOPIC_NAMES)
        try:
            if kind == "register" or broker is None:
                incarnation = broker.incarnation_id if broker and rng.random() < 0.5 else str(
                    uuid.UUID(int=rng.getrandbits(128), version=4))
                endpoints = (("PLAINTEXT", "localhost", 9000 + broker_id, "PLAINTEXT"),)
                rack = rng.choice((None, "a", "b"))
                _error, records, _epoch = lifecycle.register(image, broker_id, incarnation, endpoints, rack,
                                                             next_offset, now_ms)
                return records
            if kind == "heartbeat":
                _answer, records = lifecycle.heartbeat(image, broker_id, broker.broker_epoch, next_offset,
                                                       want_fence=False, want_shut_down=rng.random() < 0.05,
                                                       now_ms=now_ms)
                return records
            if kind == "fence":
                return [] if broker.fenced else lifecycle.fence(image, broker_id)
            if kind == "create":
                configs = {"retention.ms": str(rng.choice((60_000, 3_600_000)))} if rng.random() < 0.3 else {}
                records, _results = self.logic.create_topics(image, [NewTopic(
                    name, rng.randint(1, 4), rng.choice((-1, 1, 2, 3)), configs=configs)])
                return records
            if kind == "delete":
                records, _results = self.logic.delete_topics(image, [name])
                return records
            if kind == "partitions":
                topic = image.topic(name)
                count = (len(topic.partitions) if topic else 0) + rng.randint(1, 2)
                return self.logic.create_partitions(image, name, count, None, validate_only=False)
            if kind == "config":
                change = rng.choice((ConfigChange("retention.ms", str(rng.randint(1, 10) * 60_000)),
                                     ConfigChange("cleanup.policy", "compact"),
                                     ConfigChange("retention.ms", None, operation=1)))
                return self.logic.alter_topic_configs(image, name, [change], incremental=True)
            records, _start = self.logic.allocate_producer_ids(image, broker_id, broker.broker_epoch)
            return records
        except ControllerError:
            return []
