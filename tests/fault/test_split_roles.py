"""Split roles on real processes: three controller-only voters and two broker-only
observers; clients talk to the brokers only, and the active controller can die."""

from __future__ import annotations

import concurrent.futures
import time

import pytest

from tests.support.kraft_node import base_properties, new_cluster_id
from tests.support.quorum import QuorumNode, bootstrap, free_port, stop_cluster

pytestmark = pytest.mark.fault
DEADLINE_S = 30


def start_split_cluster(directory) -> tuple[list[QuorumNode], list[QuorumNode]]:
    ports = {node_id: free_port() for node_id in (1, 2, 3)}
    voters = ",".join(f"{node_id}@127.0.0.1:{port}" for node_id, port in ports.items())
    cluster_id = new_cluster_id()
    controllers, brokers = [], []
    for node_id in (1, 2, 3, 4, 5):
        is_controller = node_id in ports
        overrides = {
            **base_properties(node_id, directory / f"node-{node_id}" / "data"),
            "process.roles": "controller" if is_controller else "broker",
            "controller.quorum.voters": voters, "controller.quorum.bootstrap.servers": None,
            "listeners": f"CONTROLLER://127.0.0.1:{ports[node_id]}" if is_controller else "PLAINTEXT://127.0.0.1:0",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        }
        node = QuorumNode(directory / f"node-{node_id}", node_id=node_id, cluster_id=cluster_id,
                          overrides=overrides, start_timeout_s=90,
                          client_listener="CONTROLLER" if is_controller else "PLAINTEXT")
        (controllers if is_controller else brokers).append(node)
    everyone = controllers + brokers
    try:
        with concurrent.futures.ThreadPoolExecutor(len(everyone)) as pool:
            list(pool.map(lambda node: node.start(), everyone))
    except BaseException:
        stop_cluster(everyone)
        raise
    return controllers, brokers


def _leader_id(brokers) -> int:
    """The active controller's id, from DescribeQuorum through a broker (which forwards it)."""
    import subprocess
    import sys

    from tests.support.quorum import LEADER_ID

    result = subprocess.run([sys.executable, "-m", "tools.metadata_quorum", "--bootstrap-server", bootstrap(brokers),
                             "describe", "--status"], capture_output=True, text=True, timeout=60, check=True)
    return int(LEADER_ID.search(result.stdout)[1])


def create_within(brokers, name: str) -> float:
    from confluent_kafka.admin import AdminClient, NewTopic

    started = time.monotonic()
    deadline = started + DEADLINE_S
    while True:
        admin = AdminClient({"bootstrap.servers": bootstrap(brokers), "socket.timeout.ms": 3000})
        try:
            admin.create_topics([NewTopic(name, 2, 1)], request_timeout=5)[name].result(8)
            return time.monotonic() - started
        except Exception as error:  # retried until the deadline
            if "already exists" in str(error):  # an earlier attempt that timed out did succeed
                return time.monotonic() - started
            assert time.monotonic() < deadline, f"expected {name} created within {DEADLINE_S} s: {error}"
            time.sleep(0.2)


def test_controllers_and_brokers_in_separate_processes(tmp_path):
    controllers, brokers = start_split_cluster(tmp_path)
    try:
        create_within(brokers, "split-events")
        from confluent_kafka import Consumer, Producer, TopicPartition

        producer = Producer({"bootstrap.servers": bootstrap(brokers), "enable.idempotence": True})
        for index in range(100):
            producer.produce("split-events", key=b"k%d" % index, value=b"v")
        assert producer.flush(30) == 0
        consumer = Consumer({"bootstrap.servers": bootstrap(brokers), "group.id": "split", "auto.offset.reset": "earliest"})
        consumer.assign([TopicPartition("split-events", p, 0) for p in range(2)])
        got, deadline = 0, time.monotonic() + DEADLINE_S
        while got < 100 and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            got += message is not None and message.error() is None
        consumer.close()
        assert got == 100, f"expected 100 records through the broker-only nodes, got {got}"
        leader_id = _leader_id(brokers)
        victim = next(node for node in controllers if node.node_id == leader_id)
        victim.kill9()
        took = create_within(brokers, "after-controller-died")
        print(f"topic created {took:.2f} s after the active controller was killed")
    finally:
        stop_cluster(controllers + brokers)
