"""kraft.raft.driver: three trio drivers on real disk logs and an in-memory network, on
virtual time. A leader is elected, appends commit everywhere, a stopped leader is replaced
within seconds without losing a committed entry, and a restarted replica recovers from its
disk and catches up."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio
import trio.testing

from kraft.raft.core import NotLeaderError
from kraft.raft.disk_log import DiskRaftLog
from kraft.raft.driver import AppendLostError, InMemoryNetwork, RaftDriver
from kraft.raft.log import Entry
from kraft.raft.messages import Message
from kraft.raft.wire import RaftWire
from tests.support.raft import the_leader, wait_for

VOTERS = frozenset({0, 1, 2})
CLUSTER_ID = "MkU3OEVBNTcwNTJENDM2Qk"


class WireNetwork(InMemoryNetwork):
    """Every message goes through Kafka's bytes on the way: requests through
    encode_request/decode_request, responses through encode_response/decode_response
    against the request they answer, as a TCP transport will do."""

    def __init__(self) -> None:
        super().__init__()
        self.wires = {n: RaftWire(n, CLUSTER_ID) for n in VOTERS}
        self.requests: dict[tuple[int, int, int], Message] = {}

    def send(self, message: Message) -> None:
        if message.is_request:
            frame = self.wires[message.source].encode_request(message)
            self.requests[(message.source, message.destination, message.correlation_id)] = message
            decoded = self.wires[message.destination].decode_request(frame[4:])
        else:
            request = self.requests.pop((message.destination, message.source, message.correlation_id), None)
            if request is None:
                return  # a response to a request this network never carried
            frame = self.wires[message.source].encode_response(message)
            decoded = self.wires[message.destination].decode_response(frame[4:], request)
        assert decoded == message, (decoded, message)
        super().send(decoded)
ELECTION_LIMIT_S = 6  # fetch timeout 2 s, then a pre-vote and a vote with 1-2 s timeouts


class Replica:
    """One node: its directory, its driver while running, what it applied."""

    def __init__(self, node_id: int, directory: Path, network: InMemoryNetwork) -> None:
        self.node_id = node_id
        self.directory = directory
        self.network = network
        self.driver: RaftDriver | None = None
        self.scope: trio.CancelScope | None = None
        self.applied: list[Entry] = []
        self.incarnation = 0

    async def start(self, nursery: trio.Nursery) -> None:
        self.incarnation += 1
        disk = DiskRaftLog.open(str(self.directory))
        self.applied = []
        self.driver = RaftDriver(self.node_id, VOTERS, disk, self.network.transport(self.node_id),
                                 rng=random.Random(self.node_id * 100 + self.incarnation),
                                 on_commit=self.applied.extend)
        self.network.attach(self.node_id, self.driver.deliver)
        await nursery.start(self._run, disk)

    async def _run(self, disk: DiskRaftLog, task_status=trio.TASK_STATUS_IGNORED) -> None:
        try:
            with trio.CancelScope() as self.scope:
                await self.driver.run(task_status=task_status)
        finally:
            self.network.detach(self.node_id)
            disk.close()

    def stop(self) -> None:
        self.scope.cancel()
        self.driver = None

    @property
    def running(self) -> bool:
        return self.driver is not None

    def data(self) -> list[tuple[int, int, bytes]]:
        return [(e.offset, e.epoch, e.payload) for e in self.applied if not e.control]


def run_cluster(tmp_path: Path, scenario, network_class=InMemoryNetwork) -> None:
    async def main() -> None:
        network = network_class()
        replicas = [Replica(n, tmp_path / f"node-{n}" / "__cluster_metadata-0", network) for n in sorted(VOTERS)]
        for replica in replicas:
            replica.directory.parent.mkdir(parents=True)
        async with trio.open_nursery() as nursery:
            for replica in replicas:
                await replica.start(nursery)
            await scenario(nursery, network, replicas)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


@pytest.mark.parametrize("network_class", [InMemoryNetwork, WireNetwork], ids=["values", "kafka-bytes"])
def test_elect_commit_fail_over_and_recover_from_disk(tmp_path, network_class):
    async def scenario(nursery, network, replicas):
        await wait_for(lambda: the_leader(replicas) is not None, ELECTION_LIMIT_S, "first leader")
        first = the_leader(replicas)
        offsets = [await first.driver.append(b"entry-%d" % i) for i in range(10)]
        assert offsets == sorted(offsets) and len(set(offsets)) == 10
        await wait_for(lambda: all(len(r.data()) == 10 for r in replicas), 2, "commit on every replica")
        assert all(r.data() == first.data() for r in replicas)
        follower = next(r for r in replicas if r is not first)
        with pytest.raises(NotLeaderError):
            await follower.driver.append(b"to a follower")

        # The leader stops; the two others elect a new one that keeps every committed entry.
        old_epoch, committed = first.driver.epoch, first.data()
        first.stop()
        others = [r for r in replicas if r is not first]
        took_s = await wait_for(lambda: the_leader(others) is not None, ELECTION_LIMIT_S, "new leader")
        second = the_leader(others)
        assert second.driver.epoch > old_epoch, (second.driver.epoch, old_epoch)
        assert took_s <= ELECTION_LIMIT_S
        later = [await second.driver.append(b"later-%d" % i) for i in range(3)]
        last = await second.driver.append_many([b"later-3", b"later-4"])
        assert offsets[-1] < later[0] < later[-1] < last - 1
        await wait_for(lambda: all(len(r.data()) == 15 for r in others), 2, "commit on the two left")
        assert all(r.data()[:10] == committed for r in others), "a committed entry was lost"

        # The old leader's disk holds its epoch, its leadership and the log ...
        disk = DiskRaftLog.open(str(first.directory))
        state, log = disk.load()
        disk.close()
        assert (state.epoch, state.leader_id) == (old_epoch, first.node_id), state
        assert [(e.offset, e.epoch, e.payload) for e in log.entries if not e.control] == committed
        # ... it restarts from there (resigned: a restarted leader lost its progress) ...
        await first.start(nursery)
        assert first.driver.epoch >= old_epoch, "quorum-state was not recovered"
        assert first.driver.core.log.end_offset > offsets[-1], "the log was not recovered"
        # ... and it catches up with what was committed while it was away.
        await wait_for(lambda: first.data() == second.data(), 5, "catch-up of the restarted replica")
        assert first.driver.leader_id == second.node_id
        assert len(first.data()) == 15

    run_cluster(tmp_path, scenario, network_class)


def test_an_isolated_leaders_append_is_lost_not_committed(tmp_path):
    async def scenario(nursery, network, replicas):
        await wait_for(lambda: the_leader(replicas) is not None, ELECTION_LIMIT_S, "first leader")
        first = the_leader(replicas)
        await first.driver.append(b"before")
        for other in replicas:
            if other is not first:
                network.cut(first.node_id, other.node_id)
                network.cut(other.node_id, first.node_id)
        outcome: list[object] = []

        async def append_on_isolated() -> None:
            try:
                outcome.append(await first.driver.append(b"never committed"))
            except AppendLostError as error:
                outcome.append(error)

        nursery.start_soon(append_on_isolated)
        others = [r for r in replicas if r is not first]
        await wait_for(lambda: the_leader(others) is not None, ELECTION_LIMIT_S, "leader of the majority")
        second = the_leader(others)
        await second.driver.append(b"after")
        network.heal()
        await wait_for(lambda: bool(outcome), 10, "the isolated append to settle")
        assert isinstance(outcome[0], AppendLostError), outcome
        await wait_for(lambda: first.data() == second.data(), 5, "the old leader to converge")
        assert [payload for _, _, payload in first.data()] == [b"before", b"after"]

    run_cluster(tmp_path, scenario)


def test_stopping_a_driver_fails_its_waiting_appends(tmp_path):
    async def scenario(nursery, network, replicas):
        await wait_for(lambda: the_leader(replicas) is not None, ELECTION_LIMIT_S, "first leader")
        leader = the_leader(replicas)
        for other in replicas:
            network.cut(leader.node_id, other.node_id)
        outcome: list[object] = []

        async def append() -> None:
            try:
                outcome.append(await leader.driver.append(b"x"))
            except AppendLostError as error:
                outcome.append(error)

        nursery.start_soon(append)
        await trio.sleep(0.1)
        leader.stop()
        await wait_for(lambda: bool(outcome), 1, "the append to fail")
        assert isinstance(outcome[0], AppendLostError), outcome

    run_cluster(tmp_path, scenario)
