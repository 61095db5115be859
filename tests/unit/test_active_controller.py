"""The active controller's runtime over an in-memory metadata log: what a config change
triggers beyond its own records."""

from __future__ import annotations

import trio

from kraft.config import parse_server_config
from kraft.controller import ConfigChange
from kraft.controller.quorum_controller import ActiveController, MetadataPublisher
from kraft.metadata import PartitionRecord, RegisterBrokerRecord, TopicRecord, encode_records
from kraft.raft.log import Entry

CONFIG = parse_server_config({
    "process.roles": "broker,controller", "node.id": "1", "controller.quorum.voters": "1@localhost:9093",
    "listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "controller.listener.names": "CONTROLLER"})
TOPIC_ID = "00000000-0000-4000-8000-0000000000bb"


class MemoryLog:
    """Commits each write as one entry at once, and applies it as the Raft driver would."""

    def __init__(self, publisher: MetadataPublisher) -> None:
        self.publisher = publisher
        self.high_watermark = 0

    def is_leader(self) -> bool:
        return True

    async def commit(self, records) -> int:
        offset = self.high_watermark
        self.high_watermark += 1
        self.publisher.apply_entries([Entry(offset, 1, encode_records(list(records)))])
        return offset


def test_turning_unclean_election_on_gives_a_leaderless_partition_a_leader_at_once():
    async def main():
        publisher = MetadataPublisher()
        log = MemoryLog(publisher)
        controller = ActiveController(CONFIG, log, publisher)
        endpoints = (("PLAINTEXT", "localhost", 9092, "PLAINTEXT"),)
        await log.commit([RegisterBrokerRecord(1, "a", 0, endpoints, None, fenced=True),
                          RegisterBrokerRecord(2, "b", 0, endpoints, None, fenced=False),
                          TopicRecord("t", TOPIC_ID), PartitionRecord(TOPIC_ID, 0, (1, 2), (1,), -1)])
        await controller.alter_topic_configs("t", [ConfigChange("retention.ms", "1000")], True, False)
        assert publisher.image.topic("t").partitions[0].leader == -1
        await controller.alter_topic_configs("t", [ConfigChange("unclean.leader.election.enable", "true")],
                                             True, False)
        partition = publisher.image.topic("t").partitions[0]
        assert (partition.leader, partition.isr) == (2, (2,))

    trio.run(main)
