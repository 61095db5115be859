"""The harness's fault schedules and partition shapes: drawn from the seed alone, and every
network fault cuts what its name says, on a cluster double that records what it is asked."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("kraft_jepsen", reason="the harness (jepsen-like/) is not installed; tools/venv --test installs it")

from kraft_jepsen.nemesis import (ALL_FAULTS, SCENARIOS, Nemesis, applicable, expand_faults,  # noqa: E402
                                  random_schedule)


class _Node:
    def __init__(self, node_id: int) -> None:
        self.node_id = node_id


class _Proxy:
    def __init__(self) -> None:
        self.rules_seen: list[tuple[list, list]] = []

    def rules(self, cut=(), slow=()) -> None:
        self.rules_seen.append((list(cut), list(slow)))


class _Cluster:
    def __init__(self, size: int) -> None:
        self.nodes = [_Node(i) for i in range(1, size + 1)]
        self.proxy = _Proxy()

    def active_controller(self) -> int:
        return 2


class _History:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def record(self, process, type_, f, value=None, error=None, op=None):
        self.events.append((process, type_, f, value))
        return {"op": len(self.events)}


def _nemesis(size: int, seed: int = 1) -> tuple[Nemesis, _Cluster, _History]:
    cluster, history = _Cluster(size), _History()
    return Nemesis(cluster, history, random.Random(seed), lambda partition: 3, partitions=6), cluster, history


def test_the_same_seed_draws_the_same_schedule_and_another_seed_another():
    faults = expand_faults(["all"])
    first = random_schedule(random.Random(42), faults, 300)
    assert first == random_schedule(random.Random(42), faults, 300)
    assert first != random_schedule(random.Random(43), faults, 300)
    assert all(0 < step.at_s < 300 and step.hold_s > 0 for step in first), first
    assert {name for step in first for name in step.faults} <= set(faults)


def test_a_mix_never_pairs_two_faults_of_one_kind():
    steps = random_schedule(random.Random(5), expand_faults(["all"]), 3000, mix_p=1.0)
    kinds = [{("process" if f in ("kill", "pause", "restart") else "slow" if f.startswith("slow") else "partition")
              for f in step.faults} for step in steps]
    assert all(len(k) == len(step.faults) for k, step in zip(kinds, steps)), steps


def test_groups_expand_and_unknown_faults_are_refused():
    assert expand_faults(["process", "kill", "slow"]) == ("kill", "pause", "restart", "slow-network", "slow-clients")
    assert expand_faults(["none"]) == ()
    assert set(expand_faults(["all"])) == set(ALL_FAULTS)
    with pytest.raises(ValueError, match="unknown fault 'meteor'"):
        expand_faults(["kill", "meteor"])


def test_network_faults_that_cannot_mean_anything_are_left_out_for_small_clusters():
    assert applicable(ALL_FAULTS, 1) == ("kill", "pause", "restart", "slow-clients")
    assert "bridge" in applicable(ALL_FAULTS, 3) and "ring" not in applicable(ALL_FAULTS, 3)
    assert "ring" in applicable(ALL_FAULTS, 5)


def _cut_of(name: str, size: int) -> set[tuple[str, str]]:
    nemesis, cluster, history = _nemesis(size)
    fault = nemesis.start(name)
    cut = set(map(tuple, cluster.proxy.rules_seen[-1][0]))
    nemesis.end(fault)
    assert cluster.proxy.rules_seen[-1] == ([], []), f"expected {name} to heal every rule, got {cluster.proxy.rules_seen[-1]}"
    assert [e[1] for e in history.events] == ["invoke", "ok"], history.events
    return cut


def test_isolating_the_leader_or_the_controller_cuts_exactly_its_links_both_ways():
    everyone = {"1", "2", "3"}
    leader = {(a, b) for a in everyone for b in everyone if a != b and "3" in (a, b)}
    assert _cut_of("isolate-leader", 3) == leader
    controller = {(a, b) for a in everyone for b in everyone if a != b and "2" in (a, b)}
    assert _cut_of("isolate-controller", 3) == controller


def test_halves_separate_a_minority_from_a_majority():
    cut = _cut_of("partition-halves", 5)
    assert len(cut) == 2 * 2 * 3, f"expected a 2|3 split to cut 12 directed links, got {sorted(cut)}"
    assert all((b, a) in cut for a, b in cut), f"expected the cut both ways, got {sorted(cut)}"
    reached = {a: {b for b in "12345" if b != a and (a, b) not in cut} for a in "12345"}
    sizes = sorted(len(others) + 1 for others in reached.values())
    assert sizes == [2, 2, 3, 3, 3], f"expected sides of 2 and 3 nodes, got {reached}"


def test_a_bridge_joins_two_halves_and_one_way_cuts_one_direction():
    cut = _cut_of("bridge", 5)
    touched = {a for a, _ in cut}
    assert len(touched) == 4, f"expected every node but the bridge to lose links, got {sorted(cut)}"
    one_way = _cut_of("one-way", 3)
    assert len(one_way) == 1 and not any((b, a) in one_way for a, b in one_way), one_way


def test_a_ring_of_five_keeps_only_neighbours():
    cut = _cut_of("ring", 5)
    kept = {(a, b) for a in "12345" for b in "12345" if a != b} - cut
    assert all(abs(int(a) - int(b)) in (1, 4) for a, b in kept), sorted(kept)
    assert len(kept) == 10, sorted(kept)


def test_every_scenario_fits_in_its_run():
    for name, make in SCENARIOS.items():
        steps = make(60.0)
        assert steps, f"expected scenario {name} to have steps"
        assert all(step.at_s + step.hold_s <= 60 for step in steps), (name, steps)
