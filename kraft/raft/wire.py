"""The core's KRaft messages as Kafka's own RPCs, at the versions Kafka 4.x controllers use.

Rules:
- One table (``RAFT_APIS``) pairs each core request with its Kafka API and version: Vote
  v2 (KIP-996 pre-vote), BeginQuorumEpoch v1, EndQuorumEpoch v1, Fetch v17 and
  FetchSnapshot v1. All of them name the one partition ``__cluster_metadata-0`` (Fetch by
  Kafka's METADATA_TOPIC_ID, the others by name).
- The correlation id travels in the request and response headers; a ``Message``'s
  source and destination come from the body (candidate, leader or replica id) and from
  the node that decodes it (``local_id``) or the request a response answers. A Vote
  response carries no pre-vote flag on the wire, so it is decoded against its request.
- Field choices follow Kafka's KafkaRaftClient: the core's ``replica_epoch`` of a Fetch
  is the partition's CurrentLeaderEpoch (ReplicaState carries the replica id and epoch
  -1); errors of the decision logic are partition-level; a wrong cluster id, topic or
  partition is a top-level error answered here, before the core sees the request.
- Directory ids (KIP-853) are sent when known: ours as the replica directory id, a
  peer's as the voter directory id; unknown ones are the zero UUID (None in kio).
- Entries travel as record batches, mapped in ``batches.py``.
- A peer's bad request raises ``WireError`` carrying the Kafka error to answer with; a
  response whose error the core does not know raises it too, and the caller drops it
  (the core's request timeout retries).
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from kio.schema.begin_quorum_epoch.v1 import request as bqe_request, response as bqe_response
from kio.schema.end_quorum_epoch.v1 import request as eqe_request, response as eqe_response
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v17 import request as fetch_request, response as fetch_response
from kio.schema.fetch_snapshot.v1 import request as snap_request, response as snap_response
from kio.schema.vote.v2 import request as vote_request, response as vote_response

from protocol import apis
from protocol.framing import RemoteProtocolError

from . import messages as m
from .batches import decode_entries, encode_entries
from .log import SnapshotId

METADATA_TOPIC = "__cluster_metadata"
METADATA_PARTITION_INDEX = 0
METADATA_TOPIC_ID = uuid.UUID(int=1)  # Kafka's Uuid.METADATA_TOPIC_ID
NO_LEADER = -1
FETCH_MAX_BYTES = 8 << 20  # Kafka's KafkaRaftClient.MAX_FETCH_SIZE_BYTES
SNAPSHOT_FETCH_MAX_BYTES = 8 << 20

# core request -> (api key, version); the response of an API has the same version.
RAFT_APIS: dict[type, tuple[int, int]] = {
    m.VoteRequest: (52, 2),
    m.BeginQuorumEpochRequest: (53, 1),
    m.EndQuorumEpochRequest: (54, 1),
    m.FetchRequest: (1, 17),
    m.FetchSnapshotRequest: (59, 1),
}
RESPONSE_OF = {
    m.VoteRequest: m.VoteResponse, m.BeginQuorumEpochRequest: m.BeginQuorumEpochResponse,
    m.EndQuorumEpochRequest: m.EndQuorumEpochResponse, m.FetchRequest: m.FetchResponse,
    m.FetchSnapshotRequest: m.FetchSnapshotResponse,
}
API_OF_RESPONSE = {RESPONSE_OF[request]: key_version for request, key_version in RAFT_APIS.items()}
# What a controller listener decodes (protocol.apis.decode_request's table).
RAFT_API_RANGES: dict[int, apis.ApiRange] = {
    key: apis.ApiRange(key, version, version, version) for key, version in RAFT_APIS.values()}
_ZERO = datetime.timedelta(0)


class WireError(RemoteProtocolError):
    """The peer sent something this node will not pass to the core; ``error_code`` is the
    Kafka error to answer a request with."""

    def __init__(self, message: str, error_code: ErrorCode) -> None:
        super().__init__(message)
        self.error_code = error_code


def _leader(leader_id: int | None) -> int:
    return NO_LEADER if leader_id is None else leader_id


def _leader_or_none(leader_id: int) -> int | None:
    return None if leader_id < 0 else leader_id


def _error(code: int) -> m.Error:
    try:
        return m.Error(int(code))
    except ValueError:
        raise WireError(f"error code {int(code)} is not one the quorum knows",
                        ErrorCode.invalid_request) from None


def _one(items: tuple, what: str) -> Any:
    if len(items) != 1:
        raise WireError(f"{what}: expected exactly one entry, got {len(items)}", ErrorCode.invalid_request)
    return items[0]


@dataclass(frozen=True, slots=True)
class RaftWire:
    """The codec of one node: who it is, its cluster, and the directory ids it knows."""

    local_id: int
    cluster_id: str | None
    directory_id: uuid.UUID | None = None
    voter_directory_ids: Mapping[int, uuid.UUID] = field(default_factory=dict)
    fetch_max_wait_ms: int = 500

    # ----- frames ------------------------------------------------------------------------

    def encode_request(self, message: m.Message) -> bytes:
        """A size-prefixed request frame for ``message.destination``."""
        return apis.encode_request(message.correlation_id, f"raft-client-{self.local_id}",
                                   self.request_to_kio(message))

    def decode_request(self, frame: bytes) -> m.Message:
        """A request frame (without its size prefix) addressed to this node. Raises
        protocol.apis' UnsupportedRequest/MalformedRequest, or WireError."""
        request = apis.decode_request(frame, RAFT_API_RANGES)
        return self.request_from_kio(request.body, request.correlation_id)

    def encode_response(self, message: m.Message) -> bytes:
        api_key, version = API_OF_RESPONSE[type(message.body)]
        return apis.encode_response(api_key, version, message.correlation_id,
                                    self.response_to_kio(message.body))

    def decode_response(self, frame: bytes, request: m.Message) -> m.Message:
        """The response frame (without its size prefix) to ``request``, sent by this node."""
        api_key, version = RAFT_APIS[type(request.body)]
        correlation_id, body = apis.decode_response(api_key, version, frame)
        if correlation_id != request.correlation_id:
            raise WireError(f"response to correlation id {correlation_id}, expected "
                            f"{request.correlation_id}", ErrorCode.invalid_request)
        return self.response_from_kio(body, request)

    def error_response(self, api_key: int, correlation_id: int, error: ErrorCode) -> bytes:
        """A top-level error answer to a request the core never saw (see WireError)."""
        version = dict(RAFT_APIS.values())[api_key]
        cls = apis.response_class(api_key, version)
        body = _TOP_LEVEL_ERROR[api_key](cls, error)
        return apis.encode_response(api_key, version, correlation_id, body)

    # ----- requests -----------------------------------------------------------------------

    def request_to_kio(self, message: m.Message) -> Any:
        return _REQUEST_ENCODERS[type(message.body)](self, message.destination, message.body)

    def request_from_kio(self, body: Any, correlation_id: int) -> m.Message:
        if getattr(body, "cluster_id", None) not in (None, self.cluster_id):
            raise WireError(f"cluster id {body.cluster_id!r}, this cluster is {self.cluster_id!r}",
                            ErrorCode.inconsistent_cluster_id)
        source, core_body = _REQUEST_DECODERS[type(body)](self, body)
        return m.Message(source, self.local_id, correlation_id, core_body)

    def _voter_directory_id(self, node_id: int) -> uuid.UUID | None:
        return self.voter_directory_ids.get(node_id)

    def _encode_vote(self, destination: int, body: m.VoteRequest) -> Any:
        partition = vote_request.PartitionData(
            partition_index=METADATA_PARTITION_INDEX, replica_epoch=body.candidate_epoch,
            replica_id=body.candidate_id, replica_directory_id=self.directory_id,
            voter_directory_id=self._voter_directory_id(destination),
            last_offset_epoch=body.last_offset_epoch, last_offset=body.last_offset,
            pre_vote=body.pre_vote)
        return vote_request.VoteRequest(
            cluster_id=self.cluster_id, voter_id=destination,
            topics=(vote_request.TopicData(topic_name=METADATA_TOPIC, partitions=(partition,)),))

    def _decode_vote(self, body: Any) -> tuple[int, m.VoteRequest]:
        self._check_voter(body.voter_id)
        partition = self._named_partition(body.topics)
        self._check_voter_directory(partition.voter_directory_id)
        return partition.replica_id, m.VoteRequest(
            partition.replica_epoch, partition.replica_id, partition.last_offset_epoch,
            partition.last_offset, partition.pre_vote)

    def _encode_begin(self, destination: int, body: m.BeginQuorumEpochRequest) -> Any:
        partition = bqe_request.PartitionData(
            partition_index=METADATA_PARTITION_INDEX,
            voter_directory_id=self._voter_directory_id(destination),
            leader_id=body.leader_id, leader_epoch=body.leader_epoch)
        return bqe_request.BeginQuorumEpochRequest(
            cluster_id=self.cluster_id, voter_id=destination,
            topics=(bqe_request.TopicData(topic_name=METADATA_TOPIC, partitions=(partition,)),),
            leader_endpoints=())

    def _decode_begin(self, body: Any) -> tuple[int, m.BeginQuorumEpochRequest]:
        self._check_voter(body.voter_id)
        partition = self._named_partition(body.topics)
        self._check_voter_directory(partition.voter_directory_id)
        return partition.leader_id, m.BeginQuorumEpochRequest(partition.leader_id, partition.leader_epoch)

    def _encode_end(self, destination: int, body: m.EndQuorumEpochRequest) -> Any:
        candidates = tuple(
            eqe_request.ReplicaInfo(candidate_id=node_id,
                                    candidate_directory_id=self._voter_directory_id(node_id))
            for node_id in body.preferred_successors)
        partition = eqe_request.PartitionData(
            partition_index=METADATA_PARTITION_INDEX, leader_id=body.leader_id,
            leader_epoch=body.leader_epoch, preferred_candidates=candidates)
        return eqe_request.EndQuorumEpochRequest(
            cluster_id=self.cluster_id,
            topics=(eqe_request.TopicData(topic_name=METADATA_TOPIC, partitions=(partition,)),),
            leader_endpoints=())

    def _decode_end(self, body: Any) -> tuple[int, m.EndQuorumEpochRequest]:
        partition = self._named_partition(body.topics)
        successors = tuple(candidate.candidate_id for candidate in partition.preferred_candidates)
        return partition.leader_id, m.EndQuorumEpochRequest(
            partition.leader_id, partition.leader_epoch, successors)

    def _encode_fetch(self, destination: int, body: m.FetchRequest) -> Any:
        partition = fetch_request.FetchPartition(
            partition=METADATA_PARTITION_INDEX, current_leader_epoch=body.replica_epoch,
            fetch_offset=body.fetch_offset, last_fetched_epoch=body.last_fetched_epoch,
            log_start_offset=-1, partition_max_bytes=FETCH_MAX_BYTES,
            replica_directory_id=self.directory_id)
        return fetch_request.FetchRequest(
            cluster_id=self.cluster_id,
            replica_state=fetch_request.ReplicaState(replica_id=body.replica_id, replica_epoch=-1),
            max_wait=datetime.timedelta(milliseconds=self.fetch_max_wait_ms), min_bytes=0,
            max_bytes=FETCH_MAX_BYTES,
            topics=(fetch_request.FetchTopic(topic_id=METADATA_TOPIC_ID, partitions=(partition,)),),
            forgotten_topics_data=())

    def _decode_fetch(self, body: Any) -> tuple[int, m.FetchRequest]:
        topic = _one(body.topics, "Fetch topics")
        if topic.topic_id != METADATA_TOPIC_ID:
            raise WireError(f"Fetch of topic id {topic.topic_id}, not {METADATA_TOPIC}",
                            ErrorCode.unknown_topic_id)
        partition = self._check_partition(_one(topic.partitions, "Fetch partitions").partition,
                                          topic.partitions[0])
        replica_id = body.replica_state.replica_id
        if replica_id < 0:
            raise WireError("a metadata Fetch without a replica id", ErrorCode.invalid_request)
        return replica_id, m.FetchRequest(replica_id, partition.current_leader_epoch,
                                          partition.fetch_offset, partition.last_fetched_epoch)

    def _encode_fetch_snapshot(self, destination: int, body: m.FetchSnapshotRequest) -> Any:
        partition = snap_request.PartitionSnapshot(
            partition=METADATA_PARTITION_INDEX, current_leader_epoch=body.replica_epoch,
            snapshot_id=snap_request.SnapshotId(end_offset=body.snapshot_id.end_offset,
                                                epoch=body.snapshot_id.epoch),
            position=body.position, replica_directory_id=self.directory_id)
        return snap_request.FetchSnapshotRequest(
            cluster_id=self.cluster_id, replica_id=body.replica_id,
            max_bytes=SNAPSHOT_FETCH_MAX_BYTES,
            topics=(snap_request.TopicSnapshot(name=METADATA_TOPIC, partitions=(partition,)),))

    def _decode_fetch_snapshot(self, body: Any) -> tuple[int, m.FetchSnapshotRequest]:
        topic = _one(body.topics, "FetchSnapshot topics")
        if topic.name != METADATA_TOPIC:
            raise WireError(f"FetchSnapshot of {topic.name!r}", ErrorCode.unknown_topic_or_partition)
        partition = _one(topic.partitions, "FetchSnapshot partitions")
        self._check_partition(partition.partition, partition)
        if body.replica_id < 0:
            raise WireError("a FetchSnapshot without a replica id", ErrorCode.invalid_request)
        snapshot_id = SnapshotId(partition.snapshot_id.end_offset, partition.snapshot_id.epoch)
        return body.replica_id, m.FetchSnapshotRequest(
            body.replica_id, partition.current_leader_epoch, snapshot_id, partition.position)

    # ----- checks on what peers send ------------------------------------------------------

    def _check_voter(self, voter_id: int) -> None:
        if voter_id not in (-1, self.local_id):
            raise WireError(f"request for voter {voter_id} reached node {self.local_id}",
                            ErrorCode.invalid_voter_key)

    def _check_voter_directory(self, directory_id: uuid.UUID | None) -> None:
        if directory_id not in (None, uuid.UUID(int=0)) and self.directory_id is not None \
                and directory_id != self.directory_id:
            raise WireError(f"request for directory {directory_id}, this is {self.directory_id}",
                            ErrorCode.invalid_voter_key)

    def _named_partition(self, topics: tuple) -> Any:
        topic = _one(topics, "topics")
        if topic.topic_name != METADATA_TOPIC:
            raise WireError(f"quorum request for topic {topic.topic_name!r}",
                            ErrorCode.unknown_topic_or_partition)
        partition = _one(topic.partitions, "partitions")
        return self._check_partition(partition.partition_index, partition)

    @staticmethod
    def _check_partition(index: int, partition: Any) -> Any:
        if index != METADATA_PARTITION_INDEX:
            raise WireError(f"quorum request for partition {index}", ErrorCode.unknown_topic_or_partition)
        return partition

    # ----- responses ----------------------------------------------------------------------

    def response_to_kio(self, body: m.Body) -> Any:
        return _RESPONSE_ENCODERS[type(body)](body)

    def response_from_kio(self, body: Any, request: m.Message) -> m.Message:
        expected = RESPONSE_OF[type(request.body)]
        decoded = _RESPONSE_DECODERS[expected](body, request.body)
        return m.Message(request.destination, request.source, request.correlation_id, decoded)


