"""The group coordinator on virtual time: rebalances, timeouts, static members, offsets,
and reloading its state from ``__consumer_offsets``."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import trio
import trio.testing
from kio.schema.errors import ErrorCode

from kraft.config import parse_server_config
from kraft.group import GroupCoordinator, GroupState, partition_for
from kraft.metadata import FULL_DELTA, MetadataImage, PartitionImage, PartitionRecord, TopicRecord, new_topic_id
from storage.config import LogConfig
from storage.log import PartitionLog

CONFIG = parse_server_config({
    "process.roles": "broker,controller", "node.id": "1", "controller.quorum.voters": "1@localhost:9093",
    "listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "controller.listener.names": "CONTROLLER",
    "offsets.topic.num.partitions": "3", "group.initial.rebalance.delay.ms": "0",
})
DELAYED_CONFIG = parse_server_config({**CONFIG.originals, "group.initial.rebalance.delay.ms": "3000"})
PROTOCOLS = [("range", b"meta")]


@dataclass
class FakePartition:
    log: PartitionLog
    state: PartitionImage
    leader_epoch: int = 0


class Cluster:
    """One node's image with __consumer_offsets and a topic 't', and real partition logs."""

    def __init__(self, directory) -> None:
        topic_id, data_id = new_topic_id(), new_topic_id()
        records = [TopicRecord("__consumer_offsets", topic_id), TopicRecord("t", data_id)]
        records += [PartitionRecord(topic_id, i, (1,), (1,), 1) for i in range(3)]
        records += [PartitionRecord(data_id, i, (1,), (1,), 1) for i in range(2)]
        self.image = MetadataImage().apply(records, 10)
        self.directory = directory
        for i in range(3):
            (directory / f"co-{i}").mkdir()
        self.partitions = {
            ("__consumer_offsets", i): FakePartition(PartitionLog.open(str(directory / f"co-{i}"), LogConfig()),
                                                     self.image.topic("__consumer_offsets").partitions[i])
            for i in range(3)}

    def partition(self, topic: str, index: int):
        return self.partitions.get((topic, index))

    # A single-replica partition: what is appended is committed at once.
    def in_sync_replicas(self, partition) -> tuple[int, ...]:
        return partition.state.isr

    def min_insync_replicas(self, partition) -> int:
        return 1

    def advance_high_watermark(self, partition) -> bool:
        partition.log.high_watermark = partition.log.log_end_offset
        return True

    async def wait_replicated(self, partition, leader_epoch, required_offset, deadline) -> ErrorCode:
        assert partition.log.high_watermark >= required_offset
        return ErrorCode.none

    def coordinator(self, config=CONFIG) -> GroupCoordinator:
        coordinator = GroupCoordinator(1, config, self, None, lambda: self.image)
        coordinator.on_image(FULL_DELTA, self.image)
        return coordinator

    def reopen(self) -> GroupCoordinator:
        for key, partition in self.partitions.items():
            partition.log.close()
            partition.log = PartitionLog.open(str(self.directory / f"co-{key[1]}"), LogConfig())
        return self.coordinator()


def join(coordinator, group="g", member="", instance=None, protocols=PROTOCOLS, session_ms=10_000, rebalance_ms=20_000):
    return coordinator.join(group_id=group, member_id=member, instance_id=instance, protocol_type="consumer",
                            protocols=protocols, session_timeout_ms=session_ms, rebalance_timeout_ms=rebalance_ms,
                            client_id="client", client_host="/127.0.0.1", require_known_member_id=True)


async def join_with_id(coordinator, **kwargs):
    first = await join(coordinator, **kwargs)
    assert first.error_code == ErrorCode.member_id_required, first
    return await join(coordinator, member=first.member_id, **kwargs)


def run_virtual(test=None, *, config=CONFIG):
    if test is None:
        return lambda function: run_virtual(function, config=config)

    def wrapper(tmp_path):
        async def main():
            cluster = Cluster(tmp_path)
            coordinator = cluster.coordinator(config)
            async with trio.open_nursery() as nursery:
                await nursery.start(coordinator.run)
                await test(cluster, coordinator, nursery)
                nursery.cancel_scope.cancel()
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    wrapper.__name__ = test.__name__
    return wrapper


