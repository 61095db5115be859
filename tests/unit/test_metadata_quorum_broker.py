"""DescribeQuorum on the node's side: the quorum facts, the response of every version on the wire,
Kafka's errors, and the tool reading what the broker wrote."""

from __future__ import annotations

import types
import uuid

import pytest
import trio

from kio.schema.errors import ErrorCode

from kraft.broker.quorum import describe_quorum_response, directory_uuid, handle_describe_quorum
from kraft.server.quorum_member import DriverQuorum
from kraft.server.quorum_info import Endpoint, QuorumInfo, ReplicaInfo
from protocol.apis import BROKER_APIS, decode_response, encode_response, request_class, response_class
from tools.common import ToolError
from tools.metadata_quorum import format_status, quorum_from_response, uuid_text

DESCRIBE_QUORUM = 55
VERSIONS = (0, 1, 2)
DIRECTORY = "O6GnF0wOSfaaTsPxqBUTtA"
NOW_MS = 1_700_000_000_000


def single_voter_info() -> QuorumInfo:
    return QuorumInfo(leader_id=1, leader_epoch=3, high_watermark=7, voters=(ReplicaInfo(1, DIRECTORY, 7, NOW_MS, NOW_MS),),
                      endpoints=((1, (Endpoint("CONTROLLER", "127.0.0.1", 9093),)),))


def fake_driver(*, is_leader: bool = True, replicas: dict | None = None) -> types.SimpleNamespace:
    core = types.SimpleNamespace(now_ms=5_000, log=types.SimpleNamespace(end_offset=7),
                                 role=types.SimpleNamespace(replicas=replicas or {}))
    return types.SimpleNamespace(core=core, is_leader=is_leader, local_id=1, voters=frozenset({1}), epoch=3,
                                 high_watermark=7)


def request(version: int, topics: tuple[tuple[str, tuple[int, ...]], ...] = (("__cluster_metadata", (0,)),)):
    cls = request_class(DESCRIBE_QUORUM, version)
    module = __import__(cls.__module__, fromlist=["TopicData", "PartitionData"])
    return cls(topics=tuple(
        module.TopicData(topic_name=name, partitions=tuple(module.PartitionData(partition_index=p) for p in parts))
        for name, parts in topics))


def on_the_wire(version: int, body):
    """The response after encoding and decoding, as a client would read it."""
    frame = encode_response(DESCRIBE_QUORUM, version, 9, body)
    correlation_id, decoded = decode_response(DESCRIBE_QUORUM, version, frame[4:])
    assert correlation_id == 9
    return decoded


def test_describe_quorum_is_advertised_at_versions_0_to_2() -> None:
    advertised = {api.api_key: (api.advertised_min, api.advertised_max) for api in BROKER_APIS}
    assert advertised[DESCRIBE_QUORUM] == (0, 2)


def test_a_standalone_voter_reports_itself_as_leader_caught_up_now(monkeypatch) -> None:
    import kraft.server.quorum_member as cluster_node

    monkeypatch.setattr(cluster_node, "wall_clock_ms", lambda: NOW_MS)
    endpoints = {1: (Endpoint("CONTROLLER", "127.0.0.1", 9093),)}
    assert DriverQuorum(fake_driver(), {1: DIRECTORY}, endpoints).describe_quorum() == single_voter_info()
    assert DriverQuorum(fake_driver(is_leader=False), {1: DIRECTORY}, endpoints).describe_quorum() is None


def test_quorum_info_refuses_a_leader_that_is_not_a_voter() -> None:
    with pytest.raises(AssertionError, match="leader 2 is not among the voters"):
        QuorumInfo(leader_id=2, leader_epoch=1, high_watermark=0, voters=(ReplicaInfo(1, None, 0),))


def test_directory_ids_convert_between_kafka_text_and_uuid() -> None:
    assert directory_uuid(None) == uuid.UUID(int=0)
    assert uuid_text(directory_uuid(DIRECTORY)) == DIRECTORY


@pytest.mark.parametrize("version", VERSIONS)
def test_every_version_carries_the_quorum_and_the_tool_reads_it(version: int) -> None:
    cls = response_class(DESCRIBE_QUORUM, version)
    response = on_the_wire(version, describe_quorum_response(cls, request(version), single_voter_info()))
    assert response.error_code == ErrorCode.none
    [topic] = response.topics
    [partition] = topic.partitions
    assert (topic.topic_name, partition.partition_index, partition.error_code) == (
        "__cluster_metadata", 0, ErrorCode.none)
    assert (partition.leader_id, partition.leader_epoch, partition.high_watermark) == (1, 3, 7)
    [voter] = partition.current_voters
    assert (voter.replica_id, voter.log_end_offset) == (1, 7)
    assert partition.observers == ()
    quorum = quorum_from_response(response)
    if version >= 1:
        assert (voter.last_fetch_timestamp, voter.last_caught_up_timestamp) == (NOW_MS, NOW_MS)
    if version >= 2:
        assert voter.replica_directory_id == directory_uuid(DIRECTORY)
        [node] = response.nodes
        assert (node.node_id, [(lst.name, lst.host, lst.port) for lst in node.listeners]) == (
            1, [("CONTROLLER", "127.0.0.1", 9093)])
        assert format_status("c", quorum).splitlines()[6] == (
            f'CurrentVoters:          [{{"id": 1, "directoryId": "{DIRECTORY}", '
            '"endpoints": ["CONTROLLER://127.0.0.1:9093"]}]')
    else:
        assert format_status("c", quorum).splitlines()[6] == 'CurrentVoters:          [{"id": 1}]'


@pytest.mark.parametrize("topics", [
    (("__consumer_offsets", (0,)),),
    (("__cluster_metadata", (1,)),),
    (("__cluster_metadata", (0, 1)),),
    (("__cluster_metadata", (0,)), ("other", (3,))),
])
def test_anything_but_the_metadata_partition_is_an_unknown_topic_or_partition(topics) -> None:
    cls = response_class(DESCRIBE_QUORUM, 2)
    response = on_the_wire(2, describe_quorum_response(cls, request(2, topics), single_voter_info()))
    assert response.error_code == ErrorCode.none
    answered = [(t.topic_name, p.partition_index, p.error_code) for t in response.topics for p in t.partitions]
    assert answered == [(name, p, ErrorCode.unknown_topic_or_partition) for name, parts in topics for p in parts]
    assert response.nodes == ()
    with pytest.raises(ToolError):
        quorum_from_response(response)


def test_a_node_that_is_not_the_leader_answers_not_leader_or_follower() -> None:
    broker = types.SimpleNamespace(quorum=None)
    incoming = types.SimpleNamespace(api_version=2, body=request(2))
    response = on_the_wire(2, trio.run(handle_describe_quorum, broker, incoming, None))
    [partition] = response.topics[0].partitions
    assert (partition.error_code, partition.leader_id) == (ErrorCode.not_leader_or_follower, -1)
    with pytest.raises(ToolError, match="not the leader"):
        quorum_from_response(response)


def test_the_handler_asks_the_brokers_quorum_source() -> None:
    broker = types.SimpleNamespace(quorum=types.SimpleNamespace(describe_quorum=single_voter_info))
    incoming = types.SimpleNamespace(api_version=2, body=request(2))
    response = trio.run(handle_describe_quorum, broker, incoming, None)
    assert response.topics[0].partitions[0].current_voters[0].replica_id == 1