def _quorum_partition(module: Any, body: Any, **extra: Any) -> Any:
    return module.PartitionData(partition_index=METADATA_PARTITION_INDEX, error_code=ErrorCode(body.error),
                                leader_id=_leader(body.leader_id), leader_epoch=body.leader_epoch, **extra)


def _encode_vote_response(body: m.VoteResponse) -> Any:
    partition = _quorum_partition(vote_response, body, vote_granted=body.vote_granted)
    return vote_response.VoteResponse(
        error_code=ErrorCode.none,
        topics=(vote_response.TopicData(topic_name=METADATA_TOPIC, partitions=(partition,)),))


def _encode_quorum_response(module: Any, response_cls_name: str) -> Callable[[Any], Any]:
    def encode(body: Any) -> Any:
        topic = module.TopicData(topic_name=METADATA_TOPIC, partitions=(_quorum_partition(module, body),))
        return getattr(module, response_cls_name)(error_code=ErrorCode.none, topics=(topic,))
    return encode


def _encode_fetch_response(body: m.FetchResponse) -> Any:
    diverging = (fetch_response.EpochEndOffset(epoch=body.diverging_epoch.epoch,
                                               end_offset=body.diverging_epoch.end_offset)
                 if body.diverging_epoch else fetch_response.EpochEndOffset())
    snapshot = (fetch_response.SnapshotId(end_offset=body.snapshot_id.end_offset, epoch=body.snapshot_id.epoch)
                if body.snapshot_id else fetch_response.SnapshotId())
    partition = fetch_response.PartitionData(
        partition_index=METADATA_PARTITION_INDEX, error_code=ErrorCode(body.error),
        high_watermark=body.high_watermark, diverging_epoch=diverging,
        current_leader=fetch_response.LeaderIdAndEpoch(leader_id=_leader(body.leader_id),
                                                       leader_epoch=body.leader_epoch),
        snapshot_id=snapshot, aborted_transactions=None, records=encode_entries(body.entries))
    return fetch_response.FetchResponse(
        throttle_time=_ZERO, error_code=ErrorCode.none,
        responses=(fetch_response.FetchableTopicResponse(topic_id=METADATA_TOPIC_ID, partitions=(partition,)),))


