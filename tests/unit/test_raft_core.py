"""Scenario tests of the pure KRaft core: each builds replicas, feeds them messages and
clock ticks by hand, and reads the ``Ready`` batches they hand back."""

from __future__ import annotations

import ast
import random
from pathlib import Path

from kraft.raft import messages as m
from kraft.raft.core import RaftCore
from kraft.raft.log import Entry, RaftLog, Snapshot, SnapshotId
from kraft.raft.ready import RaftConfig
from kraft.raft.roles import Candidate, ElectionState, Follower, Leader, Prospective, Resigned, Unattached

CONFIG = RaftConfig(election_timeout_ms=1000, fetch_timeout_ms=2000)
VOTERS = frozenset({1, 2, 3})


def log_of(*epochs: int, start: int = 0, snapshot: Snapshot | None = None) -> RaftLog:
    """A log whose entry at offset ``start + i`` has epoch ``epochs[i]``."""
    entries = [Entry(start + i, epoch, f"e{start + i}".encode()) for i, epoch in enumerate(epochs)]
    return RaftLog.restore(snapshot, entries)


def core(node_id: int, state: ElectionState | None = None, log: RaftLog | None = None,
         voters=VOTERS, now_ms: int = 0) -> RaftCore:
    return RaftCore(node_id, voters, CONFIG, random.Random(node_id), state, log or RaftLog(), now_ms)


def deliver(ready, destination: RaftCore) -> list[m.Message]:
    """Steps ``destination`` with every message of ``ready`` addressed to it."""
    delivered = [msg for msg in ready.messages if msg.destination == destination.local_id]
    for msg in delivered:
        destination.step(msg)
    return delivered


def elect(leader: RaftCore, *voters: RaftCore, now_ms: int = 5000) -> None:
    """Runs a full pre-vote and vote round with every message delivered."""
    leader.tick(now_ms)
    for _ in range(4):
        ready = leader.ready()
        leader.advance(ready)
        for voter in voters:
            voter.tick(now_ms)
            deliver(ready, voter)
            answer = voter.ready()
            voter.advance(answer)
            deliver(answer, leader)
    assert isinstance(leader.role, Leader), leader


def fetch_round(leader: RaftCore, follower: RaftCore) -> None:
    """The follower sends a Fetch (if it wants to) and takes the answer."""
    follower.tick(follower.now_ms)
    ready = follower.ready()
    follower.advance(ready)
    deliver(ready, leader)
    answer = leader.ready()
    leader.advance(answer)
    deliver(answer, follower)  # the follower's next Fetch waits in its next Ready


def test_a_single_voter_elects_itself_and_persists_before_it_sends():
    node = core(1, voters=frozenset({1}))
    node.tick(2000)
    assert isinstance(node.role, Leader) and node.epoch == 1
    ready = node.ready()
    assert ready.election_state == ElectionState(1, leader_id=1)
    assert [e.control for e in ready.entries] == [True] and ready.must_sync
    assert node.high_watermark == 0, "nothing counts before the driver made it durable"
    node.advance(ready)
    assert node.high_watermark == 1
    assert [e.offset for e in node.ready().committed] == [0]


def test_a_vote_is_persisted_in_the_same_ready_that_answers_it():
    voter = core(2)
    request = m.VoteRequest(candidate_epoch=1, candidate_id=1, last_offset_epoch=0, last_offset=0, pre_vote=False)
    voter.step(m.Message(1, 2, 7, request))
    ready = voter.ready()
    assert ready.election_state == ElectionState(1, voted_id=1)
    assert [msg.body.vote_granted for msg in ready.messages] == [True]
    # The same voter refuses a second candidate of that epoch.
    voter.step(m.Message(3, 2, 8, m.VoteRequest(1, 3, 0, 0, False)))
    assert [msg.body.vote_granted for msg in voter.ready().messages] == [False]


def test_a_candidate_with_a_shorter_log_loses():
    voter = core(2, log=log_of(1, 1, 1))
    voter.step(m.Message(1, 2, 1, m.VoteRequest(2, 1, last_offset_epoch=1, last_offset=2, pre_vote=False)))
    ready = voter.ready()
    assert [msg.body.vote_granted for msg in ready.messages] == [False]
    assert voter.epoch == 2 and ready.election_state == ElectionState(2), "the epoch moves, no vote is given"
    # A log with a higher last epoch wins even when it is shorter.
    voter.step(m.Message(3, 2, 2, m.VoteRequest(2, 3, last_offset_epoch=2, last_offset=1, pre_vote=False)))
    assert [msg.body.vote_granted for msg in voter.ready().messages] == [True]


