"""A broker accepts clients only when it can serve them, as Kafka's brokers do: its client
listener is bound at start (so it knows its port) but accepts connections only once the active
controller has registered and unfenced it, which needs its metadata image caught up. So a tool
started the moment the ports accept finds every broker registered: no "only 0 broker(s) are
registered", and no retry needed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.kraft_node import REPO_ROOT, base_properties, new_cluster_id
from tests.support.quorum import QuorumNode, accepts, free_port, stop_cluster

pytestmark = pytest.mark.interop

READY_TIMEOUT_S = 90
POLL_INTERVAL_S = 0.01
TOOL_TIMEOUT_S = 60


def test_create_with_replication_factor_3_the_moment_three_ports_accept(tmp_path: Path) -> None:
    controller_ports = {node_id: free_port() for node_id in (1, 2, 3)}
    client_ports = {node_id: free_port() for node_id in (1, 2, 3)}
    voters = ",".join(f"{node_id}@127.0.0.1:{port}" for node_id, port in controller_ports.items())
    cluster_id = new_cluster_id()
    nodes = []
    for node_id in (1, 2, 3):
        properties = {
            **base_properties(node_id, tmp_path / f"node-{node_id}" / "data"),
            "controller.quorum.voters": voters, "controller.quorum.bootstrap.servers": None,
            "listeners": f"PLAINTEXT://127.0.0.1:{client_ports[node_id]},CONTROLLER://127.0.0.1:{controller_ports[node_id]}",
        }
        nodes.append(QuorumNode(tmp_path / f"node-{node_id}", node_id=node_id, cluster_id=cluster_id,
                                overrides=properties))
    try:
        for node in nodes:
            node.start(wait_ready=False)
        deadline = time.monotonic() + READY_TIMEOUT_S
        waiting = set(client_ports.values())
        while waiting:
            assert time.monotonic() < deadline, (
                f"expected all three client ports to accept within {READY_TIMEOUT_S} s; still closed: {sorted(waiting)}\n"
                + "\n".join(node.log_tail(20) for node in nodes))
            assert all(node.is_running() for node in nodes), "\n".join(node.log_tail(30) for node in nodes)
            waiting = {port for port in waiting if not accepts(port)}
            time.sleep(POLL_INTERVAL_S)
        bootstrap = ",".join(f"127.0.0.1:{port}" for port in client_ports.values())
        result = subprocess.run(
            [sys.executable, "-m", "tools.topics", "--create", "--topic", "ready", "--partitions", "3",
             "--replication-factor", "3", "--bootstrap-server", bootstrap],
            capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, cwd=REPO_ROOT, stdin=subprocess.DEVNULL)
        assert (result.returncode, result.stdout) == (0, "Created topic ready.\n"), (
            f"expected the topic created at the first try, got exit {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        for node in nodes:
            text = node.log_text()
            order = [text.find(line) for line in ("listener PLAINTEXT bound to", "registered and unfenced",
                                                  "listener PLAINTEXT accepting connections")]
            assert -1 < order[0] < order[1] < order[2], f"expected bind, unfence, accept in that order:\n{text}"
    finally:
        stop_cluster(nodes)
