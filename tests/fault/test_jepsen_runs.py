"""The jepsen-like harness against kraft, as the gate runs it: short seeded runs of what kraft
must survive (one node under kill -9, SIGSTOP, restarts and slow client links; three nodes
under every fault, partitions included; split roles), and the canary, an unsafe setup the
checker must catch losing acknowledged writes. Each run is the harness's own `run`: it starts
real nodes behind the proxy, drives librdkafka clients, heals, reads everything back, judges,
and stops every process it started, also when it fails. KRAFT_JEPSEN_SEED changes the seeds;
a failure prints the run folder (history, verdict, node logs, plots) and the command that
replays it."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

pytest.importorskip("kraft_jepsen", reason="the harness (jepsen-like/) is not installed; tools/venv --test installs it")

from kraft_jepsen.runner import RunOptions, run  # noqa: E402
from kraft_jepsen.workload import WorkloadOptions  # noqa: E402

pytestmark = pytest.mark.fault
SEED = int(os.environ.get("KRAFT_JEPSEN_SEED", "0"))
# Kafka's defaults fence a silent broker after 9 s; shorter keeps the runs short.
FAST_FAILOVER = {"broker.session.timeout.ms": "6000", "broker.heartbeat.interval.ms": "500",
                 "replica.lag.time.max.ms": "10000"}


def _run(tmp_path, options: RunOptions):
    result = run(options, tmp_path)
    summary = (result.directory / "summary.txt").read_text(encoding="utf-8")
    replay = (f"kraft-jepsen run --nodes {options.nodes} --roles {options.roles} --time {options.time_s:g}"
              f" --seed {options.seed} --nemesis {','.join(options.nemesis)}"
              + ("" if options.kill_every_node else " --no-whole-cluster-kill"))
    return result, f"{summary}\nrun folder: {result.directory}\nreplay: {replay}"


def test_one_node_survives_crashes_pauses_restarts_and_slow_clients(tmp_path):
    options = RunOptions(nodes=1, time_s=40, seed=SEED, nemesis=("kill", "pause", "restart", "slow-clients"),
                         heal_s=8, workload=WorkloadOptions(replication_factor=1, min_insync_replicas=1))
    result, report = _run(tmp_path, options)
    assert result.valid, f"expected a valid history, got:\n{report}"
    assert result.faults_started >= 2, f"expected the schedule to start faults, got {result.faults_started}\n{report}"
    assert result.verdict["stats"]["acknowledged_sends"] > 1000, report
    assert result.verdict["stats"]["final_read_complete"], report


def test_three_nodes_survive_every_fault(tmp_path):
    """Every fault but kill -9 of all nodes at once: after that, librdkafka's idempotent producer
    bumps its epoch and sends again batches it had written, which no broker may deduplicate
    (seen on Apache Kafka 4.4.0 too: the copy carries epoch 1 and sequence 0)."""
    options = RunOptions(nodes=3, time_s=60, seed=SEED + 1, nemesis=("all",), overrides=FAST_FAILOVER,
                         kill_every_node=False)
    result, report = _run(tmp_path, options)
    assert result.valid, f"expected a valid history, got:\n{report}"
    assert result.faults_started >= 3, f"expected the schedule to start faults, got {result.faults_started}\n{report}"
    assert result.verdict["stats"]["final_read_complete"], report


def test_split_roles_survive_crashes_and_partitions(tmp_path):
    options = RunOptions(nodes=3, roles="split", controllers=3, time_s=40, seed=SEED + 2,
                         nemesis=("kill", "isolate-leader", "isolate-controller"), overrides=FAST_FAILOVER,
                         kill_every_node=False)
    result, report = _run(tmp_path, options)
    assert result.valid, f"expected a valid history, got:\n{report}"
    assert result.verdict["stats"]["final_read_complete"], report


def test_the_canary_an_unsafe_setup_is_caught_losing_acknowledged_writes(tmp_path):
    """acks=1, min.insync.replicas=1 and unclean election, with one partition's leader cut off
    from the other nodes (clients still reach it): the isolated leader acknowledges writes its
    followers never get, a new leader is elected on the other side, and when the cut heals the
    old leader truncates them away. The checker must say so."""
    unsafe = WorkloadOptions(acks="1", idempotent=False, min_insync_replicas=1, unclean_leader_election=True)
    options = RunOptions(nodes=3, time_s=35, seed=SEED, nemesis=("isolate-leader",), scenario="isolate-leader",
                         overrides=FAST_FAILOVER, workload=unsafe)
    result, report = _run(tmp_path, options)
    anomalies = result.verdict["anomalies"]
    lost = sum(anomalies.get(name, {}).get("count", 0) for name in ("lost-write", "unseen"))
    assert not result.valid and lost > 0, f"expected the canary to lose acknowledged writes, got:\n{report}"


def test_a_bad_fault_name_is_refused_before_anything_starts(tmp_path):
    options = replace(RunOptions(), nemesis=("kill", "meteor"))
    with pytest.raises(ValueError, match="unknown fault 'meteor'"):
        run(options, tmp_path)
    assert list(tmp_path.iterdir()) == [], "expected no run folder for a refused schedule"
