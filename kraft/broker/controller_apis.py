"""Controller-only APIs: BrokerRegistration, BrokerHeartbeat and AlterPartition, answered by
the active controller (NOT_CONTROLLER elsewhere, so the broker looks for the leader again)."""

from __future__ import annotations

import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from protocol.apis import Request, response_class

from ..server.network import ConnectionInfo
from ..controller import IsrRequest
from .build import make, nested
from .core import Broker, handles

BROKER_REGISTRATION_KEY, BROKER_HEARTBEAT_KEY, ALTER_PARTITION_KEY = 62, 63, 56
SECURITY_PROTOCOLS = {0: "PLAINTEXT", 1: "SSL", 2: "SASL_PLAINTEXT", 3: "SASL_SSL"}


def _active(broker: Broker) -> bool:
    channel = broker.forwarder
    return channel is None or channel.is_active()


@handles(BROKER_REGISTRATION_KEY)
async def handle_broker_registration(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    body = request.body
    cls = response_class(BROKER_REGISTRATION_KEY, request.api_version)
    if not _active(broker):
        return make(cls, throttle_time=0, error_code=ErrorCode.not_controller, broker_epoch=-1)
    if body.cluster_id != broker.cluster_id:
        return make(cls, throttle_time=0, error_code=ErrorCode.inconsistent_cluster_id, broker_epoch=-1)
    endpoints = tuple((l.name, l.host, l.port, SECURITY_PROTOCOLS.get(l.security_protocol, "PLAINTEXT"))
                      for l in body.listeners)
    error, epoch = await broker.controller.register(body.broker_id, str(body.incarnation_id), endpoints, body.rack)
    return make(cls, throttle_time=0, error_code=error, broker_epoch=epoch)


@handles(BROKER_HEARTBEAT_KEY)
async def handle_broker_heartbeat(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    body = request.body
    cls = response_class(BROKER_HEARTBEAT_KEY, request.api_version)
    if not _active(broker):
        return make(cls, throttle_time=0, error_code=ErrorCode.not_controller, is_caught_up=False,
                    is_fenced=True, should_shut_down=False)
    answer = await broker.controller.heartbeat(body.broker_id, body.broker_epoch, body.current_metadata_offset,
                                               body.want_fence, body.want_shut_down)
    return make(cls, throttle_time=0, error_code=answer.error_code, is_caught_up=answer.is_caught_up,
                is_fenced=answer.is_fenced, should_shut_down=answer.should_shut_down)


@handles(ALTER_PARTITION_KEY)
async def handle_alter_partition(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    """v2 names the new ISR by broker ids, v3 with their broker epochs (KIP-903)."""
    body = request.body
    cls = response_class(ALTER_PARTITION_KEY, request.api_version)
    if not _active(broker):
        return make(cls, throttle_time=0, error_code=ErrorCode.not_controller, topics=())
    items = []
    for topic in body.topics:
        for partition in topic.partitions:
            if request.api_version >= 3:
                new_isr = tuple((s.broker_id, s.broker_epoch) for s in partition.new_isr_with_epochs)
            else:
                new_isr = tuple((replica, -1) for replica in partition.new_isr)
            items.append(IsrRequest(str(topic.topic_id), partition.partition_index, partition.leader_epoch,
                                    partition.partition_epoch, new_isr))
    error, results = await broker.controller.alter_partition(body.broker_id, body.broker_epoch, items)
    by_topic: dict[str, list] = {}
    for result in results:
        by_topic.setdefault(result.topic_id, []).append(make(
            nested(cls, "PartitionData"), partition_index=result.partition_index, error_code=result.error_code,
            leader_id=result.leader_id, leader_epoch=result.leader_epoch, isr=result.isr,
            leader_recovery_state=0, partition_epoch=result.partition_epoch))
    topics = tuple(make(nested(cls, "TopicData"), topic_id=uuid.UUID(topic_id), partitions=tuple(partitions))
                   for topic_id, partitions in by_topic.items())
    return make(cls, throttle_time=0, error_code=error, topics=topics)
