"""Broker semantics over the wire, with kraft's own client against a real node process:
metadata that survives restarts, idempotent producers, offsets by time, DeleteRecords."""

from __future__ import annotations

import datetime
import os

import pytest
import trio

from kio.schema.create_partitions.v3.request import CreatePartitionsRequest, CreatePartitionsTopic
from kio.schema.create_topics.v7.request import CreatableTopic, CreatableTopicConfig, CreateTopicsRequest
from kio.schema.delete_records.v2.request import DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic
from kio.schema.delete_topics.v6.request import DeleteTopicsRequest, DeleteTopicState
from kio.schema.describe_configs.v4.request import DescribeConfigsRequest, DescribeConfigsResource
from kio.schema.incremental_alter_configs.v1.request import (
    AlterableConfig, AlterConfigsResource, IncrementalAlterConfigsRequest,
)
from kio.schema.init_producer_id.v5.request import InitProducerIdRequest
from kio.schema.list_offsets.v7.request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from kio.schema.offset_for_leader_epoch.v4.request import (
    OffsetForLeaderEpochRequest, OffsetForLeaderPartition, OffsetForLeaderTopic,
)
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from protocol.client import Client
from protocol.records import RecordInput, build_batch

pytestmark = pytest.mark.interop
TIMEOUT = datetime.timedelta(seconds=30)


def run(function, *args):
    return trio.run(function, *args)


async def _request(bootstrap: str, body):
    async with Client(bootstrap) as client:
        connection = await client.any_connection()
        with trio.fail_after(30):
            return await connection.request(body)


def request(bootstrap: str, body):
    return run(_request, bootstrap, body)


def create_topic(bootstrap: str, name: str, partitions: int = 1, configs: dict | None = None):
    topic = CreatableTopic(name=name, num_partitions=partitions, replication_factor=1, assignments=(),
                           configs=tuple(CreatableTopicConfig(name=k, value=v) for k, v in (configs or {}).items()))
    response = request(bootstrap, CreateTopicsRequest(topics=(topic,), timeout=TIMEOUT, validate_only=False))
    assert response.topics[0].error_code == 0, f"expected the topic created, got {response.topics[0]}"
    return response.topics[0]


def metadata(bootstrap: str) -> dict:
    async def fetch():
        async with Client(bootstrap) as client:
            return await client.metadata(None)
    response = run(fetch)
    return {t.name: (str(t.topic_id), len(t.partitions)) for t in response.topics}


def produce(bootstrap: str, topic: str, batch: bytes, partition: int = 0, acks: int = -1):
    body = ProduceRequest(transactional_id=None, acks=acks, timeout=TIMEOUT, topic_data=(
        TopicProduceData(name=topic, partition_data=(PartitionProduceData(index=partition, records=batch),)),))
    return request(bootstrap, body).responses[0].partition_responses[0]


def list_offset(bootstrap: str, topic: str, timestamp: int, partition: int = 0):
    body = ListOffsetsRequest(replica_id=-1, isolation_level=0, topics=(
        ListOffsetsTopic(name=topic, partitions=(
            ListOffsetsPartition(partition_index=partition, current_leader_epoch=-1, timestamp=timestamp),)),))
    return request(bootstrap, body).topics[0].partitions[0]


def topic_configs(bootstrap: str, topic: str) -> dict[str, tuple[str, int]]:
    body = DescribeConfigsRequest(resources=(DescribeConfigsResource(
        resource_type=2, resource_name=topic, configuration_keys=None),), include_synonyms=True,
        include_documentation=False)
    result = request(bootstrap, body).results[0]
    assert result.error_code == 0, f"DescribeConfigs failed: {result}"
    return {c.name: (c.value, c.config_source) for c in result.configs}