def test_pre_vote_does_not_disturb_a_stable_leader():
    leader, follower, returning = core(1), core(2), core(3)
    elect(leader, follower, returning)
    fetch_round(leader, follower)
    assert isinstance(follower.role, Follower) and follower.role.last_fetch_success_ms is not None
    epoch = leader.epoch
    # Node 3 comes back from a partition and asks for pre-votes for the next epoch.
    request = m.VoteRequest(epoch + 1, 3, leader.log.last_epoch, leader.log.end_offset, pre_vote=True)
    for target in (leader, follower):
        target.step(m.Message(3, target.local_id, 99, request))
        ready = target.ready()
        assert [msg.body.vote_granted for msg in ready.messages] == [False]
        assert ready.election_state is None and target.epoch == epoch, "a pre-vote changes no state"
    assert isinstance(leader.role, Leader) and isinstance(follower.role, Follower)


def test_a_follower_whose_leader_went_quiet_grants_a_pre_vote():
    leader, follower, other = core(1), core(2), core(3)
    elect(leader, follower, other)
    fetch_round(leader, follower)
    follower.tick(follower.now_ms + CONFIG.fetch_timeout_ms - 1)
    request = m.VoteRequest(follower.epoch + 1, 3, follower.log.last_epoch, follower.log.end_offset, pre_vote=True)
    follower.step(m.Message(3, 2, 5, request))
    assert [msg.body.vote_granted for msg in follower.ready().messages] == [False]
    follower.tick(follower.now_ms + 2)  # past the fetch timeout: the follower stands itself
    assert isinstance(follower.role, Prospective)
    follower.step(m.Message(3, 2, 6, request))
    answers = [msg.body for msg in follower.ready().messages if isinstance(msg.body, m.VoteResponse)]
    assert [body.vote_granted for body in answers] == [True]


def test_follower_truncates_on_divergence_then_catches_up():
    leader = core(1, ElectionState(3, leader_id=1), log_of(1, 1, 3, 3))
    leader.quorum.role = Leader(3, epoch_start_offset=2, replicas={2: _progress(), 3: _progress()})
    follower = core(2, ElectionState(3, leader_id=1), log_of(1, 1, 2, 2, 2))
    fetch_round(leader, follower)
    assert follower.log.end_offset == 2, "entries of epoch 2 the leader never had are gone"
    fetch_round(leader, follower)
    assert [e.epoch for e in follower.log.entries] == [1, 1, 3, 3]


def test_high_watermark_never_counts_entries_of_older_epochs_alone():
    # The new leader of epoch 4 holds an entry of epoch 2 that only it has, then its own
    # LeaderChange at offset 3. A follower that fetched up to offset 3 has the old entry
    # but not yet the LeaderChange: a majority has offset 2, yet nothing is committed.
    leader = core(1, ElectionState(3), log_of(1, 1, 2))
    leader.quorum.role = Candidate(4, granted={1})
    leader._become_leader()
    leader.advance(leader.ready())
    follower_offset = 3
    leader.step(m.Message(2, 1, 1, m.FetchRequest(2, 4, follower_offset, 2)))
    assert leader.high_watermark == 0, "offset 3 (epoch 2) is on a majority but not of this epoch"
    leader.step(m.Message(2, 1, 2, m.FetchRequest(2, 4, 4, 4)))
    assert leader.high_watermark == 4


def test_a_fetch_below_the_log_start_is_answered_with_the_snapshot_id():
    snapshot = Snapshot(SnapshotId(3, 1), b"state")
    leader = core(1, ElectionState(2, leader_id=1), log_of(2, 2, start=3, snapshot=snapshot))
    leader.quorum.role = Leader(2, epoch_start_offset=3, replicas={2: _progress(), 3: _progress()})
    leader.step(m.Message(2, 1, 1, m.FetchRequest(2, 2, 1, 1)))
    (answer,) = leader.ready().messages
    assert answer.body.snapshot_id == SnapshotId(3, 1) and not answer.body.entries
    leader.step(m.Message(2, 1, 2, m.FetchSnapshotRequest(2, 2, SnapshotId(3, 1), position=2)))
    (chunk,) = leader.ready().messages
    assert (chunk.body.size, chunk.body.position, chunk.body.unaligned_records) == (5, 2, b"ate")


