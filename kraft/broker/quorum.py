"""DescribeQuorum (key 55): the metadata quorum's leader, epoch, high watermark and replicas.

Kafka's brokers forward this request to the active controller; a kraft node answers it from the
``QuorumSource`` the node gives its broker (``broker.quorum``), which today is the node's own
quorum. As Kafka's ``KafkaRaftClient.handleDescribeQuorumRequest``:
- a request that is not exactly ``__cluster_metadata`` partition 0 gets UNKNOWN_TOPIC_OR_PARTITION
  on every partition it named;
- a node that is not the leader (or has no quorum yet) answers NOT_LEADER_OR_FOLLOWER on
  ``__cluster_metadata-0``.
Directory ids (v2) travel as UUIDs, the zero UUID meaning unknown; v2 also lists every
replica's controller endpoints in ``nodes``.
"""

from __future__ import annotations

import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from protocol.apis import Request, response_class
from protocol.uuids import uuid_from_text

from ..server.network import ConnectionInfo
from ..server.quorum_info import QuorumInfo, ReplicaInfo
from .build import make, nested
from .core import Broker, handles

DESCRIBE_QUORUM_KEY = 55
METADATA_TOPIC = "__cluster_metadata"
METADATA_PARTITION_INDEX = 0
ZERO_UUID = uuid.UUID(int=0)
ERROR_MESSAGES = {
    ErrorCode.unknown_topic_or_partition: "This server does not host this topic-partition.",
    ErrorCode.not_leader_or_follower: "This node is not the leader of the metadata quorum.",
}


def directory_uuid(directory_id: str | None) -> uuid.UUID:
    """A Kafka text id (URL-safe base64 of 16 bytes) as a UUID; the zero UUID when unknown."""
    if not directory_id:
        return ZERO_UUID
    return uuid_from_text(directory_id)


def _is_metadata_partition(body: Any) -> bool:
    topics = body.topics
    return (len(topics) == 1 and topics[0].topic_name == METADATA_TOPIC
            and len(topics[0].partitions) == 1
            and topics[0].partitions[0].partition_index == METADATA_PARTITION_INDEX)


def _replica(cls: type, replica: ReplicaInfo) -> Any:
    return make(nested(cls, "ReplicaState"), replica_id=replica.replica_id,
                replica_directory_id=directory_uuid(replica.directory_id),
                log_end_offset=replica.log_end_offset,
                last_fetch_timestamp=replica.last_fetch_timestamp_ms,
                last_caught_up_timestamp=replica.last_caught_up_timestamp_ms)


def _partition(cls: type, index: int, error: ErrorCode, info: QuorumInfo | None = None) -> Any:
    return make(nested(cls, "PartitionData"), partition_index=index, error_code=error,
                error_message=ERROR_MESSAGES.get(error),
                leader_id=info.leader_id if info else -1, leader_epoch=info.leader_epoch if info else -1,
                high_watermark=info.high_watermark if info else -1,
                current_voters=tuple(_replica(cls, v) for v in info.voters) if info else (),
                observers=tuple(_replica(cls, o) for o in info.observers) if info else ())


def _nodes(cls: type, info: QuorumInfo | None) -> tuple:
    node_cls, listener_cls = nested(cls, "Node"), nested(cls, "Listener")
    if info is None or node_cls is None or listener_cls is None:
        return ()
    replica_ids = dict.fromkeys(r.replica_id for r in (*info.voters, *info.observers))
    return tuple(
        make(node_cls, node_id=node_id, listeners=tuple(
            make(listener_cls, name=e.listener, host=e.host, port=e.port) for e in info.endpoints_of(node_id)))
        for node_id in replica_ids if info.endpoints_of(node_id))


def describe_quorum_response(cls: type, body: Any, info: QuorumInfo | None) -> Any:
    """The response of version ``cls`` to request ``body`` given the quorum facts (None: not leader)."""
    topic_cls = nested(cls, "TopicData")
    if not _is_metadata_partition(body):
        topics = tuple(
            make(topic_cls, topic_name=topic.topic_name, partitions=tuple(
                _partition(cls, p.partition_index, ErrorCode.unknown_topic_or_partition)
                for p in topic.partitions))
            for topic in body.topics)
        return make(cls, error_code=ErrorCode.none, error_message=None, topics=topics, nodes=())
    error = ErrorCode.none if info is not None else ErrorCode.not_leader_or_follower
    partition = _partition(cls, METADATA_PARTITION_INDEX, error, info)
    return make(cls, error_code=ErrorCode.none, error_message=None,
                topics=(make(topic_cls, topic_name=METADATA_TOPIC, partitions=(partition,)),),
                nodes=_nodes(cls, info))


@handles(DESCRIBE_QUORUM_KEY)
async def handle_describe_quorum(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    cls = response_class(DESCRIBE_QUORUM_KEY, request.api_version)
    quorum = broker.quorum
    facts = quorum.describe_quorum() if quorum is not None else None
    return describe_quorum_response(cls, request.body, facts)
