"""Metadata snapshots on real processes: taken by size, used to cut the log, sent to a
replica that fell behind the leader's log start, and loaded at start-up."""

from __future__ import annotations

import re
import time

import pytest

from tests.support.quorum import bootstrap, start_cluster, stop_cluster

pytestmark = pytest.mark.fault
SNAPSHOT_BYTES = "2000"  # metadata.log.max.record.bytes.between.snapshots, tiny on purpose
DEADLINE_S = 30


def create_topics(nodes, names) -> None:
    """Creates every topic, retrying what a leader change interrupted (as clients do)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    pending, deadline = list(names), time.monotonic() + DEADLINE_S
    while pending:
        admin = AdminClient({"bootstrap.servers": bootstrap(nodes)})
        futures = admin.create_topics([NewTopic(name, 1, 1) for name in pending], request_timeout=20)
        failed = []
        for name, future in futures.items():
            try:
                future.result(30)
            except Exception as error:  # retried below until the deadline
                if "already exists" not in str(error):
                    failed.append(name)
                    last_error = error
        pending = failed
        assert not pending or time.monotonic() < deadline, f"could not create {pending}: {last_error}"


def topics_of(node) -> set[str]:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    return {name for name in admin.list_topics(timeout=10).topics if not name.startswith("__")}


def checkpoints(node) -> list[str]:
    directory = node.data_dir / "__cluster_metadata-0"
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".checkpoint") and not p.name.startswith("0000000000000000000000"))


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"expected {what} within {DEADLINE_S} s"
        time.sleep(0.5)


def test_snapshots_cut_the_log_catch_up_a_lagging_voter_and_load_at_start(tmp_path):
    nodes = start_cluster(tmp_path, overrides={"metadata.log.max.record.bytes.between.snapshots": SNAPSHOT_BYTES})
    try:
        lagging = nodes[2]
        first = [f"first-{i}" for i in range(10)]
        create_topics(nodes, first)
        wait_for(lambda: all(checkpoints(node) for node in nodes), "a metadata snapshot on every node")
        lagging.stop()
        local_end = max(int(name.split("-")[0]) for name in checkpoints(lagging))
        log_before = len(lagging.log_text())
        running = nodes[:2]
        second = [f"second-{i}" for i in range(60)]
        for name in second:  # one request each: one metadata log entry each
            create_topics(running, [name])
        # Both running voters (so the leader whichever it is) cut their logs well past the
        # stopped voter's end: it can only catch up from a snapshot.
        wait_for(lambda: all(max(int(n.split("-")[0]) for n in checkpoints(node)) > local_end + 30
                             for node in running), "newer snapshots on the running voters")
        lagging.start()
        wait_for(lambda: set(first + second) <= topics_of(lagging), "the restarted voter to catch up")
        loaded = [int(end) for end in re.findall(r"loaded the metadata snapshot SnapshotId\(end_offset=(\d+)",
                                                 lagging.log_text()[log_before:])]
        assert loaded and max(loaded) > local_end, (
            f"expected the lagging voter to load a snapshot fetched from the leader (past its own {local_end}),"
            f" loaded {loaded}")
        for node in nodes:
            node.stop()
        for node in nodes:
            node.process = None
        stop_cluster([])
        restarted = start_cluster_again(nodes)
        wait_for(lambda: all(set(first + second) <= topics_of(node) for node in restarted),
                 "every topic after a full restart")
    finally:
        stop_cluster(nodes)


def start_cluster_again(nodes):
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(len(nodes)) as pool:
        list(pool.map(lambda node: node.start(), nodes))
    return nodes