def test_metadata_changes_go_through_the_metadata_log_and_survive_restarts(kraft_node):
    bootstrap = kraft_node.bootstrap
    create_topic(bootstrap, "orders", 2, {"retention.ms": "3600000", "cleanup.policy": "delete"})
    create_topic(bootstrap, "doomed")
    grow = request(bootstrap, CreatePartitionsRequest(topics=(
        CreatePartitionsTopic(name="orders", count=4, assignments=None),), timeout=TIMEOUT, validate_only=False))
    assert grow.results[0].error_code == 0, grow
    altered = request(bootstrap, IncrementalAlterConfigsRequest(resources=(AlterConfigsResource(
        resource_type=2, resource_name="orders", configs=(
            AlterableConfig(name="segment.bytes", config_operation=0, value="1048576"),
            AlterableConfig(name="cleanup.policy", config_operation=1, value=None))),), validate_only=False))
    assert altered.responses[0].error_code == 0, altered
    deleted = request(bootstrap, DeleteTopicsRequest(topics=(DeleteTopicState(name="doomed", topic_id=None),),
                                                     timeout=TIMEOUT))
    assert deleted.responses[0].error_code == 0, deleted
    before = metadata(bootstrap)
    assert set(before) == {"orders"} and before["orders"][1] == 4, before
    configs = topic_configs(bootstrap, "orders")
    assert configs["retention.ms"] == ("3600000", 1) and configs["segment.bytes"] == ("1048576", 1)
    assert configs["cleanup.policy"][1] != 1, "expected the deleted override to fall back to the default"
    metadata_log = kraft_node.data_dir / "__cluster_metadata-0"
    assert any(name.endswith(".log") and os.path.getsize(metadata_log / name) > 0
               for name in os.listdir(metadata_log)), "expected records in __cluster_metadata-0"
    assert not any(name.startswith("doomed-") for name in os.listdir(kraft_node.data_dir))
    for restart in (kraft_node.stop, kraft_node.kill9):
        restart()
        kraft_node.restart()
        assert metadata(kraft_node.bootstrap) == before, f"metadata changed after {restart.__name__}"
        assert topic_configs(kraft_node.bootstrap, "orders") == configs


def test_create_topic_errors_are_kafkas(kraft_node):
    bootstrap = kraft_node.bootstrap
    create_topic(bootstrap, "exists")
    cases = {
        "exists": (CreatableTopic(name="exists", num_partitions=1, replication_factor=1, assignments=(), configs=()), 36),
        "bad name": (CreatableTopic(name="bad name", num_partitions=1, replication_factor=1, assignments=(), configs=()), 17),
        "rf3": (CreatableTopic(name="rf3", num_partitions=1, replication_factor=3, assignments=(), configs=()), 38),
        "badconf": (CreatableTopic(name="badconf", num_partitions=1, replication_factor=1, assignments=(),
                                   configs=(CreatableTopicConfig(name="retention.ms", value="soon"),)), 40),
        "zero": (CreatableTopic(name="zero", num_partitions=0, replication_factor=1, assignments=(), configs=()), 37),
    }
    for name, (topic, expected_code) in cases.items():
        response = request(bootstrap, CreateTopicsRequest(topics=(topic,), timeout=TIMEOUT, validate_only=False))
        got = response.topics[0]
        assert got.error_code == expected_code, f"{name}: expected error {expected_code}, got {got.error_code} ({got.error_message})"
    assert set(metadata(bootstrap)) == {"exists"}


def _idempotent_batch(producer_id: int, sequence: int, count: int = 3) -> bytes:
    return build_batch([RecordInput(key=b"k%d" % (sequence + i), value=b"v") for i in range(count)],
                       producer_id=producer_id, producer_epoch=0, base_sequence=sequence)


