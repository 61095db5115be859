"""Cluster-shape APIs: Metadata, DescribeCluster, DescribeTopicPartitions.

Brokers are described by the endpoint of the listener the request arrived on, as
Kafka does, so a client that bootstrapped on one listener stays on it. Metadata may
create a missing topic when the client allows it and ``auto.create.topics.enable`` is
true; creation goes through the controller like any CreateTopics.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from protocol.apis import Request, response_class

from ..controller.control import INTERNAL_TOPICS, NewTopic
from ..metadata import MetadataImage, TopicImage
from ..server.network import ConnectionInfo
from .build import make, nested
from .core import Broker, handles

METADATA_KEY, DESCRIBE_CLUSTER_KEY, DESCRIBE_TOPIC_PARTITIONS_KEY = 3, 60, 75


def broker_endpoints(image: MetadataImage, listener: str) -> list[tuple[int, str, int, str | None]]:
    result = []
    for broker in sorted(image.brokers.values(), key=lambda b: b.broker_id):
        endpoint = broker.endpoint(listener)
        if endpoint is not None and not broker.fenced:
            result.append((broker.broker_id, endpoint[0], endpoint[1], broker.rack))
    return result


def _partitions(cls: type, topic: TopicImage, image: MetadataImage) -> tuple:
    partition_cls = nested(cls, "MetadataResponsePartition")
    result = []
    for state in topic.partitions.values():
        leader_ok = state.leader in image.brokers and not image.brokers[state.leader].fenced
        result.append(make(
            partition_cls,
            error_code=ErrorCode.none if leader_ok else ErrorCode.leader_not_available,
            partition_index=state.partition_id, leader_id=state.leader if leader_ok else -1,
            leader_epoch=state.leader_epoch, replica_nodes=state.replicas,
            isr_nodes=state.isr, offline_replicas=(),
        ))
    return tuple(result)


def _topic_entry(cls: type, image: MetadataImage, name: str | None, topic_id: Any = None) -> Any:
    topic_cls = nested(cls, "MetadataResponseTopic")
    topic = image.topic(name) if name is not None else image.topics_by_id.get(str(topic_id))
    if topic is None:
        return make(topic_cls, error_code=ErrorCode.unknown_topic_or_partition if name is not None
                    else ErrorCode.unknown_topic_id, name=name, topic_id=topic_id,
                    is_internal=False, partitions=())
    return make(topic_cls, error_code=ErrorCode.none, name=topic.name, topic_id=topic.topic_id,
                is_internal=topic.name in INTERNAL_TOPICS, partitions=_partitions(cls, topic, image))


async def _auto_create(broker: Broker, names: list[str]) -> dict[str, ErrorCode]:
    """Create missing topics with broker defaults; returns per-topic errors."""
    errors: dict[str, ErrorCode] = {}
    if "__consumer_offsets" in names and broker.groups is not None:
        # The group coordinator's topic needs its own partition count and configs.
        errors["__consumer_offsets"] = await broker.groups.ensure_offsets_topic()
    names = [name for name in names if name not in INTERNAL_TOPICS]
    if not names:
        return {name: code for name, code in errors.items() if code != ErrorCode.none}
    results = await broker.controller.create_topics([NewTopic(name) for name in names], False)
    errors.update({r.name: r.error_code for r in results})
    return {name: code for name, code in errors.items()
            if code not in (ErrorCode.none, ErrorCode.topic_already_exists)}


@handles(METADATA_KEY)
async def handle_metadata(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    body, version = request.body, request.api_version
    cls = response_class(METADATA_KEY, version)
    wanted = body.topics
    if version == 0 and wanted == ():
        wanted = None  # v0: an empty list means every topic
    allow_auto = getattr(body, "allow_auto_topic_creation", True)
    errors: dict[str, ErrorCode] = {}
    if wanted is not None and allow_auto and broker.config["auto.create.topics.enable"]:
        image = broker.image
        missing = [t.name for t in wanted if t.name is not None and image.topic(t.name) is None]
        errors = await _auto_create(broker, missing)
    image = broker.image
    if wanted is None:
        topics = tuple(_topic_entry(cls, image, name) for name in sorted(image.topic_ids_by_name))
    else:
        entries = []
        for item in wanted:
            entry = _topic_entry(cls, image, item.name, getattr(item, "topic_id", None))
            if item.name in errors:
                entry = make(type(entry), error_code=errors[item.name], name=item.name,
                             topic_id=None, is_internal=False, partitions=())
            entries.append(entry)
        topics = tuple(entries)
    brokers = tuple(
        make(nested(cls, "MetadataResponseBroker"), node_id=node, host=host, port=port, rack=rack)
        for node, host, port, rack in broker_endpoints(image, info.listener)
    )
    return make(cls, throttle_time=0, brokers=brokers, cluster_id=broker.cluster_id,
                controller_id=broker.node_id, topics=topics, error_code=ErrorCode.none)


CONTROLLER_ENDPOINT_TYPE, BROKER_ENDPOINT_TYPE = 2, 1


def _controller_entries(broker: Broker) -> tuple[int, list[tuple[int, str, int, bool]]] | None:
    """(active controller, [(id, host, port, fenced)]) from the quorum, or None."""
    quorum = broker.quorum.describe_quorum() if broker.quorum is not None else None
    if quorum is None:
        return None
    entries = []
    for voter in quorum.voters:
        for endpoint in quorum.endpoints_of(voter.replica_id)[:1]:
            entries.append((voter.replica_id, endpoint.host, endpoint.port, False))
    return quorum.leader_id, entries


@handles(DESCRIBE_CLUSTER_KEY)
async def handle_describe_cluster(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    """Brokers through a broker listener; controllers through a controller listener (KIP-919)."""
    cls = response_class(DESCRIBE_CLUSTER_KEY, request.api_version)
    endpoint_type = getattr(request.body, "endpoint_type", BROKER_ENDPOINT_TYPE)
    on_controller_listener = info.listener in broker.config.controller_listener_names
    controller_id, entries = broker.node_id, None
    if endpoint_type == BROKER_ENDPOINT_TYPE and not on_controller_listener:
        include_fenced = getattr(request.body, "include_fenced_brokers", False)
        entries = [(b.broker_id, *b.endpoint(info.listener), b.fenced)
                   for b in sorted(broker.image.brokers.values(), key=lambda b: b.broker_id)
                   if b.endpoint(info.listener) is not None and (include_fenced or not b.fenced)]
    elif endpoint_type == CONTROLLER_ENDPOINT_TYPE and on_controller_listener:
        found = _controller_entries(broker)
        if found is not None:
            controller_id, entries = found
    if entries is None:
        return make(cls, throttle_time=0, error_code=ErrorCode.unsupported_endpoint_type,
                    error_message=f"The request was sent to an endpoint of type {'controller' if on_controller_listener else 'broker'},"
                                  f" but we wanted an endpoint of type {'controller' if endpoint_type == 2 else 'broker'}",
                    endpoint_type=endpoint_type, cluster_id=broker.cluster_id, controller_id=-1,
                    brokers=(), cluster_authorized_operations=-2147483648)
    racks = {b.broker_id: b.rack for b in broker.image.brokers.values()}
    brokers = tuple(
        make(nested(cls, "DescribeClusterBroker"), broker_id=node, host=host, port=port,
             rack=racks.get(node), is_fenced=fenced)
        for node, host, port, fenced in entries
    )
    return make(cls, throttle_time=0, error_code=ErrorCode.none, error_message=None,
                endpoint_type=endpoint_type, cluster_id=broker.cluster_id, controller_id=controller_id,
                brokers=brokers, cluster_authorized_operations=-2147483648)


@handles(DESCRIBE_TOPIC_PARTITIONS_KEY)
async def handle_describe_topic_partitions(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    body = request.body
    cls = response_class(DESCRIBE_TOPIC_PARTITIONS_KEY, request.api_version)
    image = broker.image
    names = [t.name for t in body.topics] if body.topics else sorted(image.topic_ids_by_name)
    cursor = body.cursor
    if cursor is not None:
        names = [n for n in sorted(names) if n >= cursor.topic_name]
    limit = max(1, body.response_partition_limit)
    topics, remaining, next_cursor = [], limit, None
    for name in sorted(names):
        topic = image.topic(name)
        if topic is None:
            topics.append(make(nested(cls, "DescribeTopicPartitionsResponseTopic"),
                               error_code=ErrorCode.unknown_topic_or_partition, name=name,
                               topic_id=None, is_internal=False, partitions=()))
            continue
        start = cursor.partition_index if cursor is not None and cursor.topic_name == name else 0
        partitions = []
        for state in list(topic.partitions.values())[start:]:
            if remaining == 0:
                next_cursor = make(nested(cls, "Cursor"), topic_name=name, partition_index=state.partition_id)
                break
            partitions.append(make(
                nested(cls, "DescribeTopicPartitionsResponsePartition"), error_code=ErrorCode.none,
                partition_index=state.partition_id, leader_id=state.leader,
                leader_epoch=state.leader_epoch, replica_nodes=state.replicas, isr_nodes=state.isr,
                eligible_leader_replicas=(), last_known_elr=(), offline_replicas=()))
            remaining -= 1
        topics.append(make(nested(cls, "DescribeTopicPartitionsResponseTopic"), error_code=ErrorCode.none,
                           name=name, topic_id=topic.topic_id, is_internal=name in INTERNAL_TOPICS,
                           partitions=tuple(partitions)))
        if next_cursor is not None:
            break
    return make(cls, throttle_time=0, topics=tuple(topics), next_cursor=next_cursor)
