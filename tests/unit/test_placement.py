"""Replica placement: only unfenced brokers, leaders spread evenly, replicas on distinct racks."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings, strategies as st

from kio.schema.errors import ErrorCode

from kraft.config import parse_server_config
from kraft.controller.control import ControllerLogic, NewTopic, place_replicas
from kraft.metadata import MetadataImage, PartitionRecord, RegisterBrokerRecord

CONFIG = parse_server_config({
    "process.roles": "broker,controller", "node.id": "1", "controller.quorum.voters": "1@localhost:9093",
    "listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "controller.listener.names": "CONTROLLER",
})


@st.composite
def racked_brokers(draw, racks_min: int = 1):
    """{broker id: rack}: 1-5 racks named r0.., each holding 1-4 brokers with ids in no rack order."""
    rack_sizes = draw(st.lists(st.integers(1, 4), min_size=racks_min, max_size=5))
    ids = draw(st.permutations(range(1, sum(rack_sizes) + 1)))
    racks: dict[int, str] = {}
    position = 0
    for rack_index, size in enumerate(rack_sizes):
        for broker in ids[position:position + size]:
            racks[broker] = f"r{rack_index}"
        position += size
    return racks


def image_with(racks: dict[int, str | None], fenced: frozenset[int] = frozenset()) -> MetadataImage:
    records = [RegisterBrokerRecord(b, f"incarnation-{b}", 0, (("PLAINTEXT", "localhost", 9092 + b, "PLAINTEXT"),),
                                    rack, fenced=b in fenced) for b, rack in sorted(racks.items())]
    return MetadataImage().apply(records, len(records) - 1)


def assert_leaders_even(placed: list[tuple[int, ...]], brokers: list[int]) -> None:
    leaders = Counter(replicas[0] for replicas in placed)
    counts = {b: leaders.get(b, 0) for b in brokers}
    assert max(counts.values()) - min(counts.values()) <= 1, f"expected leaders within one per broker, got {counts}"


@given(racks=racked_brokers(), data=st.data(), first=st.integers(0, 20), partitions=st.integers(1, 60),
       seed=st.integers(0, 2**32))
@settings(max_examples=200, deadline=None)
def test_replicas_use_as_many_racks_as_they_can_and_leaders_spread(racks, data, first, partitions, seed):
    brokers = sorted(racks)
    rack_count = len(set(racks.values()))
    replication = data.draw(st.integers(1, len(brokers)), label="replication")
    placed = place_replicas(brokers, first, partitions, replication, random.Random(seed), racks)
    assert len(placed) == partitions
    for replicas in placed:
        assert len(set(replicas)) == replication, f"expected {replication} distinct brokers, got {replicas}"
        used = {racks[b] for b in replicas}
        assert len(used) == min(replication, rack_count), (
            f"expected replicas {replicas} on {min(replication, rack_count)} racks, got {sorted(used)}")
    assert_leaders_even(placed, brokers)


@given(racks=racked_brokers(racks_min=2), data=st.data(), partitions=st.integers(1, 40), seed=st.integers(0, 2**32))
@settings(max_examples=100, deadline=None)
def test_replication_up_to_the_rack_count_puts_each_replica_on_its_own_rack(racks, data, partitions, seed):
    rack_count = len(set(racks.values()))
    replication = data.draw(st.integers(1, rack_count), label="replication")
    for replicas in place_replicas(sorted(racks), 0, partitions, replication, random.Random(seed), racks):
        assert len({racks[b] for b in replicas}) == replication, f"expected distinct racks, got {replicas} of {racks}"


@given(racks=racked_brokers(), data=st.data(), partitions=st.integers(1, 30), seed=st.integers(0, 2**32))
@settings(max_examples=100, deadline=None)
def test_create_topics_places_only_on_unfenced_brokers(racks, data, partitions, seed):
    fenced = frozenset(data.draw(st.sets(st.sampled_from(sorted(racks)), max_size=len(racks) - 1), label="fenced"))
    unfenced = sorted(set(racks) - fenced)
    replication = data.draw(st.integers(1, len(unfenced)), label="replication")
    records, results = ControllerLogic(CONFIG, random.Random(seed)).create_topics(
        image_with(racks, fenced), [NewTopic("t", partitions, replication)])
    assert results[0].error_code == ErrorCode.none, f"expected the topic created, got {results[0]}"
    placed = [r.replicas for r in records if isinstance(r, PartitionRecord)]
    assert len(placed) == partitions
    assert all(set(replicas) <= set(unfenced) for replicas in placed), f"expected only {unfenced}, got {placed}"
    usable_racks = len({racks[b] for b in unfenced})
    assert all(len({racks[b] for b in replicas}) == min(replication, usable_racks) for replicas in placed)
    assert_leaders_even(placed, unfenced)


@given(racks=racked_brokers(), partitions=st.integers(1, 30), seed=st.integers(0, 2**32))
@settings(max_examples=50, deadline=None)
def test_placement_is_a_function_of_the_seed(racks, partitions, seed):
    replication = min(3, len(racks))
    first = place_replicas(sorted(racks), 0, partitions, replication, random.Random(seed), racks)
    again = place_replicas(sorted(racks), 0, partitions, replication, random.Random(seed), dict(reversed(racks.items())))
    assert first == again, "expected the same placement from the same seed, whatever order the racks came in"


@given(brokers=st.integers(1, 7), partitions=st.integers(1, 40), seed=st.integers(0, 2**32))
@settings(max_examples=50, deadline=None)
def test_without_racks_placement_is_the_plain_stripe(brokers, partitions, seed):
    ids = list(range(1, brokers + 1))
    replication = min(brokers, 3)
    plain = place_replicas(ids, 0, partitions, replication, random.Random(seed))
    no_racks = place_replicas(ids, 0, partitions, replication, random.Random(seed), {b: None for b in ids})
    start = ids.index(plain[0][0])
    expected = [tuple(ids[(start + p + r) % brokers] for r in range(replication)) for p in range(partitions)]
    assert plain == no_racks == expected, f"expected the sorted stripe {expected}, got {plain} and {no_racks}"


def test_unbalanced_racks_still_spread_leaders_and_keep_replicas_apart():
    racks = {1: "a", 2: "a", 3: "a", 4: "b"}
    placed = place_replicas(sorted(racks), 0, 8, 2, random.Random(0), racks)
    assert all({racks[b] for b in replicas} == {"a", "b"} for replicas in placed), placed
    assert Counter(replicas[0] for replicas in placed) == {1: 2, 2: 2, 3: 2, 4: 2}, placed


def test_brokers_without_a_rack_form_a_rack_of_their_own():
    racks = {1: "a", 2: "a", 3: None, 4: None}
    for replicas in place_replicas(sorted(racks), 0, 12, 2, random.Random(3), racks):
        assert {racks[b] for b in replicas} == {"a", None}, f"expected one replica in 'a' and one rackless, got {replicas}"
