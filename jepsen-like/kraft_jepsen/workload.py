"""The queue workload: producers writing unique values, consumers reading them, a final read.

Every client is a librdkafka client (confluent-kafka) of its own, in a thread of its own, and
records what it does in the history (see history.py):

- producers send unique integers to random partitions of one topic at a fixed rate each, with
  acks=all (or what --acks says) and idempotence on or off. A send is invoked when handed to
  the client and completes in its delivery report: ``ok`` with the offset; ``fail`` only for
  errors that say the broker refused the record itself; ``info`` for everything else (timeouts,
  lost connections, retriable errors), because the record may have been written anyway.
- ``assign`` consumers read a random set of partitions that they change now and then, from the
  position they had; ``group`` consumers subscribe as one consumer group and commit what each
  poll read, synchronously, recording every rebalance as an ``assign``.
- after the faults heal, a fresh ``final-reader`` assigns every partition from the beginning and
  polls until it reaches the end offsets it saw (or gives up at a deadline), so every
  acknowledged value has had its chance to be read.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from .history import FAIL, INFO, INVOKE, OK, History

TOPIC = "jepsen"
VALUE_STRIDE = 1_000_000_000  # producer i writes i * stride + n: unique across the run
POLL_BATCH = 500
POLL_TIMEOUT_S = 0.5
REASSIGN_EVERY_S = (5.0, 15.0)
ADMIN_TIMEOUT_S = 30
FINAL_READ_TIMEOUT_S = 120
FLUSH_TIMEOUT_S = 30
# Send errors that mean the broker refused the record and did not write it; anything else may
# have been written (Jepsen counts NOT_LEADER_OR_FOLLOWER as indeterminate too: KAFKA-13574).
DEFINITE_SEND_ERRORS = frozenset({
    KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_RECORD, KafkaError.RECORD_LIST_TOO_LARGE,
    KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    KafkaError.INVALID_REQUIRED_ACKS, KafkaError.TOPIC_EXCEPTION, KafkaError._INVALID_ARG,
    KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_PARTITION, KafkaError._UNKNOWN_TOPIC,
})
# Commit errors that mean the group refused the commit.
DEFINITE_COMMIT_ERRORS = frozenset({
    KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID, KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError._NO_OFFSET, KafkaError._ASSIGNMENT_LOST, KafkaError.FENCED_INSTANCE_ID,
    KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.STALE_MEMBER_EPOCH, KafkaError._STATE,
})


@dataclass(frozen=True, slots=True)
class WorkloadOptions:
    partitions: int = 6
    replication_factor: int = 3
    min_insync_replicas: int = 2
    unclean_leader_election: bool = False
    producers: int = 3
    rate_per_producer: float = 200.0
    acks: str = "all"
    idempotent: bool = True
    assign_consumers: int = 1
    group_consumers: int = 2
    # librdkafka's default. A message that times out in flight makes an idempotent librdkafka
    # producer bump its epoch, and what it then sends again is not deduplicated: shorter
    # timeouts than the faults last test the client's duplicates, not the cluster's.
    message_timeout_ms: int = 300_000


def client_logger(path) -> logging.Logger:
    """librdkafka's log lines go to the run's clients.log, not the terminal."""
    logger = logging.getLogger(f"kraft_jepsen.clients.{path}")
    if not logger.handlers:
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)
    return logger


def create_topic(bootstrap: str, options: WorkloadOptions, logger: logging.Logger) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": logger})
    configs = {"min.insync.replicas": str(options.min_insync_replicas),
               "unclean.leader.election.enable": str(options.unclean_leader_election).lower()}
    futures = admin.create_topics([NewTopic(TOPIC, options.partitions, options.replication_factor, config=configs)],
                                  operation_timeout=ADMIN_TIMEOUT_S)
    try:
        futures[TOPIC].result(ADMIN_TIMEOUT_S)
    except TimeoutError:
        raise RuntimeError(f"creating topic {TOPIC} took over {ADMIN_TIMEOUT_S} s") from None
    deadline = time.monotonic() + ADMIN_TIMEOUT_S
    while time.monotonic() < deadline:
        partitions = admin.list_topics(TOPIC, timeout=ADMIN_TIMEOUT_S).topics[TOPIC].partitions
        if len(partitions) == options.partitions and all(p.leader >= 0 for p in partitions.values()):
            return
        time.sleep(0.2)
    raise RuntimeError(f"topic {TOPIC} has no leader for every partition after {ADMIN_TIMEOUT_S} s")


class Leaders:
    """Partition leaders as the cluster's metadata says, for the nemesis to aim at."""

    def __init__(self, bootstrap: str, logger: logging.Logger) -> None:
        self._admin = AdminClient({"bootstrap.servers": bootstrap, "logger": logger})

    def leader_of(self, partition: int) -> int | None:
        try:
            metadata = self._admin.list_topics(TOPIC, timeout=5).topics[TOPIC].partitions
        except (KafkaException, KeyError):
            return None
        leader = metadata[partition].leader if partition in metadata else -1
        return leader if leader >= 0 else None