@run_virtual(config=DELAYED_CONFIG)
async def test_two_members_rebalance_and_sync(cluster, coordinator, nursery):
    results = {}

    async def member(name):
        results[name] = await join_with_id(coordinator)

    async with trio.open_nursery() as joins:
        joins.start_soon(member, "a")
        joins.start_soon(member, "b")
    a, b = results["a"], results["b"]
    assert a.error_code == b.error_code == ErrorCode.none and a.generation == b.generation == 1
    leader, follower = (a, b) if a.member_id == a.leader else (b, a)
    assert len(leader.members) == 2 and follower.members == ()
    synced = {}

    async def sync(result, assignments):
        synced[result.member_id] = await coordinator.sync(
            group_id="g", generation=1, member_id=result.member_id, instance_id=None, protocol_type="consumer",
            protocol_name="range", assignments=assignments)

    async with trio.open_nursery() as syncs:
        syncs.start_soon(sync, follower, {})
        await trio.sleep(1)
        syncs.start_soon(sync, leader, {leader.member_id: b"L", follower.member_id: b"F"})
    assert synced[leader.member_id] == (ErrorCode.none, b"L") and synced[follower.member_id] == (ErrorCode.none, b"F")
    assert coordinator.groups["g"].state == GroupState.STABLE


@run_virtual
async def test_a_member_that_stops_heartbeating_is_evicted_after_its_session(cluster, coordinator, nursery):
    result = await join_with_id(coordinator, session_ms=6_000)
    await coordinator.sync(group_id="g", generation=1, member_id=result.member_id, instance_id=None,
                           protocol_type=None, protocol_name=None, assignments={result.member_id: b"x"})
    await trio.sleep(5)
    assert coordinator.heartbeat(group_id="g", generation=1, member_id=result.member_id, instance_id=None) == ErrorCode.none
    await trio.sleep(7)
    assert coordinator.heartbeat(group_id="g", generation=1, member_id=result.member_id, instance_id=None) \
        == ErrorCode.unknown_member_id
    assert coordinator.groups["g"].state == GroupState.EMPTY and coordinator.groups["g"].generation == 2


@run_virtual
async def test_errors_for_wrong_generation_unknown_member_and_during_rebalance(cluster, coordinator, nursery):
    first = await join_with_id(coordinator)
    await coordinator.sync(group_id="g", generation=1, member_id=first.member_id, instance_id=None,
                           protocol_type=None, protocol_name=None, assignments={})
    assert coordinator.heartbeat(group_id="g", generation=7, member_id=first.member_id, instance_id=None) \
        == ErrorCode.illegal_generation
    assert coordinator.heartbeat(group_id="g", generation=1, member_id="nobody", instance_id=None) \
        == ErrorCode.unknown_member_id
    assert coordinator.heartbeat(group_id="other", generation=1, member_id="x", instance_id=None) \
        == ErrorCode.unknown_member_id
    nursery.start_soon(join_with_id, coordinator)  # a second member starts a rebalance
    await trio.sleep(0.5)
    assert coordinator.heartbeat(group_id="g", generation=1, member_id=first.member_id, instance_id=None) \
        == ErrorCode.rebalance_in_progress
    assert (await join(coordinator, session_ms=10)).error_code == ErrorCode.invalid_session_timeout
    assert (await join(coordinator, group="")).error_code == ErrorCode.invalid_group_id
    mismatch = await coordinator.join(group_id="g", member_id="", instance_id=None, protocol_type="connect",
                                      protocols=PROTOCOLS, session_timeout_ms=10_000, rebalance_timeout_ms=10_000,
                                      client_id="c", client_host="/h", require_known_member_id=True)
    assert mismatch.error_code == ErrorCode.inconsistent_group_protocol


@run_virtual
async def test_a_member_that_does_not_rejoin_is_removed_at_the_rebalance_timeout(cluster, coordinator, nursery):
    first = await join_with_id(coordinator, rebalance_ms=10_000)
    await coordinator.sync(group_id="g", generation=1, member_id=first.member_id, instance_id=None,
                           protocol_type=None, protocol_name=None, assignments={})
    started = trio.current_time()
    second = await join_with_id(coordinator, rebalance_ms=10_000)
    assert second.error_code == ErrorCode.none and second.generation == 2
    assert 9 <= trio.current_time() - started <= 11, "expected the rebalance to wait for the timeout"
    assert list(coordinator.groups["g"].members) == [second.member_id]


@run_virtual
async def test_static_member_restart_takes_over_without_rebalance_and_fences_the_old_id(cluster, coordinator, nursery):
    first = await join(coordinator, instance="instance-1")
    assert first.error_code == ErrorCode.none, "static members need no MEMBER_ID_REQUIRED round"
    await coordinator.sync(group_id="g", generation=1, member_id=first.member_id, instance_id="instance-1",
                           protocol_type=None, protocol_name=None, assignments={first.member_id: b"a"})
    again = await join(coordinator, instance="instance-1")
    assert again.error_code == ErrorCode.none and again.generation == 1 and again.member_id != first.member_id
    synced = await coordinator.sync(group_id="g", generation=1, member_id=again.member_id, instance_id="instance-1",
                                    protocol_type=None, protocol_name=None, assignments={})
    assert synced == (ErrorCode.none, b"a"), "expected the restarted static member to keep its assignment"
    assert coordinator.heartbeat(group_id="g", generation=1, member_id=first.member_id, instance_id="instance-1") \
        == ErrorCode.fenced_instance_id