def _encode_fetch_snapshot_response(body: m.FetchSnapshotResponse) -> Any:
    partition = snap_response.PartitionSnapshot(
        index=METADATA_PARTITION_INDEX, error_code=ErrorCode(body.error),
        snapshot_id=snap_response.SnapshotId(end_offset=body.snapshot_id.end_offset,
                                             epoch=body.snapshot_id.epoch),
        current_leader=snap_response.LeaderIdAndEpoch(leader_id=_leader(body.leader_id),
                                                      leader_epoch=body.leader_epoch),
        size=body.size, position=body.position, unaligned_records=body.unaligned_records)
    return snap_response.FetchSnapshotResponse(
        throttle_time=_ZERO, error_code=ErrorCode.none,
        topics=(snap_response.TopicSnapshot(name=METADATA_TOPIC, partitions=(partition,)),))


def _top_level(body: Any) -> m.Error | None:
    """A top-level error answers for the whole request: the partition never reached the core."""
    return _error(body.error_code) if body.error_code != ErrorCode.none else None


def _decode_vote_response(body: Any, request: m.VoteRequest) -> m.VoteResponse:
    error = _top_level(body)
    if error is not None:
        return m.VoteResponse(error, None, -1, False, request.pre_vote)
    partition = _one(_one(body.topics, "Vote topics").partitions, "Vote partitions")
    return m.VoteResponse(_error(partition.error_code), _leader_or_none(partition.leader_id),
                          partition.leader_epoch, partition.vote_granted, request.pre_vote)


