"""A consumer of assigned partitions (no group), enough for kafka-console-consumer.

Rules:
- Positions start from ListOffsets (-2 earliest, -1 latest) or an explicit offset; a position
  the leader reports OFFSET_OUT_OF_RANGE is reset with ``reset_timestamp``, as Kafka's consumer
  applies auto.offset.reset.
- Each poll sends one Fetch to every leader of an assigned partition and returns the records
  at or after each position (a compressed batch may begin before it); control batches only
  move the position.
- With read_committed, the broker stops at the last stable offset and lists aborted
  transactions; their batches are skipped until the producer's abort marker, as in Kafka's
  fetcher.
- Leadership errors refresh the metadata and are retried; other errors end the run.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import trio
from kio.schema.errors import ErrorCode

from protocol.client import Client
from protocol.records import BatchHeader, decode_batch, iter_batches
from tools import admin
from tools.common import ToolError
from tools.messages import ConsumedRecord

EARLIEST, LATEST = -2, -1
METADATA_BACKOFF_MS = 200
CONTROL_ABORT = 0
REFRESH_ERRORS = frozenset({
    ErrorCode.not_leader_or_follower, ErrorCode.leader_not_available, ErrorCode.unknown_topic_or_partition,
    ErrorCode.fenced_leader_epoch, ErrorCode.unknown_leader_epoch, ErrorCode.kafka_storage_error,
    ErrorCode.replica_not_available, ErrorCode.offset_not_available, ErrorCode.not_coordinator,
})


@dataclass(frozen=True, slots=True)
class FetchSettings:
    max_wait_ms: int = 500
    min_bytes: int = 1
    max_bytes: int = 52_428_800
    partition_max_bytes: int = 1_048_576
    isolation_level: int = 0  # 1 = read_committed


class AssignedConsumer:
    def __init__(self, client: Client, topic: str, partitions: list[int] | None, start: int,
                 reset_timestamp: int, settings: FetchSettings) -> None:
        self._client = client
        self._topic = topic
        self._wanted = partitions
        self._start = start
        self._reset_timestamp = reset_timestamp
        self._settings = settings
        self._leaders: dict[int, int] = {}
        self.positions: dict[int, int] = {}

    async def start(self) -> None:
        """Wait until the topic has leaders (the caller bounds the wait), then find positions."""
        while True:
            await self._refresh_leaders()
            if self._leaders and all(leader >= 0 for leader in self._leaders.values()):
                break
            await trio.sleep(METADATA_BACKOFF_MS / 1000)
        if self._wanted is not None:
            missing = [p for p in self._wanted if p not in self._leaders]
            if missing:
                raise ToolError(f"Partition {missing[0]} does not exist in topic {self._topic}")
        assigned = sorted(self._leaders) if self._wanted is None else self._wanted
        if self._start >= 0:
            self.positions = {partition: self._start for partition in assigned}
        else:
            self.positions = await self._offsets_for(assigned, self._start)

    async def _refresh_leaders(self) -> None:
        response = await self._client.metadata([self._topic], auto_create=True)
        for topic in response.topics:
            if topic.name == self._topic:
                code = admin.error_code(topic.error_code)
                if code not in (ErrorCode.none, ErrorCode.leader_not_available, ErrorCode.unknown_topic_or_partition):
                    raise admin.KafkaApiError(code)
                self._leaders = {p.partition_index: p.leader_id for p in topic.partitions}

    async def _offsets_for(self, partitions: list[int], timestamp: int) -> dict[int, int]:
        leaders = {(self._topic, p): self._leaders[p] for p in partitions}
        lowest = 2 if self._settings.isolation_level else 1
        results = await admin.list_offsets(self._client, leaders, timestamp,
                                           isolation_level=self._settings.isolation_level, lowest_version=lowest)
        offsets = {}
        for (_, partition), result in results.items():
            admin.check(result.error)
            offsets[partition] = result.offset
        return offsets

    async def poll(self) -> list[ConsumedRecord]:
        """One Fetch round over every leader; records in offset order per partition."""
        by_leader: dict[int, list[int]] = {}
        for partition in self.positions:
            by_leader.setdefault(self._leaders.get(partition, -1), []).append(partition)
        records: list[ConsumedRecord] = []
        needs_refresh = -1 in by_leader
        for leader, partitions in by_leader.items():
            if leader >= 0:
                needs_refresh |= await self._fetch(leader, partitions, records)
        if needs_refresh:
            await trio.sleep(METADATA_BACKOFF_MS / 1000)
            await self._refresh_leaders()
        return records

    async def _fetch(self, leader: int, partitions: list[int], records: list[ConsumedRecord]) -> bool:
        connection = await self._client.connection_to(leader)
        version = connection.version_for(admin.FETCH, 12, 4)
        build = admin.build
        request = build(
            admin.FETCH, version,
            replica_id=-1,
            max_wait=admin.milliseconds(self._settings.max_wait_ms),
            min_bytes=self._settings.min_bytes,
            max_bytes=self._settings.max_bytes,
            isolation_level=self._settings.isolation_level,
            session_id=0,
            session_epoch=-1,
            topics=(build(admin.FETCH, version, "FetchTopic", topic=self._topic, partitions=tuple(
                build(admin.FETCH, version, "FetchPartition", partition=p, current_leader_epoch=-1,
                      fetch_offset=self.positions[p], last_fetched_epoch=-1, log_start_offset=-1,
                      partition_max_bytes=self._settings.partition_max_bytes)
                for p in partitions
            )),),
            forgotten_topics_data=(),
            rack_id="",
        )
        response = await connection.request(request)
        admin.check(getattr(response, "error_code", ErrorCode.none))
        needs_refresh = False
        for topic in response.responses:
            for partition in topic.partitions:
                code = admin.error_code(partition.error_code)
                if code == ErrorCode.offset_out_of_range:
                    reset = await self._offsets_for([partition.partition_index], self._reset_timestamp)
                    self.positions.update(reset)
                elif code in REFRESH_ERRORS:
                    needs_refresh = True
                elif code != ErrorCode.none:
                    raise admin.KafkaApiError(code)
                else:
                    self._take(partition, records)
        return needs_refresh

    def _take(self, partition: Any, records: list[ConsumedRecord]) -> None:
        index = partition.partition_index
        data = partition.records
        if not data:
            return
        aborted = sorted(partition.aborted_transactions or (), key=lambda t: t.first_offset)
        aborted_producers: set[int] = set()
        position = self.positions[index]
        for batch_position, header in iter_batches(data):
            while aborted and aborted[0].first_offset <= header.last_offset:
                aborted_producers.add(aborted.pop(0).producer_id)
            if header.last_offset < position:
                continue
            if self._settings.isolation_level and self._skip_aborted(data, batch_position, header, aborted_producers):
                position = header.next_offset
                continue
            if not header.is_control:
                _, batch_records = decode_batch(data, batch_position)
                for record in batch_records:
                    if record.offset >= position:
                        records.append(ConsumedRecord(index, record.offset, record.timestamp, header.timestamp_type,
                                                      record.key, record.value, record.headers))
            position = header.next_offset
        self.positions[index] = position

    @staticmethod
    def _skip_aborted(data: Any, batch_position: int, header: BatchHeader, aborted_producers: set[int]) -> bool:
        if header.is_control:
            if header.producer_id in aborted_producers and _is_abort_marker(data, batch_position):
                aborted_producers.discard(header.producer_id)
            return True
        return header.is_transactional and header.producer_id in aborted_producers


def _is_abort_marker(data: Any, batch_position: int) -> bool:
    """A control record's key is (version int16, type int16); type 0 is ABORT."""
    _, records = decode_batch(data, batch_position)
    if not records or records[0].key is None or len(records[0].key) < 4:
        return False
    _, control_type = struct.unpack_from(">hh", records[0].key)
    return control_type == CONTROL_ABORT
