"""Leadership back to the preferred replicas on real processes: after a node restarts, the
partitions it led stay with the others until kafka-leader-election (ElectLeaders, forwarded
to the active controller) or the controller's own rebalance (auto.leader.rebalance.enable)
moves them back, with Kafka's output."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time

import pytest

from tests.support.quorum import bootstrap, start_cluster, stop_cluster

pytestmark = pytest.mark.fault
TOPIC = "elected"
DEADLINE_S = 30
FAST = {"broker.session.timeout.ms": "6000", "broker.heartbeat.interval.ms": "500",
        "replica.lag.time.max.ms": "10000"}


def partitions(servers: str) -> dict:
    """The topic's partitions as a broker that knows all three describes them (a broker may
    not have applied the topic's creation yet)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": servers})
    deadline = time.monotonic() + DEADLINE_S
    while True:
        found = admin.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions
        if len(found) == 3 or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def fully_replicated(servers: str) -> bool:
    found = partitions(servers)
    return len(found) == 3 and all(len(p.isrs) == 3 for p in found.values())


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"expected {what} within {DEADLINE_S} s"
        time.sleep(0.3)


def elect(servers: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.leader_election", "--bootstrap-server", servers,
                           "--election-type", "preferred", *args], capture_output=True, text=True, timeout=60)


def restart_a_leader(nodes) -> int:
    """Stops the preferred leader of partition 0 until the others lead everything, restarts it,
    and waits until it is back in every ISR; returns its id."""
    servers = bootstrap(nodes)
    preferred = partitions(servers)[0].replicas[0]
    victim = next(node for node in nodes if node.node_id == preferred)
    victim.stop()
    wait_for(lambda: all(p.leader not in (preferred, -1) for p in partitions(bootstrap(nodes)).values()),
             f"leadership away from node {preferred}")
    victim.start()
    wait_for(lambda: fully_replicated(bootstrap(nodes)), f"node {preferred} back in every ISR")
    return preferred


@contextlib.contextmanager
def replicated_topic(tmp_path, overrides: dict):
    """Three nodes and the topic, three partitions fully replicated; the nodes stop at the end."""
    from confluent_kafka.admin import AdminClient, NewTopic

    nodes = start_cluster(tmp_path, overrides={**FAST, **overrides})
    try:
        servers = bootstrap(nodes)
        admin = AdminClient({"bootstrap.servers": servers})
        admin.create_topics([NewTopic(TOPIC, 3, 3)])[TOPIC].result(30)
        wait_for(lambda: fully_replicated(servers), "full ISRs")
        yield nodes
    finally:
        stop_cluster(nodes)


def led_by_preferred(servers: str) -> bool:
    return all(p.leader == p.replicas[0] for p in partitions(servers).values())


def test_kafka_leader_election_moves_leaders_back_with_kafkas_output(tmp_path):
    with replicated_topic(tmp_path, {"auto.leader.rebalance.enable": "false"}) as nodes:
        preferred = restart_a_leader(nodes)
        servers = bootstrap(nodes)
        moved = [i for i, p in partitions(servers).items() if p.replicas[0] == preferred]
        assert moved and all(partitions(servers)[i].leader != preferred for i in moved)

        single = elect(servers, "--topic", TOPIC, "--partition", str(moved[0]))
        assert single.returncode == 0, single.stderr
        assert single.stdout == f"Successfully completed leader election (PREFERRED) for partitions {TOPIC}-{moved[0]}\n"
        again = elect(servers, "--topic", TOPIC, "--partition", str(moved[0]))
        assert again.stdout == f"Valid replica already elected for partitions {TOPIC}-{moved[0]}\n"
        everything = elect(servers, "--all-topic-partitions")
        assert everything.returncode == 0, everything.stderr
        wait_for(lambda: led_by_preferred(servers), "every partition led by its preferred replica")
        unknown = elect(servers, "--topic", "nowhere", "--partition", "0")
        assert unknown.returncode == 1
        assert unknown.stdout.startswith("Error completing leader election (PREFERRED) for partition: nowhere-0: "
                                         "org.apache.kafka.common.errors.UnknownTopicOrPartitionException")
        assert unknown.stderr.strip() == "1 replica(s) could not be elected"


def test_the_controller_rebalances_leaders_on_its_own(tmp_path):
    with replicated_topic(tmp_path, {"leader.imbalance.check.interval.seconds": "1"}) as nodes:
        restart_a_leader(nodes)
        wait_for(lambda: led_by_preferred(bootstrap(nodes)), "the controller's rebalance to move every leader back")
