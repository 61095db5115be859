"""Idempotent producer checks on append, and their survival across reopen."""

from __future__ import annotations

import os

import pytest

from protocol.records import RecordInput, build_batch
from storage import InvalidProducerEpochError, LogConfig, OutOfOrderSequenceError, PartitionLog
from storage.producer_state import BatchMetadata, ProducerEntry, decode_snapshot, encode_snapshot

CONFIG = LogConfig(segment_bytes=4096, index_interval_bytes=256)
PRODUCER = 4242


def produce(count: int = 2, *, sequence: int, epoch: int = 0, producer_id: int = PRODUCER) -> bytes:
    return build_batch([RecordInput(value=b"v%d" % index) for index in range(count)], timestamp_ms=1_000,
                       producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence)


@pytest.fixture
def log(tmp_path):
    opened = PartitionLog.open(str(tmp_path), CONFIG)
    yield opened
    opened.close()


def test_a_retried_batch_answers_with_its_original_offsets(log):
    first = log.append(produce(sequence=0), leader_epoch=0)
    log.append(produce(sequence=2), leader_epoch=0)
    retry = log.append(produce(sequence=0), leader_epoch=0)
    assert retry.duplicate and (retry.first_offset, retry.last_offset) == (first.first_offset, first.last_offset)
    assert log.log_end_offset == 4, "a duplicate must not be written"


def test_only_the_last_five_batches_are_remembered(log):
    for index in range(7):
        log.append(produce(1, sequence=index), leader_epoch=0)
    assert log.append(produce(1, sequence=2), leader_epoch=0).duplicate
    with pytest.raises(OutOfOrderSequenceError):
        log.append(produce(1, sequence=1), leader_epoch=0)


def test_a_sequence_gap_is_out_of_order(log):
    log.append(produce(sequence=0), leader_epoch=0)
    with pytest.raises(OutOfOrderSequenceError):
        log.append(produce(sequence=3), leader_epoch=0)
    assert log.log_end_offset == 2


def test_an_older_epoch_is_fenced_and_a_new_epoch_starts_at_zero(log):
    log.append(produce(sequence=0, epoch=3), leader_epoch=0)
    with pytest.raises(InvalidProducerEpochError):
        log.append(produce(sequence=2, epoch=2), leader_epoch=0)
    with pytest.raises(OutOfOrderSequenceError):
        log.append(produce(sequence=5, epoch=4), leader_epoch=0)
    assert log.append(produce(sequence=0, epoch=4), leader_epoch=0).first_offset == 2


def test_an_unknown_producer_is_accepted_at_any_sequence_as_in_kafka(log):
    """Kafka >= 2.5 (KIP-360): the producer's state may have been removed by retention."""
    assert log.append(produce(sequence=17), leader_epoch=0).first_offset == 0
    with pytest.raises(OutOfOrderSequenceError):
        log.append(produce(sequence=20), leader_epoch=0)


def test_sequences_wrap_after_int32_max(log):
    log.append(produce(1, sequence=2**31 - 1), leader_epoch=0)
    assert not log.append(produce(1, sequence=0), leader_epoch=0).duplicate


def test_a_failed_append_records_nothing(log):
    log.append(produce(sequence=0), leader_epoch=0)
    valid_then_corrupt = bytearray(produce(sequence=2) + produce(sequence=4))
    valid_then_corrupt[-1] ^= 0x55
    with pytest.raises(ValueError):
        log.append(bytes(valid_then_corrupt), leader_epoch=0)
    assert log.producer_state.entry(PRODUCER).last_sequence == 1
    assert log.append(produce(sequence=2), leader_epoch=0).first_offset == 2


def test_non_idempotent_batches_are_not_tracked(log):
    log.append(build_batch([RecordInput(value=b"x")]), leader_epoch=0)
    assert len(log.producer_state) == 0


@pytest.mark.parametrize("clean", [True, False])
def test_state_survives_reopen_from_snapshot_and_replay(tmp_path, clean):
    directory = str(tmp_path)
    log = PartitionLog.open(directory, CONFIG)
    for index in range(40):
        log.append(produce(2, sequence=2 * index), leader_epoch=0)
    if clean:
        log.close()
    else:
        log.flush()  # a crash after flush: the snapshot is at the flush point
        log.append(produce(2, sequence=80), leader_epoch=0)  # then the process dies, unflushed
    assert any(name.endswith(".snapshot") for name in os.listdir(directory))
    reopened = PartitionLog.open(directory, CONFIG, clean_shutdown=clean)
    last = 78 if clean else 80
    retry = reopened.append(produce(2, sequence=last), leader_epoch=0)
    assert retry.duplicate and retry.first_offset == last
    with pytest.raises(OutOfOrderSequenceError):
        reopened.append(produce(2, sequence=last + 5), leader_epoch=0)
    reopened.close()


def test_truncation_rewinds_producer_state(log):
    for index in range(5):
        log.append(produce(2, sequence=2 * index), leader_epoch=0)
    log.truncate_to(6)
    assert log.producer_state.entry(PRODUCER).last_sequence == 5
    assert log.append(produce(2, sequence=6), leader_epoch=0).first_offset == 6


def test_a_corrupt_snapshot_is_ignored_and_the_log_replayed(tmp_path):
    directory = str(tmp_path)
    log = PartitionLog.open(directory, CONFIG)
    log.append(produce(sequence=0), leader_epoch=0)
    log.close()
    for name in os.listdir(directory):
        if name.endswith(".snapshot"):
            with open(os.path.join(directory, name), "r+b") as file:
                file.seek(8)
                file.write(b"\xff\xff")
    reopened = PartitionLog.open(directory, CONFIG)
    assert reopened.append(produce(sequence=0), leader_epoch=0).duplicate
    reopened.close()


def test_snapshot_round_trip():
    entries = {7: ProducerEntry(7, 3, (BatchMetadata(10, 14, 100, 104, 55),))}
    assert decode_snapshot(encode_snapshot(entries.values())) == entries
