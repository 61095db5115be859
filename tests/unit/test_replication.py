"""A partition leader's replication rules on virtual time (kraft.broker.replication), and the
controller's AlterPartition validation (kraft.controller.control.alter_partition)."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from kio.schema.errors import ErrorCode

from kraft.broker.replication import REFUSAL_BACKOFF_MS, LeaderState
from kraft.controller import IsrRequest, alter_partition
from kraft.metadata import MetadataImage, PartitionRecord, RegisterBrokerRecord, TopicRecord

LAG_MS = 30_000


def leader(isr=(1, 2, 3), replicas=(1, 2, 3), log_end=100, now_ms=0) -> LeaderState:
    return LeaderState.become_leader(1, replicas, isr, leader_epoch=5, partition_epoch=7, log_end_offset=log_end,
                                     now_ms=now_ms)


def test_the_high_watermark_waits_for_every_isr_member_and_never_moves_back():
    state = leader()
    assert state.high_watermark(120, current=100) == 100  # followers unknown since the new epoch
    state.on_follower_fetch(2, 110, 120, now_ms=10)
    assert state.high_watermark(120, current=100) == 100  # replica 3 has not fetched yet
    state.on_follower_fetch(3, 115, 120, now_ms=10)
    assert state.high_watermark(120, current=100) == 110
    state.on_follower_fetch(2, 90, 120, now_ms=20)  # a follower that truncated
    assert state.high_watermark(120, current=110) == 110


def test_a_lone_leader_commits_what_it_appends():
    assert leader(isr=(1,)).high_watermark(250, current=0) == 250


def test_a_follower_that_stops_fetching_is_dropped_after_the_lag_time_and_not_before():
    state = leader(now_ms=0)
    state.on_follower_fetch(2, 100, 100, now_ms=1000)
    state.on_follower_fetch(3, 100, 100, now_ms=1000)
    for now_ms in range(2000, 40_000, 1000):
        state.on_follower_fetch(2, 100 + now_ms, 100 + now_ms, now_ms)  # 2 keeps up; 3 is silent
    assert state.out_of_sync(31_000, LAG_MS) == ()
    change = state.propose_shrink(31_001, LAG_MS)
    assert change.isr == (1, 2) and change.partition_epoch == 8
    assert state.propose_shrink(32_000, LAG_MS) is None  # one change in flight per partition


def test_a_slow_follower_that_keeps_reaching_the_previous_log_end_stays_in_sync():
    """Kafka's lastCaughtUpTimeMs: a fetch reaching the log end of the previous fetch counts."""
    state = leader(isr=(1, 2), replicas=(1, 2), now_ms=0)
    leader_end = 100
    for now_ms in range(1000, 60_000, 1000):
        previous_end = leader_end
        leader_end += 50  # the leader always has more by the time the follower fetches again
        state.on_follower_fetch(2, previous_end, leader_end, now_ms)
    assert state.out_of_sync(60_000, LAG_MS) == ()


def test_the_isr_grows_only_by_a_follower_at_the_high_watermark_and_the_epoch_start():
    state = leader(isr=(1, 2), log_end=100)
    state.on_follower_fetch(2, 150, 150, now_ms=5)
    state.on_follower_fetch(3, 90, 150, now_ms=5)
    assert state.propose_expand(high_watermark=150, now_ms=5) is None  # 3 is behind
    state.on_follower_fetch(3, 150, 150, now_ms=6)
    change = state.propose_expand(high_watermark=150, now_ms=6)
    assert change.isr == (1, 2, 3)
    # While the addition is in flight the high watermark already waits for replica 3.
    state.on_follower_fetch(2, 200, 210, now_ms=7)
    assert state.high_watermark(210, current=150) == 150


def test_a_refused_change_is_not_proposed_again_at_once():
    state = leader(isr=(1, 2))
    state.on_follower_fetch(2, 100, 100, now_ms=0)
    state.on_follower_fetch(3, 100, 100, now_ms=0)
    assert state.propose_expand(100, now_ms=0) is not None
    state.change_refused(now_ms=0)
    assert state.propose_expand(100, now_ms=REFUSAL_BACKOFF_MS - 1) is None
    assert state.propose_expand(100, now_ms=REFUSAL_BACKOFF_MS) is not None


def test_a_metadata_update_of_the_same_epoch_installs_the_controllers_isr():
    state = leader()
    change = state.propose_shrink(LAG_MS + 1, LAG_MS)
    state.update_from_metadata((1, 2, 3), change.isr, change.partition_epoch)
    assert state.isr == (1,) and state.pending is None and state.partition_epoch == 8
    state.update_from_metadata((1, 2, 3), (1, 2, 3), 6)  # an older view: ignored
    assert state.isr == (1,)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([2, 3]), st.integers(0, 50), st.integers(0, 50)), max_size=40))
def test_the_high_watermark_never_passes_an_isr_member(fetches):
    """Followers fetch forward (an ISR member never truncates below the high watermark)."""
    state, leader_end, high_watermark, now_ms = leader(log_end=0), 0, 0, 0
    positions = {2: 0, 3: 0}
    for replica, step, grow in fetches:
        leader_end += grow
        now_ms += 100
        positions[replica] = min(positions[replica] + step, leader_end)
        state.on_follower_fetch(replica, positions[replica], leader_end, now_ms)
        high_watermark = state.high_watermark(leader_end, high_watermark)
        known = [state.followers[m].log_end_offset for m in state.maximal_isr if m != 1]
        if all(end >= 0 for end in known):
            assert high_watermark == min([leader_end, *known])
        else:
            assert high_watermark == 0


# ----- the controller's side -------------------------------------------------------------------

