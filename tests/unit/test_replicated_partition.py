"""One partition replicated between two brokers in one process, on trio's virtual clock: real
ReplicaManagers and logs, the leader's own Produce and Fetch handlers, and the follower's
fetch handling (kraft.broker.fetcher) applied to the leader's answers. The cases Kafka's
history is full of: acks=all waiting for the follower, an ISR shrink racing an acks=all
produce, a leader that loses its leadership while a produce waits, and a follower whose log
diverged from a new leader's."""

from __future__ import annotations

import os

import trio
import trio.testing
from kio.schema.errors import ErrorCode

from kraft.broker.build import make, nested
from kraft.broker.core import Broker
from kraft.broker.fetcher import ReplicaFetcherManager
from kraft.broker.replicas import ReplicaManager
from kraft.config import parse_server_config
from kraft.metadata import MetadataImage, PartitionChangeRecord, PartitionRecord, TopicRecord
from kraft.server.network import ConnectionInfo
from protocol.apis import Request, request_class
from protocol.records import RecordInput, build_batch, decode_batch, iter_batches
from storage import LogConfig, LogManager
from storage.sim_fs import SimFileSystem

PRODUCE, FETCH = 0, 1
INFO = ConnectionInfo("PLAINTEXT", "127.0.0.1:50000")
TOPIC_ID = "00000000-0000-4000-8000-0000000000aa"


class Node:
    def __init__(self, tmp_path, node_id: int, cluster: "Cluster") -> None:
        log_dir = str(tmp_path / f"node-{node_id}")
        os.makedirs(log_dir)
        self.config = parse_server_config({
            "process.roles": "broker", "node.id": str(node_id), "controller.quorum.voters": "9@localhost:9093",
            "listeners": "PLAINTEXT://:9092", "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": log_dir, "min.insync.replicas": "2"})
        self.logs = LogManager([log_dir], LogConfig(), fs=SimFileSystem())
        self.logs.load_all()
        self.replicas = ReplicaManager(node_id, self.config, self.logs,
                                       clock_ms=lambda: int(trio.current_time() * 1000))
        self.broker = Broker(node_id, "cluster", self.config, self.replicas, None, lambda: cluster.image)
        self.replicas.on_progress = self.broker.notify_data_arrived
        self.fetcher = ReplicaFetcherManager(node_id, self.config, self.replicas, lambda: cluster.image, lambda: 1)
        self.node_id = node_id

    @property
    def log(self):
        return self.replicas.partition("t", 0).log


class Cluster:
    def __init__(self, tmp_path) -> None:
        self.image = MetadataImage()
        self.nodes = {node_id: Node(tmp_path, node_id, self) for node_id in (1, 2)}

    def apply(self, records: list) -> None:
        self.image, delta = self.image.apply_delta(records, self.image.offset + 1)
        for node in self.nodes.values():
            node.replicas.apply_image(delta, self.image)

    def create(self, isr=(1, 2)) -> None:
        self.apply([TopicRecord("t", TOPIC_ID), PartitionRecord(TOPIC_ID, 0, (1, 2), isr, 1)])


async def handle(node: Node, api_key: int, version: int, **fields):
    from kraft.broker import data  # noqa: F401  (registers the handlers)
    from kraft.broker.core import HANDLERS

    body = make(request_class(api_key, version), **fields)
    return await HANDLERS[api_key](node.broker, Request(api_key, version, 1, "test", body), INFO)


async def produce(node: Node, values: list[bytes], acks: int = -1, timeout_ms: int = 30_000):
    cls = request_class(PRODUCE, 9)
    batch = build_batch([RecordInput(value=value) for value in values])
    data = make(nested(cls, "PartitionProduceData"), index=0, records=batch)
    response = await handle(node, PRODUCE, 9, acks=acks, timeout=timeout_ms, transactional_id=None,
                            topic_data=(make(nested(cls, "TopicProduceData"), name="t", partition_data=(data,)),))
    return response.responses[0].partition_responses[0]


async def fetch(leader: Node, offset: int, replica_id: int = -1, last_epoch: int = -1, epoch: int = -1):
    cls = request_class(FETCH, 17)
    partition = make(nested(cls, "FetchPartition"), partition=0, current_leader_epoch=epoch, fetch_offset=offset,
                     last_fetched_epoch=last_epoch, log_start_offset=-1, partition_max_bytes=1 << 20)
    replica_state = make(nested(cls, "ReplicaState"), replica_id=replica_id, replica_epoch=1)
    response = await handle(leader, FETCH, 17, replica_state=replica_state, max_wait=0, min_bytes=0,
                            max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1,
                            topics=(make(nested(cls, "FetchTopic"), topic_id=TOPIC_ID, partitions=(partition,)),),
                            forgotten_topics_data=(), rack_id="")
    return response.responses[0].partitions[0]


async def replicate_once(follower: Node, leader: Node) -> None:
    """One fetch of the follower's, applied as its fetcher applies it."""
    log = follower.log
    data = await fetch(leader, log.log_end_offset, replica_id=follower.node_id, last_epoch=log.latest_epoch)
    assert follower.fetcher._handle(follower.replicas.partition("t", 0), data, leader.node_id)