def test_idempotent_producer_dedups_and_keeps_its_state_across_kill9(kraft_node):
    bootstrap = kraft_node.bootstrap
    create_topic(bootstrap, "idempotent")
    init = request(bootstrap, InitProducerIdRequest(transactional_id=None, transaction_timeout=TIMEOUT,
                                                    producer_id=-1, producer_epoch=-1))
    assert init.error_code == 0 and init.producer_id >= 0, init
    producer_id = init.producer_id
    first = produce(bootstrap, "idempotent", _idempotent_batch(producer_id, 0))
    assert (first.error_code, first.base_offset) == (0, 0), first
    duplicate = produce(bootstrap, "idempotent", _idempotent_batch(producer_id, 0))
    assert (duplicate.error_code, duplicate.base_offset) == (0, 0), f"expected the duplicate acked at 0: {duplicate}"
    gap = produce(bootstrap, "idempotent", _idempotent_batch(producer_id, 10))
    assert gap.error_code == 45, f"expected OUT_OF_ORDER_SEQUENCE_NUMBER, got {gap}"
    second = produce(bootstrap, "idempotent", _idempotent_batch(producer_id, 3))
    assert (second.error_code, second.base_offset) == (0, 3), second
    assert list_offset(bootstrap, "idempotent", -1).offset == 6
    kraft_node.kill9()
    kraft_node.restart()
    bootstrap = kraft_node.bootstrap
    again = produce(bootstrap, "idempotent", _idempotent_batch(producer_id, 3))
    assert (again.error_code, again.base_offset) == (0, 3), f"expected dedup after kill -9: {again}"
    assert list_offset(bootstrap, "idempotent", -1).offset == 6
    next_init = request(bootstrap, InitProducerIdRequest(transactional_id=None, transaction_timeout=TIMEOUT,
                                                         producer_id=-1, producer_epoch=-1))
    assert next_init.producer_id != producer_id, "expected producer ids never to be reused after a restart"


def test_list_offsets_by_time_and_delete_records(kraft_node):
    bootstrap = kraft_node.bootstrap
    create_topic(bootstrap, "timed")
    for index, timestamp in enumerate((1_000, 5_000, 3_000, 9_000)):
        batch = build_batch([RecordInput(value=b"x", timestamp_ms=timestamp)] * 2)
        assert produce(bootstrap, "timed", batch).base_offset == index * 2
    assert list_offset(bootstrap, "timed", -2).offset == 0
    assert list_offset(bootstrap, "timed", -1).offset == 8
    latest = list_offset(bootstrap, "timed", -3)
    assert (latest.offset, latest.timestamp) == (6, 9_000), latest
    found = list_offset(bootstrap, "timed", 4_000)
    assert (found.offset, found.timestamp) == (2, 5_000), found
    assert list_offset(bootstrap, "timed", 10_000).offset == -1
    epoch = request(bootstrap, OffsetForLeaderEpochRequest(replica_id=-1, topics=(OffsetForLeaderTopic(
        topic="timed", partitions=(OffsetForLeaderPartition(partition=0, current_leader_epoch=-1, leader_epoch=0),)),)))
    assert epoch.topics[0].partitions[0].end_offset == 8, epoch
    deleted = request(bootstrap, DeleteRecordsRequest(topics=(DeleteRecordsTopic(name="timed", partitions=(
        DeleteRecordsPartition(partition_index=0, offset=4),)),), timeout=TIMEOUT))
    assert deleted.topics[0].partitions[0].low_watermark == 4, deleted
    assert list_offset(bootstrap, "timed", -2).offset == 4
    kraft_node.kill9()
    kraft_node.restart()
    assert list_offset(kraft_node.bootstrap, "timed", -2).offset == 4
    assert list_offset(kraft_node.bootstrap, "timed", -1).offset == 8


def test_auto_creating_internal_topics_uses_their_own_settings(kraft_node):
    async def fetch(names):
        async with Client(kraft_node.bootstrap) as client:
            return await client.metadata(names, auto_create=True)
    response = run(fetch, ["__consumer_offsets", "__transaction_state"])
    by_name = {t.name: t for t in response.topics}
    assert by_name["__consumer_offsets"].error_code == 0 and by_name["__consumer_offsets"].is_internal
    assert len(by_name["__consumer_offsets"].partitions) == 50, "expected offsets.topic.num.partitions"
    assert by_name["__transaction_state"].error_code == 3, "expected no transaction topic without a coordinator"
    configs = topic_configs(kraft_node.bootstrap, "__consumer_offsets")
    assert configs["cleanup.policy"] == ("compact", 1)
