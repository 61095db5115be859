"""The broker's side of an offline log directory (storage.manager): every partition in it answers
KAFKA_STORAGE_ERROR to Produce and Fetch, partitions in other dirs are served, and
DescribeLogDirs reports the dir with KAFKA_STORAGE_ERROR. A real ReplicaManager and LogManager
over a simulated disk whose writes fail on demand."""

from __future__ import annotations

import errno
import os

import trio
from kio.schema.errors import ErrorCode

from kraft.broker.build import make, nested
from kraft.broker.core import Broker
from kraft.broker.replicas import ReplicaManager
from kraft.config import parse_server_config
from kraft.metadata import FULL_DELTA, MetadataImage, PartitionRecord, TopicRecord, new_topic_id
from kraft.server.network import ConnectionInfo
from protocol.apis import Request, request_class
from protocol.records import RecordInput, build_batch
from storage import LogConfig, LogManager
from storage.sim_fs import SimFileSystem

PRODUCE, FETCH, DESCRIBE_LOG_DIRS = 0, 1, 35
INFO = ConnectionInfo("PLAINTEXT", "127.0.0.1:50000")


def node(tmp_path) -> tuple[Broker, SimFileSystem, list[str]]:
    log_dirs = [str(tmp_path / "a"), str(tmp_path / "b")]
    for log_dir in log_dirs:
        os.makedirs(log_dir)  # for the real fcntl lock files; the logs live on the simulated disk
    config = parse_server_config({
        "process.roles": "broker,controller", "node.id": "1", "controller.quorum.voters": "1@localhost:9093",
        "listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "controller.listener.names": "CONTROLLER",
        "log.dirs": ",".join(log_dirs)})
    fs = SimFileSystem()
    logs = LogManager(log_dirs, LogConfig(), fs=fs)
    logs.load_all()
    topic_id = new_topic_id()
    image = MetadataImage().apply([TopicRecord("t", topic_id)]
                                  + [PartitionRecord(topic_id, index, (1,), (1,), 1) for index in range(3)], 10)
    replicas = ReplicaManager(1, config, logs)
    replicas.apply_image(FULL_DELTA, image)
    # Each new partition goes to the dir with fewest: t-0 and t-2 in a, t-1 in b.
    assert [logs.log_dir_of("t", index) for index in range(3)] == [logs.log_dirs[0], logs.log_dirs[1],
                                                                   logs.log_dirs[0]]
    return Broker(1, "cluster", config, replicas, None, lambda: image), fs, logs.log_dirs


def call(broker: Broker, api_key: int, version: int, **fields):
    from kraft.broker import admin, data  # noqa: F401  (registers the handlers)
    from kraft.broker.core import HANDLERS

    body = make(request_class(api_key, version), **fields)
    return trio.run(HANDLERS[api_key], broker, Request(api_key, version, 1, "test", body), INFO)


def produce(broker: Broker, index: int, value: bytes) -> int:
    cls = request_class(PRODUCE, 9)
    data = make(nested(cls, "PartitionProduceData"), index=index,
                records=build_batch([RecordInput(key=None, value=value)], timestamp_ms=1_000))
    topic = make(nested(cls, "TopicProduceData"), name="t", partition_data=(data,))
    response = call(broker, PRODUCE, 9, transactional_id=None, acks=-1, timeout=1000, topic_data=(topic,))
    return response.responses[0].partition_responses[0].error_code


def fetch(broker: Broker, index: int) -> int:
    cls = request_class(FETCH, 12)
    partition = make(nested(cls, "FetchPartition"), partition=index, current_leader_epoch=-1, fetch_offset=0,
                     last_fetched_epoch=-1, log_start_offset=-1, partition_max_bytes=1 << 20)
    topic = make(nested(cls, "FetchTopic"), topic="t", partitions=(partition,))
    response = call(broker, FETCH, 12, cluster_id=None, replica_id=-1, max_wait=0, min_bytes=0,
                    max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1, topics=(topic,),
                    forgotten_topics_data=(), rack_id="")
    return response.responses[0].partitions[0].error_code


def describe_log_dirs(broker: Broker) -> dict[str, tuple[int, list]]:
    response = call(broker, DESCRIBE_LOG_DIRS, 4, topics=None)
    return {result.log_dir: (result.error_code, [(topic.name, sorted(p.partition_index for p in topic.partitions))
                                                 for topic in result.topics])
            for result in response.results}


def test_an_io_error_on_append_answers_kafka_storage_error_for_the_whole_dir_only(tmp_path):
    broker, fs, (dir_a, dir_b) = node(tmp_path)
    assert [produce(broker, index, b"acknowledged") for index in range(3)] == [ErrorCode.none] * 3
    assert describe_log_dirs(broker) == {dir_a: (ErrorCode.none, [("t", [0, 2])]),
                                         dir_b: (ErrorCode.none, [("t", [1])])}
    fs.inject_error("write", errno.EIO, path_contains="t-0/")
    assert produce(broker, 0, b"fails") == ErrorCode.kafka_storage_error
    assert [produce(broker, index, b"later") for index in range(3)] == [
        ErrorCode.kafka_storage_error, ErrorCode.none, ErrorCode.kafka_storage_error]
    assert [fetch(broker, index) for index in range(3)] == [
        ErrorCode.kafka_storage_error, ErrorCode.none, ErrorCode.kafka_storage_error]
    assert describe_log_dirs(broker) == {dir_a: (ErrorCode.kafka_storage_error, []),
                                         dir_b: (ErrorCode.none, [("t", [1])])}
    broker.replicas.logs.close()