def _decode_quorum_response(core_cls: type) -> Callable[[Any, Any], Any]:
    def decode(body: Any, request: Any) -> Any:
        error = _top_level(body)
        if error is not None:
            return core_cls(error, None, -1)
        partition = _one(_one(body.topics, "topics").partitions, "partitions")
        return core_cls(_error(partition.error_code), _leader_or_none(partition.leader_id),
                        partition.leader_epoch)
    return decode


def _decode_fetch_response(body: Any, request: m.FetchRequest) -> m.FetchResponse:
    error = _top_level(body)
    if error is not None:
        return m.FetchResponse(error, None, -1, 0)
    partition = _one(_one(body.responses, "Fetch topics").partitions, "Fetch partitions")
    diverging = None
    if partition.diverging_epoch.epoch >= 0 and partition.diverging_epoch.end_offset >= 0:
        diverging = m.DivergingEpoch(partition.diverging_epoch.epoch, partition.diverging_epoch.end_offset)
    snapshot_id = None
    if partition.snapshot_id.epoch >= 0 and partition.snapshot_id.end_offset >= 0:
        snapshot_id = SnapshotId(partition.snapshot_id.end_offset, partition.snapshot_id.epoch)
    try:
        entries = tuple(decode_entries(partition.records or b""))
    except ValueError as error:
        raise WireError(f"Fetch response records: {error}", ErrorCode.corrupt_message) from error
    leader = partition.current_leader
    return m.FetchResponse(_error(partition.error_code), _leader_or_none(leader.leader_id),
                           leader.leader_epoch, partition.high_watermark, entries, diverging, snapshot_id)