def test_a_follower_installs_a_fetched_snapshot_and_loads_it():
    follower = core(2, ElectionState(2, leader_id=1), log_of(1))
    follower.tick(10)
    fetch = follower.ready()
    (request,) = fetch.messages
    follower.step(m.Message(1, 2, request.correlation_id,
                            m.FetchResponse(m.Error.NONE, 1, 2, 3, snapshot_id=SnapshotId(3, 1))))
    (snapshot_request,) = follower.ready().messages
    assert snapshot_request.body.position == 0
    follower.step(m.Message(1, 2, snapshot_request.correlation_id, m.FetchSnapshotResponse(
        m.Error.NONE, 1, 2, SnapshotId(3, 1), size=5, position=0, unaligned_records=b"state")))
    ready = follower.ready()
    assert ready.snapshot.snapshot_id == SnapshotId(3, 1) and ready.load_snapshot is ready.snapshot
    assert ready.log_start_offset == 3 and follower.high_watermark == 3
    assert ready.messages[0].body.fetch_offset == 3


def test_observers_never_vote_nor_stand():
    observer = core(7)
    observer.tick(100_000)
    assert isinstance(observer.role, Unattached), "an observer never becomes Prospective"
    observer.step(m.Message(1, 7, 1, m.VoteRequest(1, 1, 0, 0, False)))
    (answer,) = [msg for msg in observer.ready().messages if isinstance(msg.body, m.VoteResponse)]
    assert not answer.body.vote_granted and answer.body.error is m.Error.INCONSISTENT_VOTER_SET


def test_graceful_resignation_names_the_most_caught_up_voter_first():
    leader, two, three = core(1), core(2), core(3)
    elect(leader, two, three)
    leader.append([b"only node 3 fetches this"])
    leader.advance(leader.ready())
    leader.step(m.Message(3, 1, 50, m.FetchRequest(3, leader.epoch, leader.log.end_offset, leader.epoch)))
    leader.resign()
    assert isinstance(leader.role, Resigned)
    ready = leader.ready()
    ends = [msg.body for msg in ready.messages if isinstance(msg.body, m.EndQuorumEpochRequest)]
    assert ends and all(body.preferred_successors == (3, 2) for body in ends)
    deliver(ready, three)
    three.tick(three.now_ms)
    assert isinstance(three.role, (Prospective, Candidate)), "the first successor stands at once"


def test_a_restarted_leader_comes_back_resigned_and_a_voter_keeps_its_vote():
    assert isinstance(core(1, ElectionState(5, leader_id=1)).role, Resigned)
    restarted = core(2, ElectionState(5, voted_id=3))
    restarted.step(m.Message(1, 2, 1, m.VoteRequest(5, 1, 9, 9, False)))
    assert [msg.body.vote_granted for msg in restarted.ready().messages] == [False]


def test_the_core_modules_import_nothing_that_does_io():
    allowed = {"__future__", "random", "enum", "dataclasses", "bisect", "typing"}
    raft_dir = Path(__file__).resolve().parents[2] / "kraft" / "raft"
    for name in ["core", "election", "replication", "roles", "log", "messages", "ready"]:
        tree = ast.parse((raft_dir / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = {node.module.split(".")[0]}
            else:
                continue
            assert modules <= allowed, f"kraft/raft/{name}.py imports {modules - allowed}"


def _progress():
    from kraft.raft.roles import ReplicaProgress
    return ReplicaProgress()


def test_a_granted_pre_vote_naming_the_lost_leader_still_counts():
    """Found on real processes: both followers of a killed leader kept answering each
    other's pre-votes with 'granted, leader 1, epoch 1'; taking that as news of the leader
    dropped the grant and sent the prospective back to following a dead leader, forever."""
    leader, follower, other = core(1), core(2), core(3)
    elect(leader, follower, other)
    fetch_round(leader, follower)
    follower.tick(follower.now_ms + CONFIG.fetch_timeout_ms + 1)
    assert isinstance(follower.role, Prospective)
    requests = [msg for msg in follower.ready().messages
                if isinstance(msg.body, m.VoteRequest) and msg.destination == 3]
    assert requests and requests[0].body.pre_vote
    grant = m.VoteResponse(m.Error.NONE, leader_id=1, leader_epoch=follower.epoch, vote_granted=True, pre_vote=True)
    follower.step(m.Message(3, 2, requests[0].correlation_id, grant))
    assert isinstance(follower.role, Candidate), f"expected the pre-vote won, got {follower.role}"