def _send_outcome(error: KafkaError | None) -> str:
    if error is None:
        return OK
    return FAIL if error.code() in DEFINITE_SEND_ERRORS and not error.retriable() else INFO


def run_producer(index: int, bootstrap: str, options: WorkloadOptions, history: History, rng: random.Random,
                 stop: threading.Event, logger: logging.Logger) -> None:
    process = f"producer-{index}"
    producer = Producer({"bootstrap.servers": bootstrap, "acks": options.acks,
                         "enable.idempotence": options.idempotent, "linger.ms": 5,
                         "message.timeout.ms": options.message_timeout_ms, "logger": logger,
                         # Producer ids, epoch bumps and sequence resets in clients.log: what a
                         # duplicate needs to be explained (a bumped epoch is the client's doing).
                         "debug": "eos"})
    interval_s = 1.0 / options.rate_per_producer
    counter = 0
    next_at = time.monotonic()
    while not stop.is_set():
        partition = rng.randrange(options.partitions)
        value = index * VALUE_STRIDE + counter
        counter += 1
        invoke = history.record(process, INVOKE, "send", {"partition": partition, "value": value})

        def delivered(error, message, op=invoke["op"], partition=partition, value=value):
            outcome = _send_outcome(error)
            offset = message.offset() if outcome == OK else None
            history.record(process, outcome, "send", {"partition": partition, "value": value, "offset": offset},
                           error=None if error is None else error.name(), op=op)

        try:
            producer.produce(TOPIC, str(value).encode(), partition=partition, on_delivery=delivered)
        except (BufferError, KafkaException) as error:
            history.record(process, FAIL, "send", {"partition": partition, "value": value, "offset": None},
                           error=f"not queued: {error}", op=invoke["op"])
        next_at += interval_s
        producer.poll(max(0.0, next_at - time.monotonic()))
    # What is still queued gets its chance; what never completes stays an invoke (indeterminate).
    producer.flush(min(options.message_timeout_ms / 1000, FLUSH_TIMEOUT_S))


def _records(messages) -> tuple[list[list[int]], list[str]]:
    records, errors = [], []
    for message in messages:
        if message.error() is not None:
            if message.error().code() != KafkaError._PARTITION_EOF:
                errors.append(message.error().name())
            continue
        records.append([message.partition(), message.offset(), int(message.value())])
    return records, errors


def _poll(consumer: Consumer, process: str, history: History) -> list[list[int]]:
    invoke = history.record(process, INVOKE, "poll")
    try:
        messages = consumer.consume(POLL_BATCH, POLL_TIMEOUT_S)
    except KafkaException as error:
        history.record(process, INFO, "poll", {"records": []}, error=str(error), op=invoke["op"])
        return []
    records, errors = _records(messages)
    history.record(process, OK, "poll", {"records": records}, error=",".join(errors) or None, op=invoke["op"])
    return records