def _decode_fetch_snapshot_response(body: Any, request: m.FetchSnapshotRequest) -> m.FetchSnapshotResponse:
    error = _top_level(body)
    if error is not None:
        return m.FetchSnapshotResponse(error, None, -1, request.snapshot_id)
    partition = _one(_one(body.topics, "FetchSnapshot topics").partitions, "FetchSnapshot partitions")
    leader = partition.current_leader
    return m.FetchSnapshotResponse(
        _error(partition.error_code), _leader_or_none(leader.leader_id), leader.leader_epoch,
        SnapshotId(partition.snapshot_id.end_offset, partition.snapshot_id.epoch),
        partition.size, partition.position, bytes(partition.unaligned_records))


_REQUEST_ENCODERS: dict[type, Callable] = {
    m.VoteRequest: RaftWire._encode_vote, m.BeginQuorumEpochRequest: RaftWire._encode_begin,
    m.EndQuorumEpochRequest: RaftWire._encode_end, m.FetchRequest: RaftWire._encode_fetch,
    m.FetchSnapshotRequest: RaftWire._encode_fetch_snapshot,
}
_REQUEST_DECODERS: dict[type, Callable] = {
    vote_request.VoteRequest: RaftWire._decode_vote,
    bqe_request.BeginQuorumEpochRequest: RaftWire._decode_begin,
    eqe_request.EndQuorumEpochRequest: RaftWire._decode_end,
    fetch_request.FetchRequest: RaftWire._decode_fetch,
    snap_request.FetchSnapshotRequest: RaftWire._decode_fetch_snapshot,
}
_RESPONSE_ENCODERS: dict[type, Callable] = {
    m.VoteResponse: _encode_vote_response,
    m.BeginQuorumEpochResponse: _encode_quorum_response(bqe_response, "BeginQuorumEpochResponse"),
    m.EndQuorumEpochResponse: _encode_quorum_response(eqe_response, "EndQuorumEpochResponse"),
    m.FetchResponse: _encode_fetch_response,
    m.FetchSnapshotResponse: _encode_fetch_snapshot_response,
}
_RESPONSE_DECODERS: dict[type, Callable] = {
    m.VoteResponse: _decode_vote_response,
    m.BeginQuorumEpochResponse: _decode_quorum_response(m.BeginQuorumEpochResponse),
    m.EndQuorumEpochResponse: _decode_quorum_response(m.EndQuorumEpochResponse),
    m.FetchResponse: _decode_fetch_response,
    m.FetchSnapshotResponse: _decode_fetch_snapshot_response,
}
_TOP_LEVEL_ERROR: dict[int, Callable[[type, ErrorCode], Any]] = {
    52: lambda cls, error: cls(error_code=error, topics=()),
    53: lambda cls, error: cls(error_code=error, topics=()),
    54: lambda cls, error: cls(error_code=error, topics=()),
    1: lambda cls, error: cls(throttle_time=_ZERO, error_code=error, responses=()),
    59: lambda cls, error: cls(throttle_time=_ZERO, error_code=error, topics=()),
}
