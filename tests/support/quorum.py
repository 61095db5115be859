"""A static quorum of combined kraft nodes as real processes, for fault tests and benchmarks.

Every node is a broker and a controller; the voters (`controller.quorum.voters`) are fixed
before any node starts, so each controller listener gets a port chosen here rather than port 0.
The nodes start together, because a quorum needs its majority up to elect a leader, and
`stop_cluster` stops them whatever state a test left them in (paused ones are resumed first,
since a stopped process cannot act on SIGTERM).
"""

from __future__ import annotations

import concurrent.futures
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.support.kraft_node import KraftNode, base_properties, new_cluster_id

QUORUM_START_TIMEOUT_S = 90
DESCRIBE_TIMEOUT_S = 60
LEADER_ID = re.compile(r"^LeaderId:\s+(\d+)", re.M)


def accepts(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port right now."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A port that was free a moment ago; the controller listeners must be known up front."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class QuorumNode(KraftNode):
    """A node of a static quorum (controller.quorum.voters), formatted without --standalone."""

    def format_command(self) -> list[str]:
        return [part for part in super().format_command() if part != "--standalone"]


def start_cluster(directory: Path, size: int = 3,
                  overrides: Mapping[str, str | None] | None = None) -> list[QuorumNode]:
    """`size` combined nodes under `directory`, node ids 1..size, started together.

    `overrides` apply to every node on top of the quorum settings (None removes a key); without
    them the nodes keep kraft's defaults, which are Kafka's.
    """
    ports = {node_id: free_port() for node_id in range(1, size + 1)}
    voters = ",".join(f"{node_id}@127.0.0.1:{port}" for node_id, port in ports.items())
    cluster_id = new_cluster_id()
    nodes = []
    for node_id, port in ports.items():
        quorum = {
            "controller.quorum.voters": voters, "controller.quorum.bootstrap.servers": None,
            "listeners": f"PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{port}",
        }
        properties = {**base_properties(node_id, directory / f"node-{node_id}" / "data"), **quorum,
                      **(overrides or {})}
        nodes.append(QuorumNode(directory / f"node-{node_id}", node_id=node_id, cluster_id=cluster_id,
                                overrides=properties, start_timeout_s=QUORUM_START_TIMEOUT_S))
    try:
        with concurrent.futures.ThreadPoolExecutor(size) as pool:
            list(pool.map(lambda node: node.start(), nodes))
    except BaseException:
        stop_cluster(nodes)
        raise
    return nodes


def stop_cluster(nodes: Sequence[QuorumNode]) -> None:
    """Stops every node; a node paused with SIGSTOP is resumed first so SIGTERM reaches it."""
    for node in nodes:
        if node.is_running():
            node.process.send_signal(signal.SIGCONT)
        node.stop()


def bootstrap(nodes: Sequence[QuorumNode]) -> str:
    """bootstrap.servers naming every running node."""
    return ",".join(node.bootstrap for node in nodes if node.is_running())


def active_controller(nodes: Sequence[QuorumNode]) -> QuorumNode:
    """The quorum leader, from DescribeQuorum (which brokers forward to it)."""
    result = subprocess.run([sys.executable, "-m", "tools.metadata_quorum", "--bootstrap-server", bootstrap(nodes),
                             "describe", "--status"], capture_output=True, text=True,
                            timeout=DESCRIBE_TIMEOUT_S, check=True)
    match = LEADER_ID.search(result.stdout)
    assert match is not None, f"expected a 'LeaderId:' line from describe --status, got:\n{result.stdout}"
    leader = int(match[1])
    return next(node for node in nodes if node.node_id == leader)
