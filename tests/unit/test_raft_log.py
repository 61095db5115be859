"""The Raft core's log model: epochs, divergence answers, snapshots cutting the start."""

from __future__ import annotations

from kraft.raft.log import Entry, FetchValidity, RaftLog, Snapshot, SnapshotId


def log_of(*epochs: int) -> RaftLog:
    return RaftLog.restore(None, [Entry(i, epoch, b"") for i, epoch in enumerate(epochs)])


def test_end_offset_for_epoch_is_where_the_next_epoch_starts():
    log = log_of(1, 1, 3, 3, 5)
    assert log.end_offset_for_epoch(1) == (1, 2)
    assert log.end_offset_for_epoch(2) == (1, 2), "an epoch the log never had: the largest below"
    assert log.end_offset_for_epoch(3) == (3, 4)
    assert log.end_offset_for_epoch(9) == (5, 5)
    assert log.end_offset_for_epoch(0) == (0, 0)


def test_validate_fetch():
    log = log_of(1, 1, 3, 3)
    assert log.validate_fetch(0, 0) == (FetchValidity.VALID, None)
    assert log.validate_fetch(2, 1) == (FetchValidity.VALID, None)
    assert log.validate_fetch(3, 2) == (FetchValidity.DIVERGING, (1, 2))
    assert log.validate_fetch(5, 3) == (FetchValidity.DIVERGING, (3, 4)), "ahead of the leader in its epoch"


def test_a_follower_truncates_to_the_smaller_end_for_the_diverging_epoch():
    follower = log_of(1, 1, 1, 2, 2)
    assert follower.truncation_offset_for(1, 2) == 2
    assert follower.truncation_offset_for(2, 9) == 5


def test_a_snapshot_cuts_the_log_start_and_keeps_an_agreeing_suffix():
    log = log_of(1, 1, 2, 2)
    log.install_snapshot(Snapshot(SnapshotId(3, 2), b"s"))
    assert (log.start_offset, log.end_offset, log.last_epoch) == (3, 4, 2)
    assert log.epoch_at(2) == 2, "the snapshot stands in for the entry before the log start"
    assert log.validate_fetch(1, 1) == (FetchValidity.SNAPSHOT, None)
    assert log.validate_fetch(3, 2) == (FetchValidity.VALID, None)


def test_a_snapshot_the_log_disagrees_with_replaces_the_whole_log():
    log = log_of(1, 1, 1, 1)
    log.install_snapshot(Snapshot(SnapshotId(3, 2), b"s"))
    assert (log.start_offset, log.end_offset, log.entries) == (3, 3, [])


def test_restore_from_a_disk_whose_log_start_was_cut():
    snapshot = Snapshot(SnapshotId(2, 1), b"s")
    log = RaftLog.restore(snapshot, [Entry(2, 1, b""), Entry(3, 4, b"")])
    assert (log.start_offset, log.end_offset, log.last_epoch) == (2, 4, 4)
    assert SnapshotId(2, 1).file_name == "00000000000000000002-0000000001.checkpoint"