@run_virtual
async def test_offsets_commit_fetch_and_survive_reload(cluster, coordinator, nursery):
    results = await coordinator.commit_offsets(group_id="g", generation=-1, member_id="", instance_id=None,
                                               topics=[("t", [(0, 42, 3, "meta"), (1, 7, -1, None)]),
                                                       ("missing", [(0, 1, -1, None)])])
    assert results == {("t", 0): ErrorCode.none, ("t", 1): ErrorCode.none,
                       ("missing", 0): ErrorCode.unknown_topic_or_partition}
    too_big = await coordinator.commit_offsets(group_id="g", generation=-1, member_id="", instance_id=None,
                                               topics=[("t", [(0, 99, -1, "x" * 5000)])])
    assert too_big == {("t", 0): ErrorCode.offset_metadata_too_large}
    error, fetched = coordinator.fetch_offsets("g", None)
    assert error == ErrorCode.none and [(t, [(p, c.offset) for p, c in parts]) for t, parts in fetched] == \
        [("t", [(0, 42), (1, 7)])]
    member = await join_with_id(coordinator, group="h")
    during = await coordinator.commit_offsets(group_id="h", generation=1, member_id=member.member_id,
                                              instance_id=None, topics=[("t", [(0, 1, -1, None)])])
    assert during == {("t", 0): ErrorCode.rebalance_in_progress}, "no commits while the assignment is pending"
    await coordinator.sync(group_id="h", generation=1, member_id=member.member_id, instance_id=None,
                           protocol_type=None, protocol_name=None, assignments={})
    wrong = await coordinator.commit_offsets(group_id="h", generation=9, member_id=member.member_id,
                                             instance_id=None, topics=[("t", [(0, 1, -1, None)])])
    assert wrong == {("t", 0): ErrorCode.illegal_generation}
    reloaded = cluster.reopen()
    error, fetched = reloaded.fetch_offsets("g", [("t", [0, 1])])
    assert [(p, c.offset, c.leader_epoch, c.metadata) for p, c in fetched[0][1]] == [(0, 42, 3, "meta"), (1, 7, -1, "")]
    assert reloaded.fetch_offsets("h", [("t", [0])])[1][0][1][0][1] is None, "a refused commit must leave nothing"


@run_virtual
async def test_delete_groups_and_offsets(cluster, coordinator, nursery):
    await coordinator.commit_offsets(group_id="g", generation=-1, member_id="", instance_id=None,
                                     topics=[("t", [(0, 5, -1, None), (1, 6, -1, None)])])
    error, results = await coordinator.delete_offsets("g", [("t", [0])])
    assert error == ErrorCode.none and results == {("t", 0): ErrorCode.none}
    assert [p for p, _ in coordinator.fetch_offsets("g", None)[1][0][1]] == [1]
    active = await join_with_id(coordinator, group="busy")
    assert active.error_code == ErrorCode.none
    deleted = await coordinator.delete_groups(["g", "busy", "never"])
    assert deleted == {"g": ErrorCode.none, "busy": ErrorCode.non_empty_group, "never": ErrorCode.group_id_not_found}
    assert "g" not in cluster.reopen().groups


def test_group_partition_matches_kafkas_hash():
    # Values checked against Java's String.hashCode: "my-group".hashCode() == -1906497762.
    assert partition_for("my-group", 50) == 1906497762 % 50
    assert partition_for("console-consumer-12345", 50) == 158455506 % 50


@run_virtual
async def test_offsets_of_an_empty_group_expire_after_the_retention(cluster, coordinator, nursery):
    now = [1_000_000]
    coordinator.clock_ms = lambda: now[0]
    await coordinator.commit_offsets(group_id="old", generation=-1, member_id="", instance_id=None,
                                     topics=[("t", [(0, 5, -1, None)])])
    retention_ms = CONFIG["offsets.retention.minutes"] * 60_000
    now[0] += retention_ms - 1
    await coordinator.expire_offsets()
    assert coordinator.fetch_offsets("old", None)[1], "expected the offsets kept until the retention passes"
    now[0] += 2
    await coordinator.expire_offsets()
    assert "old" not in coordinator.groups and coordinator.fetch_offsets("old", None)[1] == []
    assert "old" not in cluster.reopen().groups, "expected the expiry written as tombstones"


SMALL_CONFIG = parse_server_config({**CONFIG.originals, "group.max.size": "1"})


@run_virtual(config=SMALL_CONFIG)
async def test_a_full_group_refuses_another_member_and_keeps_its_own(cluster, coordinator, nursery):
    first = await join_with_id(coordinator)
    assert first.error_code == ErrorCode.none
    second = await join(coordinator)
    refused = await join(coordinator, member=second.member_id)
    assert refused.error_code == ErrorCode.group_max_size_reached
    assert list(coordinator.groups["g"].members) == [first.member_id]