def image(fenced=()) -> MetadataImage:
    records = [RegisterBrokerRecord(b, f"inc-{b}", 10 + b, (("PLAINTEXT", "localhost", 9000 + b, "PLAINTEXT"),),
                                    None, fenced=b in fenced) for b in (1, 2, 3)]
    records += [TopicRecord("t", "00000000-0000-4000-8000-000000000001"),
                PartitionRecord("00000000-0000-4000-8000-000000000001", 0, (1, 2, 3), (1, 2, 3), 1, 4, 7)]
    return MetadataImage().apply(records, 0)


TOPIC_ID = "00000000-0000-4000-8000-000000000001"


def request(isr, leader_epoch=4, partition_epoch=7, epochs=None) -> IsrRequest:
    return IsrRequest(TOPIC_ID, 0, leader_epoch, partition_epoch,
                      tuple((b, (epochs or {}).get(b, -1)) for b in isr))


def test_alter_partition_commits_a_valid_isr_and_answers_the_new_partition_epoch():
    error, records, results = alter_partition(image(), 1, 11, [request((1, 2))])
    assert error == ErrorCode.none and records[0].isr == (1, 2)
    assert (results[0].error_code, results[0].isr, results[0].partition_epoch, results[0].leader_epoch) == \
        (ErrorCode.none, (1, 2), 8, 4)
    applied = image().apply(records, 1)
    assert applied.topic("t").partitions[0].partition_epoch == 8


def test_alter_partition_refuses_as_kafka_does():
    cases = [
        (dict(isr=(1, 2), leader_epoch=3), ErrorCode.fenced_leader_epoch),
        (dict(isr=(1, 2), leader_epoch=5), ErrorCode.not_controller),
        (dict(isr=(1, 2), partition_epoch=6), ErrorCode.invalid_update_version),
        (dict(isr=(1, 2), partition_epoch=8), ErrorCode.not_controller),
        (dict(isr=(2, 3)), ErrorCode.invalid_request),  # without the leader
        (dict(isr=(1, 4)), ErrorCode.invalid_request),  # not a replica
        (dict(isr=(1, 2), epochs={2: 99}), ErrorCode.ineligible_replica),  # restarted since
    ]
    for arguments, expected in cases:
        _, records, results = alter_partition(image(), 1, 11, [request(**arguments)])
        assert (results[0].error_code, records) == (expected, []), arguments
    _, _, results = alter_partition(image(fenced=(3,)), 1, 11, [request((1, 2, 3))])
    assert results[0].error_code == ErrorCode.ineligible_replica
    _, _, results = alter_partition(image(), 2, 12, [request((1, 2))])
    assert results[0].error_code == ErrorCode.invalid_request  # not the leader
    assert alter_partition(image(), 1, 99, [request((1, 2))])[0] == ErrorCode.stale_broker_epoch


# ----- leader elections (ElectLeaders, auto.leader.rebalance.enable) ----------------------------

def image_led_by(leader: int, isr=(1, 2, 3), fenced=()) -> MetadataImage:
    records = [RegisterBrokerRecord(b, f"inc-{b}", 10 + b, (("PLAINTEXT", "localhost", 9000 + b, "PLAINTEXT"),),
                                    None, fenced=b in fenced) for b in (1, 2, 3)]
    records += [TopicRecord("t", TOPIC_ID), PartitionRecord(TOPIC_ID, 0, (1, 2, 3), isr, leader, 4, 7),
                PartitionRecord(TOPIC_ID, 1, (2, 3, 1), (2, 3, 1), 2, 0, 0)]
    return MetadataImage().apply(records, 0)


def test_preferred_election_moves_leadership_back_to_the_first_replica_when_it_can_lead():
    from kraft.controller import PREFERRED_ELECTION, elect_leaders

    image = image_led_by(2)
    records, results = elect_leaders(image, PREFERRED_ELECTION, None)  # what the controller's rebalance runs
    assert [(r.topic_id, r.partition_id) for r in records] == [(TOPIC_ID, 0)]
    assert results == {"t": [(0, ErrorCode.none, None)]}  # partition 1 needs nothing and is left out
    assert image.apply(records, 1).topic("t").partitions[0].leader == 1
    _, results = elect_leaders(image, PREFERRED_ELECTION, [("t", 1), ("t", 9), ("u", 0)])
    assert [r[1] for r in results["t"]] == [ErrorCode.election_not_needed, ErrorCode.unknown_topic_or_partition]
    assert results["u"][0][1] == ErrorCode.unknown_topic_or_partition
    for blocked in (image_led_by(2, isr=(2, 3)), image_led_by(2, fenced=(1,))):
        assert elect_leaders(blocked, PREFERRED_ELECTION, None)[0] == []
        records, results = elect_leaders(blocked, PREFERRED_ELECTION, [("t", 0)])
        assert records == [] and results["t"][0][1] == ErrorCode.preferred_leader_not_available


def test_unclean_election_prefers_the_isr_and_otherwise_takes_any_live_replica():
    from kraft.controller import UNCLEAN_ELECTION, elect_leaders

    records, results = elect_leaders(image_led_by(2), UNCLEAN_ELECTION, [("t", 0)])
    assert records == [] and results["t"][0][1] == ErrorCode.election_not_needed
    leaderless = image_led_by(-1, isr=(1,), fenced=(1,))
    records, results = elect_leaders(leaderless, UNCLEAN_ELECTION, [("t", 0)])
    partition = leaderless.apply(records, 1).topic("t").partitions[0]
    assert results["t"][0][1] == ErrorCode.none and (partition.leader, partition.isr) == (2, (2,))
    nobody = image_led_by(-1, isr=(1,), fenced=(1, 2, 3))
    assert elect_leaders(nobody, UNCLEAN_ELECTION, [("t", 0)])[1]["t"][0][1] == ErrorCode.eligible_leaders_not_available
