"""Three combined nodes as real processes with a static quorum: the active controller is
killed (-9) or paused (SIGSTOP) again and again, and topic creation from a real client
works again within seconds each time; no created topic is ever lost."""

from __future__ import annotations

import signal
import time

import pytest

from tests.support.quorum import QuorumNode, active_controller, bootstrap, start_cluster, stop_cluster

pytestmark = pytest.mark.fault
RECOVERY_DEADLINE_S = 20
ROUNDS = 3
# Shorter than Kafka's defaults (9000 / 2000 ms), so a killed broker is fenced within the test.
FAST_BROKER_SESSION = {"broker.session.timeout.ms": "6000", "broker.heartbeat.interval.ms": "500"}


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
        nodes = start_cluster(tmp_path, overrides=FAST_BROKER_SESSION)
        yield nodes
    finally:
        stop_cluster(nodes)


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


def test_a_stopped_active_controller_hands_over_at_once(cluster):
    """SIGTERM: the broker half is fenced (controlled shutdown) and the quorum leader
    resigns, so a new controller acts well before a fetch timeout would elect one."""
    victim = active_controller(cluster)
    victim.stop()
    others = [node for node in cluster if node is not victim]
    took = create_topic_within(others, "after-clean-stop", RECOVERY_DEADLINE_S)
    assert "resigning as quorum leader" in victim.log_text()
    # Bounded loosely: the client's own retries and a loaded 2-core machine add seconds.
    assert took < 6.0, f"expected a prompt hand-over, took {took:.2f} s"
    victim.start()
