"""An idempotent producer for one topic, enough for kafka-console-producer.

Rules (as Kafka's producer with its console defaults):
- Idempotence is on unless the settings say otherwise: InitProducerId gives the producer id and
  epoch; each partition numbers its records from sequence 0, and a batch keeps its sequence on
  every retry, so a retry the broker already has comes back DUPLICATE_SEQUENCE_NUMBER (success).
- Records gather in one open batch per partition, closed when the next record would pass
  ``batch_size`` or when ``linger_ms`` has passed since its first record.
- Closed batches are sent in order, at most one batch per partition per request and one
  request in flight, so ordering holds without the broker's five-in-flight window.
- A retriable error refreshes the leaders and retries after ``retry_backoff_ms``, up to
  ``retries`` times per batch; anything else ends the run with Kafka's message for the code.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import trio
from kio.schema.errors import ErrorCode

from protocol.client import Client, KafkaClientError
from protocol.records import COMPRESSION_NAMES, RecordInput, build_batch
from tools import admin
from tools.common import ToolError, parse_bool
from tools.messages import LineRecord
from tools.partitioner import StickyPartitioner, partition_for_key

RECORD_OVERHEAD_BYTES = 21  # length, attributes, deltas and counts of one record, at most
BATCH_OVERHEAD_BYTES = 61
REQUEST_BYTES_MAX = 1 << 20  # max.request.size
METADATA_WAIT_MS = 60_000  # max.block.ms
METADATA_BACKOFF_MS = 200
ZSTD = 4


@dataclass(frozen=True, slots=True)
class ProducerSettings:
    acks: int = -1
    linger_ms: int = 1000
    batch_size: int = 16384
    compression: int = 0
    idempotent: bool = True
    retries: int = 3
    retry_backoff_ms: int = 100
    request_timeout_ms: int = 1500
    client_id: str = "console-producer"


def _number(properties: dict[str, str], name: str, default: int) -> int:
    text = properties.get(name)
    if text is None:
        return default
    try:
        return int(text.strip())
    except ValueError:
        raise ToolError(f"Invalid value {text} for configuration {name}: Not a number of type INT") from None


def settings_from_properties(properties: dict[str, str]) -> ProducerSettings:
    """Producer settings from Kafka's config names; conflicts fail as Kafka's ConfigException."""
    acks_text = properties.get("acks", "all").strip().lower()
    acks = {"all": -1, "-1": -1, "0": 0, "1": 1}.get(acks_text)
    if acks is None:
        raise ToolError(f'Invalid value {acks_text} for configuration acks: String must be one of: all, -1, 0, 1')
    compression_name = properties.get("compression.type", "none").strip().lower()
    if compression_name not in COMPRESSION_NAMES:
        raise ToolError(f"Invalid value {compression_name} for configuration compression.type: String must be one"
                        " of: none, gzip, snappy, lz4, zstd")
    explicit_idempotence = "enable.idempotence" in properties
    idempotent = parse_bool(properties.get("enable.idempotence", "true"))
    if idempotent and acks != -1:
        if explicit_idempotence:
            raise ToolError("Must set acks to all in order to use the idempotent producer. "
                            "Otherwise we cannot guarantee idempotence.")
        idempotent = False  # Kafka turns implicit idempotence off when acks conflict
    settings = ProducerSettings(
        acks=acks,
        linger_ms=_number(properties, "linger.ms", 1000),
        batch_size=max(1, _number(properties, "batch.size", 16384)),
        compression=COMPRESSION_NAMES[compression_name],
        idempotent=idempotent,
        retries=_number(properties, "retries", 3),
        retry_backoff_ms=_number(properties, "retry.backoff.ms", 100),
        request_timeout_ms=_number(properties, "request.timeout.ms", 1500),
        client_id=properties.get("client.id") or "console-producer",
    )
    if settings.acks == 0:
        raise ToolError("acks=0 is not supported by kraft's console producer yet; use acks=1 or acks=all")
    return settings


@dataclass
class OpenBatch:
    opened_at: float
    entries: list[RecordInput] = field(default_factory=list)
    size_bytes: int = BATCH_OVERHEAD_BYTES


@dataclass
class ClosedBatch:
    partition: int
    data: bytes
    first_record: RecordInput
    record_count: int
    attempts: int = 0


def record_size(record: RecordInput) -> int:
    headers = sum(len(name.encode()) + len(value or b"") + 2 for name, value in record.headers)
    return RECORD_OVERHEAD_BYTES + len(record.key or b"") + len(record.value or b"") + headers


class SendError(ToolError):
    """A batch the cluster refused for good, worded as Kafka's ErrorLoggingCallback."""

    def __init__(self, topic: str, record: RecordInput, reason: str) -> None:
        key = "null" if record.key is None else f"{len(record.key)} bytes"
        value = "null" if record.value is None else f"{len(record.value)} bytes"
        super().__init__(f"Error when sending message to topic {topic} with key: {key}, value: {value}"
                         f" with error: {reason}")