def values(log, start: int = 0) -> list[bytes]:
    data = bytes(log.read(start, 1 << 20).records)
    return [record.value for position, _ in iter_batches(data) for record in decode_batch(data, position)[1]]


def run(test) -> None:
    trio.run(test, clock=trio.testing.MockClock(autojump_threshold=0))


def test_acks_all_waits_for_the_follower_and_consumers_see_only_what_both_hold(tmp_path):
    cluster = Cluster(tmp_path)
    leader, follower = cluster.nodes[1], cluster.nodes[2]

    async def main():
        cluster.create()
        answers = []

        async def send():
            answers.append(await produce(leader, [b"a", b"b"]))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            await trio.sleep(1)
            assert answers == [] and leader.log.log_end_offset == 2 and leader.log.high_watermark == 0
            consumer_view = await fetch(leader, 0)
            assert consumer_view.records in (b"", None) and consumer_view.high_watermark == 0
            await replicate_once(follower, leader)  # the follower now holds both records
            assert follower.log.log_end_offset == 2 and answers == []
            await replicate_once(follower, leader)  # ... and says so: the high watermark moves
        assert answers[0].error_code == ErrorCode.none and answers[0].base_offset == 0
        assert leader.log.high_watermark == 2 and values(follower.log) == [b"a", b"b"]
        assert (await fetch(leader, 0)).high_watermark == 2

    run(main)


def test_an_isr_smaller_than_min_insync_refuses_before_appending(tmp_path):
    cluster = Cluster(tmp_path)

    async def main():
        cluster.create(isr=(1,))
        answer = await produce(cluster.nodes[1], [b"x"])
        assert answer.error_code == ErrorCode.not_enough_replicas
        assert cluster.nodes[1].log.log_end_offset == 0
        assert (await produce(cluster.nodes[1], [b"y"], acks=1)).error_code == ErrorCode.none

    run(main)


def test_an_isr_shrink_racing_an_acks_all_produce_answers_not_enough_replicas_after_append(tmp_path):
    cluster = Cluster(tmp_path)

    async def main():
        cluster.create()
        answers = []

        async def send():
            answers.append(await produce(cluster.nodes[1], [b"late"]))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            await trio.sleep(1)
            cluster.apply([PartitionChangeRecord(TOPIC_ID, 0, isr=(1,))])  # the controller fenced node 2
        assert answers[0].error_code == ErrorCode.not_enough_replicas_after_append
        assert cluster.nodes[1].log.high_watermark == 1  # committed by the ISR it has now, but not acked as such

    run(main)


def test_a_leader_that_loses_its_leadership_answers_a_waiting_produce_at_once(tmp_path):
    cluster = Cluster(tmp_path)

    async def main():
        cluster.create()
        answers = []

        async def send():
            answers.append(await produce(cluster.nodes[1], [b"orphan"], timeout_ms=60_000))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            await trio.sleep(1)
            started = trio.current_time()
            cluster.apply([PartitionChangeRecord(TOPIC_ID, 0, isr=(2,), leader=2)])
        assert answers[0].error_code == ErrorCode.not_leader_or_follower
        assert trio.current_time() - started < 1

    run(main)


def test_an_acks_all_produce_times_out_when_the_follower_never_fetches(tmp_path):
    cluster = Cluster(tmp_path)

    async def main():
        cluster.create()
        started = trio.current_time()
        answer = await produce(cluster.nodes[1], [b"unheard"], timeout_ms=1500)
        assert answer.error_code == ErrorCode.request_timed_out
        assert 1.5 <= trio.current_time() - started < 2

    run(main)


def test_a_follower_truncates_what_a_new_leader_never_had(tmp_path):
    """Node 1 leads epoch 0 and appends two records the follower never fetches (acks=1); node 2
    takes over in epoch 1 and appends its own. Node 1, now following, is told where the logs
    diverge, truncates its two records and copies the new leader's."""
    cluster = Cluster(tmp_path)
    old, new = cluster.nodes[1], cluster.nodes[2]

    async def main():
        cluster.create()
        assert (await produce(old, [b"kept"], acks=1)).error_code == ErrorCode.none
        await replicate_once(new, old)
        await replicate_once(new, old)
        assert old.log.high_watermark == 1
        for value in (b"lost-1", b"lost-2"):
            assert (await produce(old, [value], acks=1)).error_code == ErrorCode.none
        cluster.apply([PartitionChangeRecord(TOPIC_ID, 0, isr=(2,), leader=2)])
        assert new.replicas.partition("t", 0).leader_state is not None
        assert (await produce(new, [b"new-leader"], acks=1)).error_code == ErrorCode.none
        await replicate_once(old, new)  # diverging epoch: truncate to the end of epoch 0 on the new leader
        assert old.log.log_end_offset == 1
        await replicate_once(old, new)
        assert values(old.log) == [b"kept", b"new-leader"] == values(new.log)
        assert old.log.latest_epoch == new.log.latest_epoch == 1

    run(main)
