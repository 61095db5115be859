"""The data path: Produce, Fetch, ListOffsets, OffsetForLeaderEpoch, DeleteRecords.

Rules (the design card's data path):
- A produced batch is validated (framing, CRC32C, one batch per partition for v3+,
  size, idempotent sequence) and appended as the same bytes; offsets are assigned by
  stamping ``baseOffset`` and the leader epoch, which the CRC does not cover.
- A batch that fails validation is answered with Kafka's error and nothing of it is
  appended; other partitions in the same request are unaffected.
- Fetch returns whole batches up to the high watermark; a fetch with ``min_bytes`` not
  yet satisfied waits (bounded by ``max_wait``) for the next append or high watermark move.
- A follower's fetch (replica id >= 0) reads up to the log end, reports its progress to
  the partition's leader state (which may move the high watermark and grow the ISR), and
  is told where its log diverges when its last fetched epoch ends earlier here
  (``diverging_epoch``, KIP-320).
- acks=-1: refused with NOT_ENOUGH_REPLICAS before anything is appended when the ISR is
  smaller than ``min.insync.replicas``; otherwise the answer waits until the high watermark
  passes the batch (NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below the minimum
  meanwhile), the partition changes leader (NOT_LEADER_OR_FOLLOWER), or the request's
  timeout (REQUEST_TIMED_OUT). acks=1 and acks=0 answer once the leader has appended: a
  leader change may then lose the write, as in Kafka.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import trio

from kio.schema.errors import ErrorCode

from protocol.apis import Request, response_class
from protocol.records import CorruptRecordError, InvalidRecordError, iter_batches
from storage.errors import (
    InvalidProducerEpochError, OffsetOutOfRangeError, OutOfOrderSequenceError, RecordTooLargeError,
    StorageError,
)

from ..server.network import ConnectionInfo
from .build import make, nested, to_millis
from .core import Broker, handles
from .replicas import PartitionError

logger = logging.getLogger(__name__)
PRODUCE_KEY, FETCH_KEY, LIST_OFFSETS_KEY, OFFSET_FOR_LEADER_EPOCH_KEY, DELETE_RECORDS_KEY = 0, 1, 2, 23, 21
EARLIEST, LATEST, MAX_TIMESTAMP, EARLIEST_LOCAL, LATEST_TIERED = -2, -1, -3, -4, -5
FETCH_WAIT_MS_MAX = 30_000
REPLICATION_ERRORS = {
    ErrorCode.not_enough_replicas_after_append: "Messages are written to the log, but to fewer in-sync replicas"
                                                " than required.",
}


class ProduceFailure(Exception):
    def __init__(self, error_code: ErrorCode, message: str | None = None) -> None:
        super().__init__(message or error_code.name)
        self.error_code = error_code
        self.message = message


def _append(broker: Broker, topic: str, index: int, records: bytes | None, acks: int = 1) -> tuple[dict, Any]:
    """Append one partition's records; returns the response fields and the partition."""
    replicas = broker.replicas
    try:
        partition = replicas.leader_partition(topic, index, broker.image)
    except PartitionError as error:
        raise ProduceFailure(error.error_code) from None
    if acks == -1:
        in_sync, needed = len(replicas.in_sync_replicas(partition)), replicas.min_insync_replicas(partition)
        if in_sync < needed:
            raise ProduceFailure(ErrorCode.not_enough_replicas,
                                 f"The size of the current ISR {in_sync} is insufficient to satisfy the min.isr "
                                 f"requirement of {needed} for partition {topic}-{index}")
    log = partition.log
    if not records:
        raise ProduceFailure(ErrorCode.invalid_record, "Produce request has no record batch")
    if len(records) > log.config.max_message_bytes + 61:
        raise ProduceFailure(
            ErrorCode.message_too_large,
            f"The batch of {len(records)} bytes exceeds max.message.bytes={log.config.max_message_bytes}")
    try:
        # Only the batch count here; the log validates CRCs and sequences once, on append.
        if sum(1 for _ in iter_batches(records, allow_partial_tail=False)) != 1:
            raise ProduceFailure(ErrorCode.invalid_record,
                                 "Produce requests with version 3 or above must contain exactly one record batch")
        result = log.append(records, leader_epoch=partition.leader_epoch)
    except CorruptRecordError as error:
        raise ProduceFailure(ErrorCode.corrupt_message, str(error)) from None
    except InvalidRecordError as error:
        raise ProduceFailure(ErrorCode.invalid_record, str(error)) from None
    except OutOfOrderSequenceError as error:
        raise ProduceFailure(ErrorCode.out_of_order_sequence_number, str(error)) from None
    except InvalidProducerEpochError as error:
        raise ProduceFailure(ErrorCode.invalid_producer_epoch, str(error)) from None
    except RecordTooLargeError as error:
        raise ProduceFailure(ErrorCode.message_too_large, str(error)) from None
    except StorageError as error:
        logger.error("[node %d] append to %s-%d failed: %s", broker.node_id, topic, index, error)
        raise ProduceFailure(ErrorCode.kafka_storage_error, str(error)) from None
    broker.notify_data_arrived()
    replicas.advance_high_watermark(partition)
    return {
        "base_offset": result.first_offset,
        "log_append_time": result.log_append_time_ms,
        "log_start_offset": log.log_start_offset,
    }, (partition, partition.leader_epoch, result.last_offset + 1)