class Producer:
    def __init__(self, client: Client, topic: str, settings: ProducerSettings,
                 clock: Callable[[], float] = trio.current_time) -> None:
        self._client = client
        self._topic = topic
        self._settings = settings
        self._clock = clock
        self._sticky = StickyPartitioner()
        self._open: dict[int, OpenBatch] = {}
        self._ready: deque[ClosedBatch] = deque()
        self._sequences: dict[int, int] = {}
        self._leaders: dict[int, int] = {}
        self._producer_id = -1
        self._producer_epoch = -1
        self.records_acknowledged = 0

    async def start(self) -> None:
        await self._wait_for_leaders()
        if self._settings.idempotent:
            await self._init_producer_id()

    async def _wait_for_leaders(self) -> None:
        """Metadata (creating the topic if the broker allows it), until every partition has a
        leader or max.block.ms passes, as the Java producer's first send waits."""
        with trio.move_on_after(METADATA_WAIT_MS / 1000):
            while True:
                await self._refresh_leaders()
                if self._leaders and all(leader >= 0 for leader in self._leaders.values()):
                    return
                await trio.sleep(METADATA_BACKOFF_MS / 1000)
        raise ToolError(f"Topic {self._topic} not present in metadata after {METADATA_WAIT_MS} ms.")

    async def _refresh_leaders(self) -> None:
        response = await self._client.metadata([self._topic], auto_create=True)
        for topic in response.topics:
            if topic.name != self._topic:
                continue
            code = admin.error_code(topic.error_code)
            if code not in (ErrorCode.none, ErrorCode.leader_not_available, ErrorCode.unknown_topic_or_partition):
                raise admin.KafkaApiError(code)
            self._leaders = {p.partition_index: p.leader_id for p in topic.partitions}

    async def _init_producer_id(self) -> None:
        connection = await self._client.any_connection()
        version = connection.version_for(admin.INIT_PRODUCER_ID, 5, 0)
        request = admin.build(admin.INIT_PRODUCER_ID, version, transactional_id=None,
                              transaction_timeout=admin.milliseconds(60_000), producer_id=-1, producer_epoch=-1)
        for attempt in itertools.count():
            response = await connection.request(request)
            code = admin.error_code(response.error_code)
            if code == ErrorCode.none:
                self._producer_id, self._producer_epoch = response.producer_id, response.producer_epoch
                return
            if not code.retriable or attempt >= self._settings.retries:
                raise admin.KafkaApiError(code)
            await trio.sleep(self._settings.retry_backoff_ms / 1000)

    # --- accumulating -----------------------------------------------------------------------

    def add(self, line: LineRecord) -> None:
        record = RecordInput(key=line.key, value=line.value, headers=line.headers)
        partition_count = len(self._leaders)
        if record.key is not None:
            partition = partition_for_key(record.key, partition_count)
        else:
            partition = self._sticky.partition(partition_count)
        size = record_size(record)
        batch = self._open.get(partition)
        if batch is not None and batch.entries and batch.size_bytes + size > self._settings.batch_size:
            self._close(partition)
            if record.key is None:
                partition = self._sticky.partition(partition_count)
            batch = self._open.get(partition)
        if batch is None:
            batch = self._open[partition] = OpenBatch(opened_at=self._clock())
        batch.entries.append(record)
        batch.size_bytes += size

    def _close(self, partition: int) -> None:
        batch = self._open.pop(partition)
        sequence = -1
        if self._settings.idempotent:
            sequence = self._sequences.get(partition, 0)
            self._sequences[partition] = (sequence + len(batch.entries)) % (1 << 31)
        data = build_batch(
            batch.entries, compression=self._settings.compression, producer_id=self._producer_id,
            producer_epoch=self._producer_epoch, base_sequence=sequence,
        )
        self._ready.append(ClosedBatch(partition, data, batch.entries[0], len(batch.entries)))
        self._sticky.batch_closed(partition, len(self._leaders))

    def next_deadline(self) -> float:
        """When the oldest open batch has lingered long enough (infinity when none is open)."""
        if not self._open:
            return float("inf")
        return min(batch.opened_at for batch in self._open.values()) + self._settings.linger_ms / 1000

    def close_lingering(self) -> None:
        now = self._clock()
        for partition, batch in list(self._open.items()):
            if batch.opened_at + self._settings.linger_ms / 1000 <= now:
                self._close(partition)

    def close_all(self) -> None:
        for partition in list(self._open):
            self._close(partition)

    @property
    def has_ready(self) -> bool:
        return bool(self._ready)

    # --- sending ----------------------------------------------------------------------------

    async def send_ready(self) -> None:
        """Send every closed batch, in order, until all are acknowledged."""
        while self._ready:
            chosen: dict[int, list[ClosedBatch]] = {}
            seen: set[int] = set()
            request_bytes = 0
            for batch in self._ready:
                if batch.partition in seen:
                    continue
                seen.add(batch.partition)
                if request_bytes and request_bytes + len(batch.data) > REQUEST_BYTES_MAX:
                    break
                request_bytes += len(batch.data)
                chosen.setdefault(self._leaders.get(batch.partition, -1), []).append(batch)
            for leader, batches in chosen.items():
                await self._send(leader, batches)

    async def _send(self, leader: int, batches: list[ClosedBatch]) -> None:
        failed: list[tuple[ClosedBatch, ErrorCode, str | None]] = []
        if leader < 0:
            failed = [(batch, ErrorCode.leader_not_available, None) for batch in batches]
        else:
            failed = await self._produce(leader, batches)
        done = {id(batch) for batch in batches} - {id(batch) for batch, _, _ in failed}
        self.records_acknowledged += sum(batch.record_count for batch in batches if id(batch) in done)
        self._ready = deque(batch for batch in self._ready if id(batch) not in done)
        for batch, code, message in failed:
            batch.attempts += 1
            if not code.retriable or batch.attempts > self._settings.retries:
                raise SendError(self._topic, batch.first_record, message or admin.default_message(code))
        if failed:
            await trio.sleep(self._settings.retry_backoff_ms / 1000)
            await self._refresh_leaders()

    async def _produce(self, leader: int, batches: list[ClosedBatch]) -> list[tuple[ClosedBatch, ErrorCode, str | None]]:
        try:
            connection = await self._client.connection_to(leader)
            version = connection.version_for(admin.PRODUCE, 9, 7 if self._settings.compression == ZSTD else 3)
        except KafkaClientError as error:
            return [(batch, ErrorCode.network_exception, str(error)) for batch in batches]
        request = admin.build(
            admin.PRODUCE, version,
            transactional_id=None,
            acks=self._settings.acks,
            timeout=admin.milliseconds(self._settings.request_timeout_ms),
            topic_data=(admin.build(admin.PRODUCE, version, "TopicProduceData", name=self._topic, partition_data=tuple(
                admin.build(admin.PRODUCE, version, "PartitionProduceData", index=batch.partition, records=batch.data)
                for batch in batches
            )),),
        )
        response = await connection.request(request)
        by_partition = {batch.partition: batch for batch in batches}
        failed = []
        for topic in response.responses:
            for partition in topic.partition_responses:
                batch = by_partition.pop(partition.index, None)
                code = admin.error_code(partition.error_code)
                if batch is None or code in (ErrorCode.none, ErrorCode.duplicate_sequence_number):
                    continue
                failed.append((batch, code, getattr(partition, "error_message", None)))
        failed.extend((batch, ErrorCode.unknown_server_error, "no response for the partition")
                      for batch in by_partition.values())
        return failed
