"""Recovery on open: torn tails, corrupt batches, bad indexes, leftovers."""

from __future__ import annotations

import os

import pytest

from protocol.records import BATCH_HEADER_SIZE, RecordInput, build_batch, iter_batches
from storage import LogConfig, PartitionLog, StorageError
from storage.index import OFFSET_ENTRY_BYTES
from storage.sim_fs import SimFile, SimFileSystem

CONFIG = LogConfig(segment_bytes=2048, index_interval_bytes=100)


def batch(count: int, timestamp_ms: int) -> bytes:
    return build_batch([RecordInput(key=b"key", value=b"value-%d" % index) for index in range(count)],
                       timestamp_ms=timestamp_ms)


def build_log(directory: str, batches: int = 60) -> list[tuple[int, int]]:
    log = PartitionLog.open(directory, CONFIG)
    for index in range(batches):
        log.append(batch(1 + index % 3, 1_000 + index), leader_epoch=1 + index // 20)
    spans = all_spans(log)
    log.flush()
    log.close()
    return spans


def all_spans(log: PartitionLog) -> list[tuple[int, int]]:
    spans = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        data = log.read(offset, 1_000_000).records
        spans.extend((header.base_offset, header.last_offset) for _, header in iter_batches(data))
        offset = spans[-1][1] + 1
    return spans


def segment_files(directory: str, suffix: str) -> list[str]:
    return sorted(os.path.join(directory, name) for name in os.listdir(directory) if name.endswith(suffix))


def linear_positions(log_path: str) -> dict[int, int]:
    """Every batch's last offset -> position, by reading the whole file."""
    with open(log_path, "rb") as file:
        data = file.read()
    return {header.last_offset: position for position, header in iter_batches(data)}


def reopen(directory: str, **kwargs) -> PartitionLog:
    return PartitionLog.open(directory, CONFIG, **kwargs)


@pytest.mark.parametrize("damage", ["cut_mid_batch", "append_garbage", "flip_byte_in_last_batch"])
def test_torn_tail_recovers_to_the_longest_valid_prefix(tmp_path, damage):
    directory = str(tmp_path)
    spans = build_log(directory)
    last_log = segment_files(directory, ".log")[-1]
    with open(last_log, "rb") as file:
        data = file.read()
    positions = [position for position, _ in iter_batches(data)]
    if damage == "cut_mid_batch":
        damaged, expected = data[: positions[-1] + 30], spans[:-1]
    elif damage == "append_garbage":
        damaged, expected = data + b"\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x01\x00garbage", spans
    else:
        damaged = bytearray(data)
        damaged[positions[-1] + 70] ^= 0x01
        damaged, expected = bytes(damaged), spans[:-1]
    with open(last_log, "wb") as file:
        file.write(damaged)
    log = reopen(directory)
    assert all_spans(log) == expected
    assert log.log_end_offset == expected[-1][1] + 1
    assert os.path.getsize(last_log) == log.active_segment.size_bytes
    appended = log.append(batch(1, 5_000), leader_epoch=9)
    assert appended.first_offset == expected[-1][1] + 1
    log.close()


def test_corruption_in_an_early_segment_drops_everything_after_it(tmp_path):
    directory = str(tmp_path)
    spans = build_log(directory)
    logs = segment_files(directory, ".log")
    assert len(logs) >= 3
    with open(logs[1], "r+b") as file:
        file.seek(200)
        file.write(b"\xff" * 4)
    log = reopen(directory, recovery_point=0)
    end = log.log_end_offset
    assert all_spans(log) == [span for span in spans if span[1] < end]
    assert len(log.segments) == 2
    assert log.end_offset_for_epoch(log.leader_epoch_cache.latest_epoch)[1] == end
    log.close()


def test_segments_below_the_recovery_point_are_trusted(tmp_path):
    directory = str(tmp_path)
    build_log(directory)
    first_log = segment_files(directory, ".log")[0]
    with open(first_log, "r+b") as file:
        file.seek(100)
        file.write(b"\xff")  # inside a batch's records: only a CRC check would notice
    log = reopen(directory, recovery_point=10_000)
    assert log.segments[0].size_bytes == os.path.getsize(first_log)
    log.close()


@pytest.mark.parametrize("damage", ["delete", "odd_length", "not_monotonic", "points_past_end"])
def test_bad_indexes_are_rebuilt_and_agree_with_a_linear_scan(tmp_path, damage):
    directory = str(tmp_path)
    build_log(directory)
    index_path = segment_files(directory, ".index")[0]
    with open(index_path, "rb") as file:
        original = file.read()
    assert len(original) >= 2 * OFFSET_ENTRY_BYTES, "the test needs an index with entries"
    if damage == "delete":
        os.remove(index_path)
    else:
        damaged = {"odd_length": original + b"\x01",
                   "not_monotonic": original[OFFSET_ENTRY_BYTES:] + original[:OFFSET_ENTRY_BYTES],
                   "points_past_end": original[:-4] + b"\x00\x10\x00\x00"}[damage]
        with open(index_path, "wb") as file:
            file.write(damaged)
    log = reopen(directory, recovery_point=10_000, clean_shutdown=True)
    segment = log.segments[0]
    positions = linear_positions(segment.path)
    for offset, position in segment.offset_index.entries():  # an inactive segment's index loads now
        assert positions[offset] == position
    with open(index_path, "rb") as file:
        assert file.read() == original, "the rebuilt index should equal the one written on append"
    for offset in range(segment.base_offset, segment.next_offset):
        location = segment.find_batch(offset)
        assert location.header.base_offset <= offset <= location.header.last_offset
    log.close()


def test_a_corrupt_time_index_is_rebuilt(tmp_path):
    directory = str(tmp_path)
    build_log(directory)
    expected = reopen(directory, clean_shutdown=True)
    answers = [expected.offset_for_timestamp(ts) for ts in range(990, 1_070)]
    expected.close()
    with open(segment_files(directory, ".timeindex")[0], "ab") as file:
        file.write(b"\x00" * 5)
    log = reopen(directory, clean_shutdown=True)
    assert [log.offset_for_timestamp(ts) for ts in range(990, 1_070)] == answers
    log.close()


def test_leftover_temp_files_and_orphan_indexes_are_removed(tmp_path):
    directory = str(tmp_path)
    build_log(directory, batches=5)
    leftovers = ["00000000000000000000.log.deleted", "00000000000000000000.log.cleaned",
                 "00000000000000000000.log.swap", "00000000000000000099.index",
                 "00000000000000000099.timeindex", "leader-epoch-checkpoint.tmp"]
    for name in leftovers:
        with open(os.path.join(directory, name), "wb") as file:
            file.write(b"x")
    reopen(directory).close()
    remaining = set(os.listdir(directory))
    assert not remaining & set(leftovers), f"left behind: {remaining & set(leftovers)}"


def test_a_corrupt_leader_epoch_checkpoint_is_rebuilt_from_batches(tmp_path):
    directory = str(tmp_path)
    build_log(directory)
    with open(os.path.join(directory, "leader-epoch-checkpoint"), "w") as file:
        file.write("0\n9\nnonsense")
    log = reopen(directory, clean_shutdown=True)
    assert [epoch for epoch, _ in log.leader_epoch_cache.entries()] == [1, 2, 3]
    log.close()


def test_an_unusable_directory_raises_storage_error(tmp_path):
    with pytest.raises(StorageError):
        PartitionLog.open(str(tmp_path / "missing"), CONFIG)
    not_a_directory = tmp_path / "file"
    not_a_directory.write_bytes(b"")
    with pytest.raises(StorageError):
        PartitionLog.open(str(not_a_directory), CONFIG)


def test_a_log_file_of_pure_garbage_opens_empty(tmp_path):
    (tmp_path / "00000000000000000000.log").write_bytes(os.urandom(5_000))
    log = reopen(str(tmp_path))
    assert (log.log_start_offset, log.log_end_offset) == (0, 0)
    log.close()


def segment_state(segment) -> dict:
    return {"size_bytes": segment.size_bytes, "next_offset": segment.next_offset,
            "max_timestamp_ms": segment.max_timestamp_ms, "offset_of_max_timestamp": segment.offset_of_max_timestamp,
            "first_batch_timestamp_ms": segment.first_batch_timestamp_ms,
            "offset_index": segment.offset_index.entries(), "time_index": segment.time_index.entries()}


@pytest.mark.parametrize("profile", ["lose", "torn"])
@pytest.mark.parametrize("flushed_batches", [1, 7, 25, 39])
def test_recovery_scans_from_the_recovery_point_and_agrees_with_a_full_scan(monkeypatch, profile, flushed_batches):
    """An unclean start reads the unflushed tail of the segment holding the recovery point, not
    the whole segment, and ends in the state a scan from the start of the file would give."""
    config = LogConfig(segment_bytes=1 << 20, index_interval_bytes=150)
    fs = SimFileSystem(seed=flushed_batches)
    fs.make_directory("/data/t-0")
    log = PartitionLog.open("/data/t-0", config, fs)
    timestamps = [1_000 + (index * 7919) % 500 for index in range(40)]  # rising and falling
    for index, timestamp_ms in enumerate(timestamps):
        log.append(batch(1 + index % 3, timestamp_ms), leader_epoch=1 + index // 10)
        if index + 1 == flushed_batches:
            log.flush()
    recovery_point = log.recovery_point
    fs.crash(profile)
    log_reads: list[tuple[int, int]] = []  # (position, length) of every read of the .log file
    original_pread = SimFile.pread

    def recording_pread(file, length, position):
        if file.path.endswith(".log"):
            log_reads.append((position, length))
        return original_pread(file, length, position)

    monkeypatch.setattr(SimFile, "pread", recording_pread)
    reopened = PartitionLog.open("/data/t-0", config, fs, recovery_point=recovery_point)
    monkeypatch.undo()
    segment = reopened.active_segment
    assert reopened.log_end_offset >= recovery_point
    partial = segment_state(segment)
    segment.recover()
    assert partial == segment_state(segment), "resuming at the recovery point must equal a full scan"
    if flushed_batches > 7:
        assert all(position > 0 or length <= BATCH_HEADER_SIZE for position, length in log_reads), (
            f"recovery from offset {recovery_point} read the segment from its start: {log_reads}")


def test_a_clean_start_reads_one_entry_of_each_inactive_index_and_the_rest_on_first_use(tmp_path, monkeypatch):
    """Start-up must not grow with the number of index entries the log holds (Kafka's LazyIndex)."""
    from storage.fs import RealFile

    directory = str(tmp_path)
    spans = build_log(directory)
    index_reads: list[tuple[str, int]] = []
    original_pread = RealFile.pread

    def recording_pread(file, length, position):
        if file.path.endswith((".index", ".timeindex")):
            index_reads.append((os.path.basename(file.path), length))
        return original_pread(file, length, position)

    monkeypatch.setattr(RealFile, "pread", recording_pread)
    log = reopen(directory, recovery_point=10_000, clean_shutdown=True)
    inactive = {os.path.basename(path) for segment in log.segments[:-1]
                for path in (segment.offset_index.path, segment.time_index.path)}
    assert len(log.segments) > 2 and inactive
    assert all(length <= 12 for name, length in index_reads if name in inactive), index_reads
    assert all_spans(log) == spans, "lookups load the entries they need"
    assert any(length > 12 for name, length in index_reads if name in inactive)
    log.close()