async def _await_replication(broker: Broker, waiting: list[tuple[dict, tuple]], timeout_ms: int) -> None:
    """acks=-1: hold each appended partition's answer until its high watermark passes the
    batch, its leadership changes, or the request times out."""
    deadline = trio.current_time() + max(timeout_ms, 0) / 1000

    async def wait(fields: dict, partition: Any, leader_epoch: int, required: int) -> None:
        code = await broker.replicas.wait_replicated(partition, leader_epoch, required, deadline)
        if code != ErrorCode.none:
            fields.update(error_code=code, error_message=REPLICATION_ERRORS.get(code))

    async with trio.open_nursery() as nursery:
        for fields, (partition, leader_epoch, required) in waiting:
            nursery.start_soon(wait, fields, partition, leader_epoch, required)


@handles(PRODUCE_KEY)
async def handle_produce(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    body = request.body
    cls = response_class(PRODUCE_KEY, request.api_version)
    partition_cls = nested(cls, "PartitionProduceResponse")
    topics = []
    waiting: list[tuple[dict, tuple]] = []
    for topic in body.topic_data:
        results = []
        for data in topic.partition_data:
            fields: dict = {"base_offset": -1, "log_append_time": -1, "log_start_offset": -1}
            if body.acks not in (-1, 0, 1):
                fields["error_code"] = ErrorCode.invalid_required_acks
            elif body.transactional_id is not None:
                fields["error_code"] = ErrorCode.transactional_id_authorization_failed
                fields["error_message"] = "Transactions are not supported by this broker yet"
            else:
                try:
                    appended, wait = _append(broker, topic.name, data.index, data.records, body.acks)
                    fields.update(appended)
                    fields["error_code"] = ErrorCode.none
                    if body.acks == -1:
                        waiting.append((fields, wait))
                except ProduceFailure as failure:
                    fields["error_code"] = failure.error_code
                    fields["error_message"] = failure.message
            results.append((data.index, fields))
        topics.append((topic.name, results))
    if body.acks == 0:
        return None
    if waiting:
        await _await_replication(broker, waiting, to_millis(body.timeout))
    topics = [make(nested(cls, "TopicProduceResponse"), name=name, partition_responses=tuple(
        make(partition_cls, index=index, record_errors=(), **fields) for index, fields in results))
        for name, results in topics]
    return make(cls, responses=tuple(topics), throttle_time=0)


def _fetch_partition(broker: Broker, topic: str, fetch: Any, max_bytes: int,
                     replica: tuple[int, int] = (-1, -1)) -> tuple[dict, int]:
    # An error still carries empty records, never null, as Kafka's: librdkafka takes a null
    # record set for a parse failure and drops the whole response, error and all.
    fields: dict = {"high_watermark": -1, "last_stable_offset": -1, "log_start_offset": -1,
                    "records": b"", "aborted_transactions": None, "preferred_read_replica": -1}
    try:
        partition = broker.replicas.leader_partition(topic, fetch.partition, broker.image)
        partition.check_epoch(getattr(fetch, "current_leader_epoch", -1))
    except PartitionError as error:
        return {**fields, "error_code": error.error_code}, 0
    log = partition.log
    replica_id, replica_epoch = replica
    diverging = _diverging_epoch(log, fetch) if replica_id >= 0 else None
    if replica_id >= 0 and diverging is None and log.log_start_offset <= fetch.fetch_offset <= log.log_end_offset:
        broker.replicas.record_follower_fetch(partition, replica_id, fetch.fetch_offset, replica_epoch)
    high_watermark = log.high_watermark
    fields.update(high_watermark=high_watermark, last_stable_offset=high_watermark,
                  log_start_offset=log.log_start_offset, aborted_transactions=())
    if diverging is not None:
        return {**fields, "error_code": ErrorCode.none, "records": b"", "diverging_epoch": diverging}, 0
    try:
        result = log.read(fetch.fetch_offset, max(max_bytes, 1), max_offset=None if replica_id >= 0 else high_watermark,
                          min_one_message=max_bytes > 0)
    except OffsetOutOfRangeError:
        return {**fields, "error_code": ErrorCode.offset_out_of_range, "records": b""}, 0
    except StorageError as error:
        logger.error("[node %d] read of %s-%d failed: %s", broker.node_id, topic, fetch.partition, error)
        return {**fields, "error_code": ErrorCode.kafka_storage_error, "records": b""}, 0
    data = result.records
    return {**fields, "error_code": ErrorCode.none, "records": data}, len(data)


def _diverging_epoch(log: Any, fetch: Any) -> tuple[int, int] | None:
    """(epoch, end offset) here when a follower's last fetched epoch ends before its fetch
    offset in this log, or is unknown to it; None when the logs agree."""
    last_epoch = getattr(fetch, "last_fetched_epoch", -1)
    if last_epoch < 0:
        return None
    epoch, end_offset = log.end_offset_for_epoch(last_epoch)
    return (epoch, end_offset) if epoch < last_epoch or end_offset < fetch.fetch_offset else None


def _fetch_all(broker: Broker, request: Request) -> tuple[list, int]:
    body = request.body
    replica_state = getattr(body, "replica_state", None)
    if replica_state is not None:
        replica = (replica_state.replica_id, replica_state.replica_epoch)
    else:
        replica = (getattr(body, "replica_id", -1), -1)
    remaining = body.max_bytes if request.api_version >= 3 else 2**31 - 1
    topics, total = [], 0
    for topic in body.topics:
        name = getattr(topic, "topic", None)
        if name is None:
            found = broker.image.topics_by_id.get(str(topic.topic_id))
            name = found.name if found is not None else None
        partitions = []
        for fetch in topic.partitions:
            if name is None:
                fields = {"error_code": ErrorCode.unknown_topic_id, "high_watermark": -1,
                          "last_stable_offset": -1, "log_start_offset": -1, "records": b"",
                          "aborted_transactions": None, "preferred_read_replica": -1}
                size = 0
            else:
                limit = min(fetch.partition_max_bytes, remaining) if total else fetch.partition_max_bytes
                fields, size = _fetch_partition(broker, name, fetch, limit, replica)
            remaining -= size
            total += size
            partitions.append((fetch.partition, fields))
        topics.append((topic, partitions))
    return topics, total


@handles(FETCH_KEY)
async def handle_fetch(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    body = request.body
    wait_ms = min(to_millis(body.max_wait), FETCH_WAIT_MS_MAX)
    deadline = trio.current_time() + wait_ms / 1000
    while True:
        arrived = broker.data_arrived
        topics, total = _fetch_all(broker, request)
        if total >= body.min_bytes or trio.current_time() >= deadline:
            break
        with trio.move_on_at(deadline):
            await arrived.wait()
    cls = response_class(FETCH_KEY, request.api_version)
    partition_cls = nested(cls, "PartitionData")
    topic_cls = nested(cls, "FetchableTopicResponse")
    epoch_cls = nested(cls, "EpochEndOffset")
    for _, partitions in topics:
        for _, fields in partitions:
            diverging = fields.pop("diverging_epoch", None)
            if diverging is not None and epoch_cls is not None:
                fields["diverging_epoch"] = make(epoch_cls, epoch=diverging[0], end_offset=diverging[1])
    responses = tuple(
        make(topic_cls, topic=getattr(topic, "topic", None), topic_id=getattr(topic, "topic_id", None),
             partitions=tuple(make(partition_cls, partition_index=index, **fields)
                              for index, fields in partitions))
        for topic, partitions in topics
    )
    return make(cls, throttle_time=0, error_code=ErrorCode.none, session_id=0, responses=responses)


def _list_offset(broker: Broker, topic: str, item: Any, isolation_level: int) -> dict:
    try:
        partition = broker.replicas.leader_partition(topic, item.partition_index, broker.image)
        partition.check_epoch(getattr(item, "current_leader_epoch", -1))
    except PartitionError as error:
        return {"error_code": error.error_code, "timestamp": -1, "offset": -1, "leader_epoch": -1}
    log = partition.log
    epoch = partition.leader_epoch
    timestamp = item.timestamp
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        return {"error_code": ErrorCode.none, "timestamp": -1, "offset": log.log_start_offset, "leader_epoch": epoch}
    if timestamp == LATEST:
        return {"error_code": ErrorCode.none, "timestamp": -1, "offset": log.high_watermark, "leader_epoch": epoch}
    if timestamp == LATEST_TIERED:
        return {"error_code": ErrorCode.none, "timestamp": -1, "offset": -1, "leader_epoch": -1}
    if timestamp == MAX_TIMESTAMP:
        found = log.max_timestamp_entry()
    elif timestamp >= 0:
        found = log.offset_for_timestamp(timestamp)
    else:
        return {"error_code": ErrorCode.invalid_request, "timestamp": -1, "offset": -1, "leader_epoch": -1}
    if found is None or found[0] >= log.high_watermark:
        return {"error_code": ErrorCode.none, "timestamp": -1, "offset": -1, "leader_epoch": -1}
    offset, found_timestamp = found
    return {"error_code": ErrorCode.none, "timestamp": found_timestamp, "offset": offset,
            "leader_epoch": log.epoch_for_offset(offset) if hasattr(log, "epoch_for_offset") else epoch}


@handles(LIST_OFFSETS_KEY)
async def handle_list_offsets(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    body = request.body
    cls = response_class(LIST_OFFSETS_KEY, request.api_version)
    isolation_level = getattr(body, "isolation_level", 0)
    topics = tuple(
        make(nested(cls, "ListOffsetsTopicResponse"), name=topic.name, partitions=tuple(
            make(nested(cls, "ListOffsetsPartitionResponse"), partition_index=item.partition_index,
                 **_list_offset(broker, topic.name, item, isolation_level))
            for item in topic.partitions))
        for topic in body.topics
    )
    return make(cls, throttle_time=0, topics=topics)


@handles(OFFSET_FOR_LEADER_EPOCH_KEY)
async def handle_offset_for_leader_epoch(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    cls = response_class(OFFSET_FOR_LEADER_EPOCH_KEY, request.api_version)
    result_cls = nested(cls, "EpochEndOffset")
    topics = []
    for topic in request.body.topics:
        results = []
        for item in topic.partitions:
            try:
                partition = broker.replicas.leader_partition(topic.topic, item.partition, broker.image)
                partition.check_epoch(item.current_leader_epoch)
                epoch, end_offset = partition.log.end_offset_for_epoch(item.leader_epoch)
                results.append(make(result_cls, error_code=ErrorCode.none, partition=item.partition,
                                    leader_epoch=epoch, end_offset=end_offset))
            except PartitionError as error:
                results.append(make(result_cls, error_code=error.error_code, partition=item.partition,
                                    leader_epoch=-1, end_offset=-1))
        topics.append(make(nested(cls, "OffsetForLeaderTopicResult"), topic=topic.topic,
                           partitions=tuple(results)))
    return make(cls, throttle_time=0, topics=tuple(topics))


def _delete_records(broker: Broker, topic: str, item: Any) -> tuple[ErrorCode, int]:
    try:
        partition = broker.replicas.leader_partition(topic, item.partition_index, broker.image)
    except PartitionError as error:
        return error.error_code, -1
    log = partition.log
    offset = log.high_watermark if item.offset == -1 else item.offset
    if offset < 0 or offset > log.high_watermark:
        return ErrorCode.offset_out_of_range, -1
    try:
        log.delete_records_before(offset)
    except StorageError as error:
        logger.error("[node %d] DeleteRecords on %s-%d failed: %s", broker.node_id, topic,
                     item.partition_index, error)
        return ErrorCode.kafka_storage_error, -1
    return ErrorCode.none, log.log_start_offset


@handles(DELETE_RECORDS_KEY)
async def handle_delete_records(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    cls = response_class(DELETE_RECORDS_KEY, request.api_version)
    topics = []
    for topic in request.body.topics:
        results = []
        for item in topic.partitions:
            error_code, low_watermark = _delete_records(broker, topic.name, item)
            results.append(make(nested(cls, "DeleteRecordsPartitionResult"),
                                partition_index=item.partition_index, low_watermark=low_watermark,
                                error_code=error_code))
        topics.append(make(nested(cls, "DeleteRecordsTopicResult"), name=topic.name,
                           partitions=tuple(results)))
    # The new log start offsets are acknowledged, so they are made durable first. This
    # runs on the event loop: the log engine is not thread-safe against appends.
    broker.replicas.logs.checkpoint()
    return make(cls, throttle_time=0, topics=tuple(topics))


def now_ms() -> int:
    return math.floor(time.time() * 1000)