def run_assign_consumer(index: int, bootstrap: str, options: WorkloadOptions, history: History,
                        rng: random.Random, stop: threading.Event, logger: logging.Logger) -> None:
    process = f"assign-{index}"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"jepsen-assign-{index}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest", "logger": logger})
    positions: dict[int, int] = {}
    try:
        reassign_at = 0.0
        while not stop.is_set():
            if time.monotonic() >= reassign_at:
                chosen = sorted(rng.sample(range(options.partitions), rng.randint(1, options.partitions)))
                consumer.assign([TopicPartition(TOPIC, p, positions.get(p, OFFSET_BEGINNING)) for p in chosen])
                history.record(process, OK, "assign", {"partitions": chosen})
                reassign_at = time.monotonic() + rng.uniform(*REASSIGN_EVERY_S)
            for partition, offset, _ in _poll(consumer, process, history):
                positions[partition] = offset + 1
    finally:
        consumer.close()


def run_group_consumer(index: int, bootstrap: str, options: WorkloadOptions, history: History,
                       rng: random.Random, stop: threading.Event, logger: logging.Logger) -> None:
    process = f"group-{index}"
    group = "jepsen-group"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "logger": logger})

    def assigned(_, partitions):
        history.record(process, OK, "assign", {"partitions": sorted(p.partition for p in partitions)})

    def revoked(_, partitions):
        history.record(process, OK, "assign", {"partitions": []})

    consumer.subscribe([TOPIC], on_assign=assigned, on_revoke=revoked, on_lost=revoked)
    try:
        while not stop.is_set():
            records = _poll(consumer, process, history)
            if records:
                _commit(consumer, process, group, records, history)
    finally:
        consumer.close()


def _commit(consumer: Consumer, process: str, group: str, records: list[list[int]], history: History) -> None:
    offsets: dict[int, int] = {}
    for partition, offset, _ in records:
        offsets[partition] = max(offsets.get(partition, 0), offset + 1)
    value = {"group": group, "offsets": {str(p): o for p, o in sorted(offsets.items())}}
    invoke = history.record(process, INVOKE, "commit", value)
    try:
        results = consumer.commit(offsets=[TopicPartition(TOPIC, p, o) for p, o in offsets.items()],
                                  asynchronous=False)
    except KafkaException as exception:
        error = exception.args[0]
        outcome = FAIL if isinstance(error, KafkaError) and error.code() in DEFINITE_COMMIT_ERRORS else INFO
        history.record(process, outcome, "commit", value, error=str(error), op=invoke["op"])
        return
    failed = [str(tp.error) for tp in results or () if tp.error is not None]
    history.record(process, INFO if failed else OK, "commit", value, error=",".join(failed) or None, op=invoke["op"])


def final_read(bootstrap: str, options: WorkloadOptions, history: History, logger: logging.Logger,
               timeout_s: float = FINAL_READ_TIMEOUT_S) -> bool:
    """Reads every partition from the beginning to its end offset; whether it got there."""
    process = "final-reader"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "jepsen-final", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "logger": logger})
    deadline = time.monotonic() + timeout_s
    try:
        ends = _end_offsets(consumer, options.partitions, deadline)
        partitions = list(range(options.partitions))
        consumer.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in partitions])
        history.record(process, OK, "assign", {"partitions": partitions})
        positions = {p: 0 for p in partitions}
        while time.monotonic() < deadline and any(positions[p] < ends.get(p, 0) for p in partitions):
            for partition, offset, _ in _poll(consumer, process, history):
                positions[partition] = offset + 1
            for p in partitions:  # markers and compaction leave offsets no record has
                if positions[p] < ends.get(p, 0):
                    low_position = consumer.position([TopicPartition(TOPIC, p)])[0].offset
                    positions[p] = max(positions[p], low_position)
        complete = len(ends) == options.partitions and all(positions[p] >= ends[p] for p in partitions)
        history.record(process, OK, "final-read", {"end-offsets": {str(p): o for p, o in sorted(ends.items())},
                                                   "complete": complete})
        return complete
    finally:
        consumer.close()


def _end_offsets(consumer: Consumer, partitions: int, deadline: float) -> dict[int, int]:
    ends: dict[int, int] = {}
    while len(ends) < partitions and time.monotonic() < deadline:
        for p in range(partitions):
            if p in ends:
                continue
            try:
                _, high = consumer.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=5)
                ends[p] = high
            except KafkaException:
                time.sleep(0.5)
    return ends
