"""Three combined nodes as real processes with a static quorum: the active controller is
killed (-9) or paused (SIGSTOP) again and again, and topic creation from a real client
works again within seconds each time; no created topic is ever lost."""

from __future__ import annotations

import concurrent.futures
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.kraft_node import KraftNode, base_properties, new_cluster_id

pytestmark = pytest.mark.fault
RECOVERY_DEADLINE_S = 20
ROUNDS = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class QuorumNode(KraftNode):
    """A node of a static quorum (controller.quorum.voters), formatted without --standalone."""

    def format_command(self) -> list[str]:
        return [part for part in super().format_command() if part != "--standalone"]


def start_cluster(directory: Path, size: int = 3) -> list[QuorumNode]:
    ports = {node_id: free_port() for node_id in range(1, size + 1)}
    voters = ",".join(f"{node_id}@127.0.0.1:{port}" for node_id, port in ports.items())
    cluster_id = new_cluster_id()
    nodes = []
    for node_id, port in ports.items():
        overrides = {
            "controller.quorum.voters": voters, "controller.quorum.bootstrap.servers": None,
            "listeners": f"PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{port}",
            "broker.session.timeout.ms": "6000", "broker.heartbeat.interval.ms": "500",
        }
        properties = {**base_properties(node_id, directory / f"node-{node_id}" / "data"), **overrides}
        node = QuorumNode(directory / f"node-{node_id}", node_id=node_id, cluster_id=cluster_id,
                          overrides={k: v for k, v in properties.items()}, start_timeout_s=90)
        nodes.append(node)
    with concurrent.futures.ThreadPoolExecutor(size) as pool:
        list(pool.map(lambda n: n.start(), nodes))  # a quorum needs its majority up together
    return nodes


def bootstrap(nodes: list[QuorumNode]) -> str:
    return ",".join(node.bootstrap for node in nodes if node.is_running())


def active_controller(nodes: list[QuorumNode]) -> QuorumNode:
    """The quorum leader, from DescribeQuorum (which brokers forward to it)."""
    result = subprocess.run([sys.executable, "-m", "tools.metadata_quorum", "--bootstrap-server", bootstrap(nodes),
                             "describe", "--status"], capture_output=True, text=True, timeout=60, check=True)
    leader = int(re.search(r"^LeaderId:\s+(\d+)", result.stdout, re.M)[1])
    return next(node for node in nodes if node.node_id == leader)


def create_topic_within(nodes: list[QuorumNode], name: str, deadline_s: float) -> float:
    from confluent_kafka.admin import AdminClient, NewTopic

    started = time.monotonic()
    last_error = None
    while time.monotonic() - started < deadline_s:
        admin = AdminClient({"bootstrap.servers": bootstrap(nodes), "socket.timeout.ms": 3000})  # kept alive below
        try:
            admin.create_topics([NewTopic(name, 2, 1)], request_timeout=5)[name].result(8)
            return time.monotonic() - started
        except Exception as error:  # any client error: retry until the deadline
            if "already exists" in str(error):
                return time.monotonic() - started
            last_error = error
            time.sleep(0.2)
    raise AssertionError(f"expected topic {name} created within {deadline_s} s; last error: {last_error}")


def topics_everywhere(nodes: list[QuorumNode]) -> list[set[str]]:
    from confluent_kafka.admin import AdminClient

    views = []
    for node in nodes:
        if node.is_running():
            admin = AdminClient({"bootstrap.servers": node.bootstrap})
            views.append(set(admin.list_topics(timeout=10).topics))
    return views


@pytest.fixture
def cluster(tmp_path):
    nodes: list[QuorumNode] = []
    try:
        nodes = start_cluster(tmp_path)
        yield nodes
    finally:
        for node in nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGCONT)
            node.stop()


def test_killing_the_active_controller_repeatedly_loses_no_topic(cluster):
    created = []
    for round_index in range(ROUNDS):
        name = f"before-{round_index}"
        create_topic_within(cluster, name, RECOVERY_DEADLINE_S)
        created.append(name)
        victim = active_controller(cluster)
        victim.kill9()
        took = create_topic_within(cluster, f"after-{round_index}", RECOVERY_DEADLINE_S)
        created.append(f"after-{round_index}")
        assert took < RECOVERY_DEADLINE_S
        victim.start()
    deadline = time.monotonic() + RECOVERY_DEADLINE_S
    while time.monotonic() < deadline:
        views = topics_everywhere(cluster)
        if all(set(created) <= view for view in views):
            break
        time.sleep(0.5)
    for view in topics_everywhere(cluster):
        assert set(created) <= view, f"expected every created topic on every node, missing {set(created) - view}"


def test_pausing_the_active_controller_moves_the_role(cluster):
    victim = active_controller(cluster)
    victim.process.send_signal(signal.SIGSTOP)
    try:
        others = [node for node in cluster if node is not victim]
        create_topic_within(others, "while-paused", RECOVERY_DEADLINE_S)
        assert active_controller(others).node_id != victim.node_id
    finally:
        victim.process.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + RECOVERY_DEADLINE_S
    while "while-paused" not in topics_everywhere([victim])[0]:
        assert time.monotonic() < deadline, "expected the resumed node to catch up with the new topic"
        time.sleep(0.5)
