"""kraft.raft.disk_log: the disk says what the core's RaftLog says, after every Ready and
after a reopen, including truncations inside a batch and snapshots beyond the log end."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings, strategies as st

from kraft.raft.disk_log import DiskLogError, DiskRaftLog, decode_quorum_state, encode_quorum_state
from kraft.raft.log import Entry, RaftLog, Snapshot, SnapshotId
from kraft.raft.ready import Ready
from kraft.raft.roles import ElectionState
from storage.fs import REAL_FILE_SYSTEM
from storage.sim_fs import SimFileSystem


def reopen(disk: DiskRaftLog, fs=REAL_FILE_SYSTEM, crash: str | None = None
           ) -> tuple[DiskRaftLog, ElectionState | None, RaftLog]:
    if crash is None:
        disk.close()
    else:
        fs.crash(crash)  # the old handles are gone; nothing un-fsynced survives
    disk = DiskRaftLog.open(disk.directory, fs=fs)
    state, log = disk.load()
    return disk, state, log


def same(a: RaftLog, b: RaftLog) -> bool:
    return (a.start_offset, a.entries, a.snapshot) == (b.start_offset, b.entries, b.snapshot)


def append(disk: DiskRaftLog, log: RaftLog, epoch: int, payloads: list[bytes]) -> None:
    new = [Entry(log.end_offset + i, epoch, p) for i, p in enumerate(payloads)]
    for entry in new:
        log.append(entry)
    disk.write(Ready(entries=tuple(new), must_sync=True), log)


@pytest.fixture
def disk(tmp_path):
    disk = DiskRaftLog.open(str(tmp_path / "__cluster_metadata-0"))
    yield disk
    disk.close()


def test_quorum_state_is_kafkas_v1_json(disk):
    disk.write_election_state(ElectionState(7, leader_id=None, voted_id=2))
    with open(os.path.join(disk.directory, "quorum-state")) as handle:
        document = json.load(handle)
    assert document == {"leaderId": -1, "leaderEpoch": 7, "votedId": 2,
                        "votedDirectoryId": "AAAAAAAAAAAAAAAAAAAAAA", "data_version": 1}
    disk, state, log = reopen(disk)
    assert state == ElectionState(7, None, 2) and log.end_offset == 0
    disk.close()


def test_the_single_voter_files_and_v0_are_read():
    assert decode_quorum_state(b'{"leaderId": 1, "leaderEpoch": 3, "votedId": 1, '
                               b'"votedDirectoryId": null, "data_version": 1}') == ElectionState(3, 1, 1)
    assert decode_quorum_state(b'{"clusterId": "x", "leaderId": -1, "leaderEpoch": 0, "votedId": -1, '
                               b'"appliedOffset": 0, "currentVoters": [], "data_version": 0}') == ElectionState(0)
    state = ElectionState(5, 4, None)
    assert decode_quorum_state(encode_quorum_state(state)) == state


def test_an_unreadable_quorum_state_stops_start_up(disk):
    with open(os.path.join(disk.directory, "quorum-state"), "w") as handle:
        handle.write('{"leaderEpoch": ')
    with pytest.raises(DiskLogError, match="quorum-state"):
        disk.load()


def test_truncating_inside_a_batch_keeps_the_entries_below(disk):
    log = RaftLog()
    append(disk, log, 1, [b"a", b"b", b"c", b"d", b"e"])  # one batch, offsets 0-4
    log.truncate_to(2)
    log.append(Entry(2, 2, b"C"))
    disk.write(Ready(truncate_to=2, entries=(log.entries[-1],), must_sync=True), log)
    assert disk.log_end_offset == 3
    disk, _, recovered = reopen(disk)
    assert [e.payload for e in recovered.entries] == [b"a", b"b", b"C"]
    assert same(recovered, log)
    disk.close()


def test_a_snapshot_cuts_the_log_and_replaces_older_ones(disk):
    log = RaftLog()
    append(disk, log, 1, [b"%d" % i for i in range(6)])
    append(disk, log, 2, [b"%d" % i for i in range(6, 10)])
    for end, data in ((4, b"state-4"), (7, b"state-7")):
        snapshot = Snapshot(SnapshotId(end, log.epoch_at(end - 1)), data)
        log.install_snapshot(snapshot)
        disk.write(Ready(snapshot=snapshot, log_start_offset=end), log)
    assert sorted(os.listdir(disk.directory)).count("00000000000000000007-0000000002.checkpoint") == 1
    assert disk.snapshot_ids() == [SnapshotId(7, 2)], "the older checkpoint stays behind"
    with open(os.path.join(disk.directory, SnapshotId(7, 2).file_name), "rb") as handle:
        assert handle.read() == b"state-7"
    disk, _, recovered = reopen(disk)
    assert same(recovered, log) and recovered.start_offset == 7
    disk.close()


def test_a_fetched_snapshot_beyond_the_log_end_restarts_the_log_there(disk):
    log = RaftLog()
    append(disk, log, 1, [b"a", b"b", b"c"])
    snapshot = Snapshot(SnapshotId(10, 3), b"leader state")
    log.install_snapshot(snapshot)  # what the core does on FetchSnapshot: nothing agrees, all goes
    disk.write(Ready(snapshot=snapshot, log_start_offset=10, truncate_to=10, load_snapshot=snapshot,
                     must_sync=True), log)
    assert (disk.log_start_offset, disk.log_end_offset) == (10, 10)
    append(disk, log, 3, [b"k"])
    disk, _, recovered = reopen(disk)
    assert same(recovered, log) and recovered.entries == [Entry(10, 3, b"k")]
    disk.close()


def test_a_crash_after_the_snapshot_but_before_the_log_cut_recovers(disk):
    log = RaftLog()
    append(disk, log, 1, [b"a", b"b", b"c", b"d"])
    disk.write_snapshot(Snapshot(SnapshotId(3, 4), b"other history"))  # then the power went
    disk, _, recovered = reopen(disk)
    assert recovered.start_offset == 3 and recovered.entries == [], "entries disagreeing with the snapshot"
    assert (disk.log_start_offset, disk.log_end_offset) == (3, 3)
    disk.close()


# ----- the disk against the model, under any sequence the core can produce ---------------
# Every Ready here is written as the driver writes it (must_sync whenever entries or a
# truncation change the log), so a crash right after it must lose nothing of it.

operations = st.lists(st.one_of(
    st.tuples(st.just("append"), st.integers(0, 1), st.integers(1, 5)),   # epoch bump, count
    st.tuples(st.just("truncate"), st.integers(0, 100)),                  # how far back
    st.tuples(st.just("snapshot"), st.integers(0, 100)),                  # where, of the log
    st.tuples(st.just("fetched_snapshot"), st.integers(0, 4), st.integers(0, 2)),  # ahead, epoch bump
    st.tuples(st.just("reopen"), st.sampled_from([None, "lose", "torn"])),
), max_size=25)


@settings(max_examples=150, deadline=None)
@given(operations, st.integers(0, 2**32))
def test_the_disk_matches_the_model_after_every_ready_reopen_and_crash(ops, seed):
    fs = SimFileSystem(seed)
    disk = DiskRaftLog.open("/data/__cluster_metadata-0", fs=fs)
    log = RaftLog()
    try:
        for op in ops:
            if op[0] == "append":
                append(disk, log, log.last_epoch + op[1], [b"x"] * op[2])
            elif op[0] == "truncate" and log.entries:
                offset = log.end_offset - op[1] % (len(log.entries) + 1)
                log.truncate_to(offset)
                disk.write(Ready(truncate_to=offset, must_sync=True), log)
            elif op[0] == "snapshot" and log.entries:
                end = log.start_offset + 1 + op[1] % len(log.entries)
                snapshot = Snapshot(SnapshotId(end, log.epoch_at(end - 1)), b"s%d" % end)
                log.install_snapshot(snapshot)
                disk.write(Ready(snapshot=snapshot, log_start_offset=end), log)
            elif op[0] == "fetched_snapshot":
                end = log.end_offset + op[1]
                snapshot_id = SnapshotId(end, log.last_epoch + op[2])
                if log.snapshot is not None and snapshot_id <= log.snapshot.snapshot_id:
                    continue
                if snapshot_id == SnapshotId(0, 0):
                    continue  # that name is format's bootstrap checkpoint; no leader sends it

                snapshot = Snapshot(snapshot_id, b"f%d" % end)
                log.install_snapshot(snapshot)
                disk.write(Ready(snapshot=snapshot, log_start_offset=log.start_offset,
                                 truncate_to=log.end_offset, must_sync=True), log)
            elif op[0] == "reopen":
                disk, _, recovered = reopen(disk, fs, crash=op[1])
                assert same(recovered, log), (recovered.entries, log.entries)
            assert disk.log_end_offset == log.end_offset
        disk, _, recovered = reopen(disk, fs, crash="lose")
        assert same(recovered, log), (recovered.start_offset, recovered.entries, log.start_offset, log.entries)
    finally:
        disk.close()


def test_the_bootstrap_checkpoint_of_format_is_neither_loaded_nor_removed(tmp_path):
    from kraft.raft.disk_log import BOOTSTRAP_CHECKPOINT_NAME

    directory = tmp_path / "__cluster_metadata-0"
    directory.mkdir()
    (directory / BOOTSTRAP_CHECKPOINT_NAME).write_bytes(b"the voters, in format's own encoding")
    disk = DiskRaftLog.open(str(directory))
    _, log = disk.load()
    assert log.snapshot is None and log.start_offset == 0
    append(disk, log, 1, [b"a", b"b", b"c"])
    snapshot = Snapshot(SnapshotId(2, 1), b"image")
    log.install_snapshot(snapshot)
    disk.write(Ready(snapshot=snapshot, log_start_offset=2), log)
    disk, _, recovered = reopen(disk)
    disk.close()
    assert recovered.snapshot == snapshot and same(recovered, log)
    assert (directory / BOOTSTRAP_CHECKPOINT_NAME).exists(), "a newer snapshot must not remove format's checkpoint"
