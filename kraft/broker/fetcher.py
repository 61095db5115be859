"""Replica fetchers: a follower copies its partitions from their leaders (after Kafka's
ReplicaFetcherManager and ReplicaFetcherThread).

Rules:
- One fetcher task per source broker carries every partition this node follows from it, on
  one connection to the leader's inter-broker listener (``inter.broker.listener.name``).
  ``num.replica.fetchers`` is accepted; one task per leader is what two cores can use.
- A fetch is Fetch v17 as a replica (ReplicaState with this broker's id and epoch), from the
  log end with the epoch of the last batch (``last_fetched_epoch``), so the leader can say
  where the logs diverge (KIP-320 / KIP-595). A diverging epoch truncates the log to the
  lower of the leader's end offset for that epoch and this log's own, then fetching goes on.
- Fetched batches are appended with the leader's offsets and epochs (``append_as_follower``),
  which also rebuilds the idempotent producers' state; the follower's high watermark is
  the leader's, capped at its own log end; the leader's log start offset moves it too.
- A fetch offset below the leader's log start (retention ran there) restarts the log at the
  leader's log start. Errors that a metadata update resolves (NOT_LEADER_OR_FOLLOWER, epoch
  fencing, unknown partition) pause that partition for ``replica.fetch.backoff.ms``; a
  broken connection is retried after the same backoff, never in a tight loop.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Callable

import trio

from kio.schema.errors import ErrorCode

from protocol.apis import decode_response, encode_request
from storage.errors import StorageError
from protocol.records import CorruptRecordError, InvalidRecordError

from ..controller.channel import SEND_ERRORS, FramedConnection
from ..metadata import MetadataImage
from .replicas import Partition, ReplicaManager

logger = logging.getLogger(__name__)
FETCH_VERSION = 17
CONNECT_TIMEOUT_S = 5
PAUSE_ERRORS = frozenset({ErrorCode.not_leader_or_follower, ErrorCode.fenced_leader_epoch,
                          ErrorCode.unknown_leader_epoch, ErrorCode.unknown_topic_or_partition,
                          ErrorCode.unknown_topic_id, ErrorCode.kafka_storage_error})


class ReplicaFetcherManager:
    def __init__(self, node_id: int, config: Any, replicas: ReplicaManager,
                 image: Callable[[], MetadataImage], broker_epoch: Callable[[], int | None]) -> None:
        self.node_id = node_id
        self._config = config
        self._replicas = replicas
        self._image = image
        self._broker_epoch = broker_epoch
        self._changed = trio.Event()
        self._running: dict[int, trio.CancelScope] = {}
        self._listener = config.get("inter.broker.listener.name") or config.get("security.inter.broker.protocol")
        replicas.on_following_changed = lambda: self._changed.set()

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Start and stop one fetcher per leader as the partitions this node follows change."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                self._changed = trio.Event()
                leaders = set(self._replicas.following.values())
                for leader_id in leaders - set(self._running):
                    scope = trio.CancelScope()
                    self._running[leader_id] = scope
                    nursery.start_soon(self._fetch_from, leader_id, scope)
                for leader_id in set(self._running) - leaders:
                    self._running.pop(leader_id).cancel()
                await self._changed.wait()

    def _partitions_from(self, leader_id: int) -> list[Partition]:
        replicas = self._replicas
        return [partition for key, leader in list(replicas.following.items()) if leader == leader_id
                and (partition := replicas.partition(*key)) is not None]

    async def _fetch_from(self, leader_id: int, scope: trio.CancelScope) -> None:
        backoff_s = self._config["replica.fetch.backoff.ms"] / 1000
        paused: dict[tuple[str, int], float] = {}
        connection: FramedConnection | None = None
        with scope:
            try:
                while True:
                    partitions = [p for p in self._partitions_from(leader_id)
                                  if paused.get((p.topic, p.index), 0) <= trio.current_time()]
                    if not partitions:
                        await trio.sleep(min(backoff_s, 0.1))
                        continue
                    try:
                        if connection is None:
                            connection = await self._connect(leader_id)
                        response = await self._fetch(connection, partitions)
                    except (*SEND_ERRORS, LookupError) as error:
                        logger.info("[node %d] fetching from broker %d failed: %s; retrying in %.1f s",
                                    self.node_id, leader_id, error or type(error).__name__, backoff_s)
                        if connection is not None:
                            connection.stream.socket.close()
                        connection = None
                        await trio.sleep(backoff_s)
                        continue
                    for partition, data in self._match(response, partitions):
                        if not self._handle(partition, data, leader_id):
                            paused[(partition.topic, partition.index)] = trio.current_time() + backoff_s
            finally:
                if connection is not None:
                    connection.stream.socket.close()

    async def _connect(self, leader_id: int) -> FramedConnection:
        broker = self._image().brokers.get(leader_id)
        endpoint = broker.endpoint(self._listener) if broker is not None else None
        if endpoint is None:
            raise LookupError(f"broker {leader_id} has no {self._listener} endpoint in the metadata")
        with trio.fail_after(CONNECT_TIMEOUT_S):
            stream = await trio.open_tcp_stream(*endpoint)
        return FramedConnection(stream)

    async def _fetch(self, connection: FramedConnection, partitions: list[Partition]) -> Any:
        from kio.schema.fetch.v17.request import FetchPartition, FetchRequest, FetchTopic, ReplicaState
        import datetime

        config = self._config
        by_topic: dict[str, list] = {}
        for partition in partitions:
            log = partition.log
            by_topic.setdefault(partition.topic_id, []).append(FetchPartition(
                partition=partition.index, current_leader_epoch=partition.state.leader_epoch,
                fetch_offset=log.log_end_offset, last_fetched_epoch=log.latest_epoch,
                log_start_offset=log.log_start_offset, partition_max_bytes=config["replica.fetch.max.bytes"],
                replica_directory_id=uuid.UUID(int=0)))
        epoch = self._broker_epoch()
        request = FetchRequest(
            cluster_id=None, replica_state=ReplicaState(replica_id=self.node_id, replica_epoch=-1 if epoch is None else epoch),
            max_wait=datetime.timedelta(milliseconds=config["replica.fetch.wait.max.ms"]),
            min_bytes=config["replica.fetch.min.bytes"], max_bytes=config["replica.fetch.response.max.bytes"],
            isolation_level=0, session_id=0, session_epoch=-1,
            topics=tuple(FetchTopic(topic_id=uuid.UUID(topic_id), partitions=tuple(items))
                         for topic_id, items in by_topic.items()),
            forgotten_topics_data=(), rack_id="")
        frame = encode_request(0, f"kraft-replica-fetcher-{self.node_id}", request)[4:]
        wait_s = config["replica.fetch.wait.max.ms"] / 1000
        with trio.fail_after(wait_s + config["replica.socket.timeout.ms"] / 1000):
            answer = await connection.round_trip(frame)
        return decode_response(1, FETCH_VERSION, answer)[1]

    @staticmethod
    def _match(response: Any, partitions: list[Partition]):
        wanted = {(p.topic_id, p.index): p for p in partitions}
        for topic in response.responses:
            for data in topic.partitions:
                partition = wanted.get((str(topic.topic_id), data.partition_index))
                if partition is not None:
                    yield partition, data

    def _handle(self, partition: Partition, data: Any, leader_id: int) -> bool:
        """Apply one partition's answer; False when it should pause."""
        replicas, log = self._replicas, partition.log
        if replicas.following.get((partition.topic, partition.index)) != leader_id:
            return True  # it changed leaders meanwhile
        error = ErrorCode(data.error_code)
        try:
            if error == ErrorCode.offset_out_of_range:
                return self._out_of_range(partition, data)
            if error != ErrorCode.none:
                level = logging.DEBUG if error in PAUSE_ERRORS else logging.WARNING
                logger.log(level, "[node %d] fetching %s-%d from broker %d: %s", self.node_id, partition.topic,
                           partition.index, leader_id, error.name)
                return False
            diverging = data.diverging_epoch
            if diverging is not None and (diverging.epoch >= 0 or diverging.end_offset >= 0):
                self._truncate(partition, diverging.epoch, diverging.end_offset)
                return True
            records = data.records
            if records:
                log.append_as_follower(bytes(records))
            if data.log_start_offset > log.log_start_offset:
                log.delete_records_before(min(data.log_start_offset, log.log_end_offset))
            log.high_watermark = min(data.high_watermark, log.log_end_offset)
            return True
        except (StorageError, CorruptRecordError, InvalidRecordError) as error:
            logger.error("[node %d] appending %s-%d from broker %d failed: %s", self.node_id, partition.topic,
                         partition.index, leader_id, error)
            return False

    def _truncate(self, partition: Partition, epoch: int, leader_end: int) -> None:
        log = partition.log
        own_epoch, own_end = log.end_offset_for_epoch(epoch) if epoch >= 0 else (-1, -1)
        if leader_end < 0:
            target = log.high_watermark  # the leader knows no such epoch: keep what was committed
        elif own_epoch < 0:
            target = min(leader_end, log.high_watermark)
        else:
            target = min(leader_end, own_end)
        logger.info("[node %d] %s-%d diverged from its leader at epoch %d: truncating from %d to %d", self.node_id,
                    partition.topic, partition.index, epoch, log.log_end_offset, target)
        self._replicas.logs.truncate_to(partition.topic, partition.index, max(target, log.log_start_offset))

    def _out_of_range(self, partition: Partition, data: Any) -> bool:
        log = partition.log
        if data.log_start_offset >= 0 and log.log_end_offset < data.log_start_offset:
            logger.info("[node %d] %s-%d is behind its leader's log start %d: restarting the log there",
                        self.node_id, partition.topic, partition.index, data.log_start_offset)
            self._replicas.logs.truncate_fully_and_start_at(partition.topic, partition.index, data.log_start_offset)
            return True
        if data.high_watermark >= 0 and log.log_end_offset > data.high_watermark:
            self._replicas.logs.truncate_to(partition.topic, partition.index, data.high_watermark)
            return True
        return False

