"""Admin APIs: topics, partitions, configs, log directories and producer ids.

Writes (CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs,
IncrementalAlterConfigs) go to the controller, which validates them against its
committed image and appends metadata records; the answer is sent once those records
are committed and applied here, so a client that reads right after sees its change.
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any

from kio.schema.errors import ErrorCode

from protocol.apis import Request, response_class

from ..config import BROKER_CONFIGS, TOPIC_CONFIGS, TOPIC_SYNONYMS, broker_default_for_topic
from ..controller.control import PREFERRED_ELECTION, UNCLEAN_ELECTION, ConfigChange, ControllerError, NewTopic
from ..metadata import TOPIC_RESOURCE, BROKER_RESOURCE
from ..server.network import ConnectionInfo
from .build import make, nested
from .core import Broker, handles

logger = logging.getLogger(__name__)
(CREATE_TOPICS_KEY, DELETE_TOPICS_KEY, CREATE_PARTITIONS_KEY, DESCRIBE_CONFIGS_KEY,
 ALTER_CONFIGS_KEY, INCREMENTAL_ALTER_CONFIGS_KEY, DESCRIBE_LOG_DIRS_KEY,
 INIT_PRODUCER_ID_KEY, ELECT_LEADERS_KEY) = 19, 20, 37, 32, 33, 44, 35, 22, 43
# DescribeConfigs sources and types (Kafka's DescribeConfigsResponse.ConfigSource/ConfigType).
DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 1, 4, 5
CONFIG_TYPES = {"boolean": 1, "string": 2, "int": 3, "short": 4, "long": 5, "double": 6,
                "list": 7, "password": 9}


@handles(CREATE_TOPICS_KEY)
async def handle_create_topics(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    body = request.body
    cls = response_class(CREATE_TOPICS_KEY, request.api_version)
    topics = [
        NewTopic(
            name=t.name, num_partitions=t.num_partitions, replication_factor=t.replication_factor,
            assignments={a.partition_index: tuple(a.broker_ids) for a in t.assignments},
            configs={c.name: c.value for c in t.configs},
        )
        for t in body.topics
    ]
    results = await broker.controller.create_topics(topics, body.validate_only)
    config_cls = nested(cls, "CreatableTopicConfigs")
    entries = []
    for result in results:
        configs = ()
        if result.error_code == ErrorCode.none and config_cls is not None:
            overrides = {} if body.validate_only else dict(broker.image.topic_configs(result.name))
            configs = tuple(
                make(config_cls, name=key, value=value, read_only=False, is_sensitive=False,
                     config_source=DYNAMIC_TOPIC_CONFIG if key in overrides else _default_source(broker, key))
                for key, value in _topic_config_values(broker, overrides).items()
            )
        entries.append(make(
            nested(cls, "CreatableTopicResult"), name=result.name, topic_id=result.topic_id,
            error_code=result.error_code, error_message=result.error_message,
            topic_config_error_code=0, num_partitions=result.num_partitions,
            replication_factor=result.replication_factor, configs=configs))
    return make(cls, throttle_time=0, topics=tuple(entries))


@handles(DELETE_TOPICS_KEY)
async def handle_delete_topics(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    body = request.body
    cls = response_class(DELETE_TOPICS_KEY, request.api_version)
    if hasattr(body, "topic_names"):
        names = list(body.topic_names)
    else:
        names = []
        for state in body.topics:
            if state.name is not None:
                names.append(state.name)
            else:
                topic = broker.image.topics_by_id.get(str(state.topic_id))
                names.append(topic.name if topic is not None else f"\0{state.topic_id}")
    results = await broker.controller.delete_topics(names)
    entries = []
    for result in results:
        unknown_id = result.name.startswith("\0")
        entries.append(make(
            nested(cls, "DeletableTopicResult"), name=None if unknown_id else result.name,
            topic_id=result.name[1:] if unknown_id else result.topic_id,
            error_code=ErrorCode.unknown_topic_id if unknown_id else result.error_code,
            error_message=result.error_message))
    return make(cls, throttle_time=0, responses=tuple(entries))


@handles(CREATE_PARTITIONS_KEY)
async def handle_create_partitions(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    body = request.body
    cls = response_class(CREATE_PARTITIONS_KEY, request.api_version)
    results = []
    for topic in body.topics:
        assignments = None
        if topic.assignments is not None:
            assignments = [tuple(a.broker_ids) for a in topic.assignments]
        try:
            await broker.controller.create_partitions(topic.name, topic.count, assignments,
                                                      body.validate_only)
            code, message = ErrorCode.none, None
        except ControllerError as error:
            code, message = error.error_code, error.message
        results.append(make(nested(cls, "CreatePartitionsTopicResult"), name=topic.name,
                            error_code=code, error_message=message))
    return make(cls, throttle_time=0, results=tuple(results))


@handles(ELECT_LEADERS_KEY)
async def handle_elect_leaders(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    """ElectLeaders (v0 is always PREFERRED; v1+ names the type), forwarded to the controller."""
    body = request.body
    cls = response_class(ELECT_LEADERS_KEY, request.api_version)
    election_type = getattr(body, "election_type", PREFERRED_ELECTION)
    if election_type not in (PREFERRED_ELECTION, UNCLEAN_ELECTION):
        return make(cls, throttle_time=0, error_code=ErrorCode.invalid_request, replica_election_results=())
    partitions = None
    if body.topic_partitions is not None:
        partitions = [(topic.topic, index) for topic in body.topic_partitions for index in topic.partitions]
    results = await broker.controller.elect_leaders(election_type, partitions)
    partition_cls = nested(cls, "PartitionResult")
    return make(cls, throttle_time=0, error_code=ErrorCode.none, replica_election_results=tuple(
        make(nested(cls, "ReplicaElectionResult"), topic=name, partition_result=tuple(
            make(partition_cls, partition_id=index, error_code=code, error_message=message)
            for index, code, message in items))
        for name, items in results.items()))


def _default_source(broker: Broker, topic_key: str) -> int:
    """STATIC_BROKER_CONFIG only when the primary broker synonym is set, as Kafka reports
    it: ``log.retention.hours=168`` still describes ``retention.ms`` as a default."""
    primary = TOPIC_SYNONYMS.get(topic_key, ())[:1]
    return STATIC_BROKER_CONFIG if primary and primary[0] in broker.config.originals else DEFAULT_CONFIG


def _topic_config_values(broker: Broker, overrides: dict[str, str]) -> dict[str, str]:
    return {key: overrides.get(key, broker_default_for_topic(broker.config, key)[0])
            for key in TOPIC_CONFIGS}


def _describe_topic(broker: Broker, cls: type, name: str, keys: Any, synonyms: bool,
                    documentation: bool) -> tuple:
    overrides = dict(broker.image.topic_configs(name))
    entry_cls = nested(cls, "DescribeConfigsResourceResult")
    synonym_cls = nested(cls, "DescribeConfigsSynonym")
    entries = []
    for key, value in _topic_config_values(broker, overrides).items():
        if keys is not None and key not in keys:
            continue
        source = DYNAMIC_TOPIC_CONFIG if key in overrides else _default_source(broker, key)
        chain = []
        if synonyms:
            if key in overrides:
                chain.append(make(synonym_cls, name=key, value=value, source=DYNAMIC_TOPIC_CONFIG))
            for synonym in TOPIC_SYNONYMS.get(key, ()):
                if synonym in broker.config.originals:
                    chain.append(make(synonym_cls, name=synonym, value=broker.config.originals[synonym],
                                      source=STATIC_BROKER_CONFIG))
            default = BROKER_CONFIGS.get(TOPIC_SYNONYMS.get(key, (key,))[-1])
            if default is not None and default.default is not None:
                chain.append(make(synonym_cls, name=default.name, value=default.default, source=DEFAULT_CONFIG))
        entries.append(make(
            entry_cls, name=key, value=value, read_only=False, config_source=source,
            is_default=source == DEFAULT_CONFIG, is_sensitive=False, synonyms=tuple(chain),
            config_type=CONFIG_TYPES.get(TOPIC_CONFIGS[key].type, 0),
            documentation=None))
    return tuple(entries)


def _describe_broker(broker: Broker, cls: type, keys: Any) -> tuple:
    entry_cls = nested(cls, "DescribeConfigsResourceResult")
    entries = []
    for key, definition in sorted(BROKER_CONFIGS.items()):
        if keys is not None and key not in keys:
            continue
        explicit = key in broker.config.originals
        value = broker.config.originals[key] if explicit else definition.default
        entries.append(make(
            entry_cls, name=key, value=None if definition.sensitive else value, read_only=True,
            config_source=STATIC_BROKER_CONFIG if explicit else DEFAULT_CONFIG,
            is_default=not explicit, is_sensitive=definition.sensitive, synonyms=(),
            config_type=CONFIG_TYPES.get(definition.type, 0), documentation=None))
    return tuple(entries)


@handles(DESCRIBE_CONFIGS_KEY)
async def handle_describe_configs(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    body = request.body
    cls = response_class(DESCRIBE_CONFIGS_KEY, request.api_version)
    results = []
    for resource in body.resources:
        keys = None if resource.configuration_keys is None else set(resource.configuration_keys)
        code, message, configs = ErrorCode.none, None, ()
        if resource.resource_type == TOPIC_RESOURCE:
            if broker.image.topic(resource.resource_name) is None:
                code = ErrorCode.unknown_topic_or_partition
                message = f"Topic '{resource.resource_name}' does not exist."
            else:
                configs = _describe_topic(broker, cls, resource.resource_name, keys,
                                          getattr(body, "include_synonyms", False),
                                          getattr(body, "include_documentation", False))
        elif resource.resource_type == BROKER_RESOURCE:
            if resource.resource_name not in ("", str(broker.node_id)):
                code, message = ErrorCode.invalid_request, f"Unexpected broker id {resource.resource_name}"
            else:
                configs = _describe_broker(broker, cls, keys)
        else:
            code = ErrorCode.invalid_request
            message = f"Unsupported resource type {resource.resource_type}"
        results.append(make(nested(cls, "DescribeConfigsResult"), error_code=code, error_message=message,
                            resource_type=resource.resource_type,
                            resource_name=resource.resource_name, configs=configs))
    return make(cls, throttle_time=0, results=tuple(results))


async def _alter(broker: Broker, request: Request, incremental: bool) -> Any:
    body = request.body
    cls = response_class(request.api_key, request.api_version)
    responses = []
    for resource in body.resources:
        code, message = ErrorCode.none, None
        if resource.resource_type != TOPIC_RESOURCE:
            code = ErrorCode.invalid_request
            message = "Only topic configs can be altered on this cluster so far"
        else:
            changes = [ConfigChange(c.name, c.value, getattr(c, "config_operation", 0))
                       for c in resource.configs]
            try:
                await broker.controller.alter_topic_configs(resource.resource_name, changes,
                                                            incremental, body.validate_only)
            except ControllerError as error:
                code, message = error.error_code, error.message
        responses.append(make(nested(cls, "AlterConfigsResourceResponse"), error_code=code,
                              error_message=message, resource_type=resource.resource_type,
                              resource_name=resource.resource_name))
    return make(cls, throttle_time=0, responses=tuple(responses))


@handles(ALTER_CONFIGS_KEY)
async def handle_alter_configs(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    return await _alter(broker, request, incremental=False)


@handles(INCREMENTAL_ALTER_CONFIGS_KEY)
async def handle_incremental_alter_configs(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    return await _alter(broker, request, incremental=True)


@handles(DESCRIBE_LOG_DIRS_KEY)
async def handle_describe_log_dirs(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    cls = response_class(DESCRIBE_LOG_DIRS_KEY, request.api_version)
    wanted = None
    if request.body.topics is not None:
        wanted = {(t.topic, p) for t in request.body.topics for p in t.partitions}
    by_dir: dict[str, dict[str, list]] = {d: {} for d in broker.config.log_dirs}
    for partition in broker.replicas.all_partitions():
        if wanted is not None and (partition.topic, partition.index) not in wanted:
            continue
        log_dir = os.path.dirname(os.path.abspath(partition.log.directory))
        entry = make(nested(cls, "DescribeLogDirsPartition"), partition_index=partition.index,
                     partition_size=partition.log.size_bytes, offset_lag=0, is_future_key=False)
        by_dir.setdefault(log_dir, {}).setdefault(partition.topic, []).append(entry)
    results = []
    offline = broker.replicas.logs.offline_log_dirs()
    for log_dir, topics in by_dir.items():
        if os.path.abspath(log_dir) in offline:
            # As Kafka: the dir and its error, no partitions and no sizes.
            results.append(make(nested(cls, "DescribeLogDirsResult"), error_code=ErrorCode.kafka_storage_error,
                                log_dir=os.path.abspath(log_dir), topics=(), total_bytes=-1, usable_bytes=-1))
            continue
        usage = shutil.disk_usage(log_dir) if os.path.isdir(log_dir) else None
        results.append(make(
            nested(cls, "DescribeLogDirsResult"), error_code=ErrorCode.none, log_dir=os.path.abspath(log_dir),
            topics=tuple(make(nested(cls, "DescribeLogDirsTopic"), name=name, partitions=tuple(parts))
                         for name, parts in sorted(topics.items())),
            total_bytes=usage.total if usage else -1, usable_bytes=usage.free if usage else -1))
    return make(cls, throttle_time=0, error_code=ErrorCode.none, results=tuple(results))


@handles(INIT_PRODUCER_ID_KEY)
async def handle_init_producer_id(broker: Broker, request: Request, info: ConnectionInfo) -> Any:
    cls = response_class(INIT_PRODUCER_ID_KEY, request.api_version)
    if request.body.transactional_id is not None:
        # The transaction coordinator arrives with the transactions issue.
        return make(cls, throttle_time=0, error_code=ErrorCode.coordinator_not_available,
                    producer_id=-1, producer_epoch=-1)
    producer_id = await broker.controller.next_producer_id()
    return make(cls, throttle_time=0, error_code=ErrorCode.none, producer_id=producer_id,
                producer_epoch=0)
