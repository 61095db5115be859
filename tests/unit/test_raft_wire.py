"""kraft.raft.wire and kraft.raft.batches: every core message survives the trip through
Kafka's KRaft RPC bytes (request and response headers included), and entries survive the
trip through record batches."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings, strategies as st
from kio.schema.errors import ErrorCode

from kraft.raft import messages as m
from kraft.raft.batches import BATCH_ENTRIES_MAX, decode_entries, encode_entries, group_entries
from kraft.raft.log import Entry, SnapshotId
from kraft.raft.wire import METADATA_TOPIC_ID, RAFT_APIS, RaftWire, WireError
from protocol import apis
from protocol.records import iter_batches

CLUSTER_ID = "MkU3OEVBNTcwNTJENDM2Qk"
DIRECTORY_1 = uuid.UUID("7c6a3f36-9f63-4b0e-8f51-2d3b3c4d5e6f")
SENDER = RaftWire(1, CLUSTER_ID, DIRECTORY_1, {2: uuid.UUID(int=22)})
RECEIVER = RaftWire(2, CLUSTER_ID, uuid.UUID(int=22), {1: DIRECTORY_1})

node_ids = st.integers(0, 2**31 - 1)
epochs = st.integers(0, 2**31 - 1)
offsets = st.integers(0, 2**62)
errors = st.sampled_from(list(m.Error))
leaders = st.none() | node_ids
snapshot_ids = st.builds(SnapshotId, offsets, epochs)


@st.composite
def entry_runs(draw, max_size=12):
    """Dense entries from some offset, epochs never decreasing, control entries among them."""
    start = draw(st.integers(0, 2**40))
    epoch = draw(st.integers(0, 1000))
    entries = []
    for offset in range(start, start + draw(st.integers(0, max_size))):
        epoch += draw(st.sampled_from([0, 0, 0, 1]))
        entries.append(Entry(offset, epoch, draw(st.binary(max_size=20)), control=draw(st.booleans())))
    return tuple(entries)


requests = st.one_of(
    st.builds(m.VoteRequest, epochs, st.just(1), epochs, offsets, st.booleans()),
    st.builds(m.BeginQuorumEpochRequest, st.just(1), epochs),
    st.builds(m.EndQuorumEpochRequest, st.just(1), epochs, st.lists(node_ids, max_size=4).map(tuple)),
    st.builds(m.FetchRequest, st.just(1), epochs, offsets, epochs),
    st.builds(m.FetchSnapshotRequest, st.just(1), epochs, snapshot_ids, offsets),
)


@settings(max_examples=200)
@given(requests, st.integers(0, 2**31 - 1))
def test_every_request_round_trips_through_its_frame(body, correlation_id):
    message = m.Message(1, 2, correlation_id, body)
    frame = SENDER.encode_request(message)
    api_key, version = RAFT_APIS[type(body)]
    assert apis.peek_header(frame[4:]) == (api_key, version, correlation_id)
    assert RECEIVER.decode_request(frame[4:]) == message


def _response_cases():
    vote = st.builds(m.VoteResponse, errors, leaders, epochs, st.booleans(), st.booleans()).map(
        lambda r: (m.VoteRequest(r.leader_epoch, 1, 0, 0, r.pre_vote), r))
    begin = st.builds(m.BeginQuorumEpochResponse, errors, leaders, epochs).map(
        lambda r: (m.BeginQuorumEpochRequest(1, 3), r))
    end = st.builds(m.EndQuorumEpochResponse, errors, leaders, epochs).map(
        lambda r: (m.EndQuorumEpochRequest(1, 3, (2,)), r))
    fetch = st.builds(m.FetchResponse, errors, leaders, epochs, offsets, entry_runs(),
                      st.none() | st.builds(m.DivergingEpoch, epochs, offsets),
                      st.none() | snapshot_ids).map(lambda r: (m.FetchRequest(1, 3, 0, 0), r))
    snapshot = st.builds(m.FetchSnapshotResponse, errors, leaders, epochs, snapshot_ids, offsets, offsets,
                         st.binary(max_size=64)).map(
        lambda r: (m.FetchSnapshotRequest(1, 3, r.snapshot_id, 0), r))
    return st.one_of(vote, begin, end, fetch, snapshot)


@settings(max_examples=200)
@given(_response_cases(), st.integers(0, 2**31 - 1))
def test_every_response_round_trips_through_its_frame(case, correlation_id):
    request_body, response_body = case
    request = m.Message(1, 2, correlation_id, request_body)
    response = m.Message(2, 1, correlation_id, response_body)
    frame = RECEIVER.encode_response(response)
    assert SENDER.decode_response(frame[4:], request) == response


@given(entry_runs(max_size=40))
def test_entries_round_trip_through_record_batches(entries):
    data = encode_entries(entries)
    assert tuple(decode_entries(data)) == entries
    for position, header in iter_batches(data):
        decoded = decode_entries(data[position:position + header.size_bytes])
        assert {e.epoch for e in decoded} == {header.partition_leader_epoch}, "one epoch per batch"
        assert header.is_control == decoded[0].control
        assert not header.is_control or len(decoded) == 1, "a control entry is alone in its batch"


def test_entries_of_one_epoch_share_a_batch_up_to_the_limit():
    entries = [Entry(offset, 5, b"x") for offset in range(BATCH_ENTRIES_MAX + 3)]
    entries.append(Entry(len(entries), 6, b"leader change", control=True))
    entries.append(Entry(len(entries), 6, b"y"))
    sizes = [len(group) for group in group_entries(entries)]
    assert sizes == [BATCH_ENTRIES_MAX, 3, 1, 1], sizes


def test_decoding_rejects_a_gap_and_a_corrupt_batch():
    data = encode_entries([Entry(0, 1, b"a"), Entry(1, 1, b"b")]) + encode_entries([Entry(3, 1, b"c")])
    with pytest.raises(ValueError, match="expected 2"):
        decode_entries(data)
    corrupt = bytearray(encode_entries([Entry(0, 1, b"abc")]))
    corrupt[-1] ^= 0xFF
    with pytest.raises(ValueError):
        decode_entries(bytes(corrupt))
    assert decode_entries(data[:-5]) == [Entry(0, 1, b"a"), Entry(1, 1, b"b")], "a cut tail is left out"


def test_fetch_uses_kafkas_metadata_topic_id_and_replica_state():
    body = SENDER.request_to_kio(m.Message(1, 2, 5, m.FetchRequest(1, 7, 42, 6)))
    assert body.cluster_id == CLUSTER_ID
    assert body.replica_state.replica_id == 1 and body.replica_state.replica_epoch == -1
    partition = body.topics[0].partitions[0]
    assert body.topics[0].topic_id == METADATA_TOPIC_ID == uuid.UUID(int=1)
    assert (partition.partition, partition.current_leader_epoch, partition.fetch_offset,
            partition.last_fetched_epoch, partition.replica_directory_id) == (0, 7, 42, 6, DIRECTORY_1)


def test_vote_carries_both_directory_ids_and_the_voter_id():
    body = SENDER.request_to_kio(m.Message(1, 2, 5, m.VoteRequest(4, 1, 3, 10, True)))
    partition = body.topics[0].partitions[0]
    assert body.voter_id == 2 and body.topics[0].topic_name == "__cluster_metadata"
    assert partition.replica_directory_id == DIRECTORY_1
    assert partition.voter_directory_id == uuid.UUID(int=22)
    assert partition.pre_vote is True


def test_unknown_directory_ids_travel_as_none():
    anonymous = RaftWire(1, None)
    message = m.Message(1, 2, 9, m.VoteRequest(4, 1, 3, 10, False))
    assert RaftWire(2, CLUSTER_ID).decode_request(anonymous.encode_request(message)[4:]) == message


@pytest.mark.parametrize("wire, expected", [
    (RaftWire(1, "another-cluster"), ErrorCode.inconsistent_cluster_id),
    (RaftWire(1, CLUSTER_ID, voter_directory_ids={2: uuid.UUID(int=99)}), ErrorCode.invalid_voter_key),
])
def test_a_misdirected_request_is_refused_before_the_core(wire, expected):
    frame = wire.encode_request(m.Message(1, 2, 3, m.VoteRequest(4, 1, 3, 10, False)))
    with pytest.raises(WireError) as caught:
        RECEIVER.decode_request(frame[4:])
    assert caught.value.error_code == expected
    answer = RECEIVER.error_response(52, 3, caught.value.error_code)
    correlation_id, body = apis.decode_response(52, 2, answer[4:])
    assert (correlation_id, body.error_code, body.topics) == (3, expected, ())


def test_a_request_for_another_voter_is_refused():
    frame = SENDER.encode_request(m.Message(1, 3, 3, m.BeginQuorumEpochRequest(1, 4)))
    with pytest.raises(WireError) as caught:
        RECEIVER.decode_request(frame[4:])
    assert caught.value.error_code == ErrorCode.invalid_voter_key


@pytest.mark.parametrize("request_body", [
    m.VoteRequest(4, 1, 3, 10, True), m.BeginQuorumEpochRequest(1, 4), m.EndQuorumEpochRequest(1, 4, ()),
    m.FetchRequest(1, 4, 0, 0), m.FetchSnapshotRequest(1, 4, SnapshotId(10, 2), 0),
])
def test_a_top_level_error_reaches_the_core_as_the_partition_error(request_body):
    api_key, _ = RAFT_APIS[type(request_body)]
    frame = RECEIVER.error_response(api_key, 11, ErrorCode.invalid_request)
    response = SENDER.decode_response(frame[4:], m.Message(1, 2, 11, request_body))
    assert (response.source, response.destination, response.body.error) == (2, 1, m.Error.INVALID_REQUEST)
    assert response.body.leader_id is None


def test_an_error_the_core_does_not_know_and_a_stale_correlation_id_are_refused():
    request = m.Message(1, 2, 11, m.FetchRequest(1, 4, 0, 0))
    with pytest.raises(WireError, match="error code 104"):
        SENDER.decode_response(RECEIVER.error_response(1, 11, ErrorCode.inconsistent_cluster_id)[4:], request)
    frame = RECEIVER.encode_response(m.Message(2, 1, 12, m.FetchResponse(m.Error.NONE, 2, 4, 0)))
    with pytest.raises(WireError, match="correlation id 12"):
        SENDER.decode_response(frame[4:], request)
