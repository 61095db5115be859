"""The admin calls the tools make, over ``protocol.client``, at whatever version the broker speaks.

Requests are built by name from the kio module of the negotiated version and only with the
fields that version has, so one code path serves e.g. DeleteTopics v1 (``topic_names``) and v6
(``topics``). Errors from the cluster become ``KafkaApiError`` with the message a Java client
would show: the broker's ``error_message`` when it sent one, otherwise Kafka's default text for
the code (kio carries those texts as the docstrings of its ``ErrorCode`` members).
"""

from __future__ import annotations

import ast
import datetime
import functools
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from kio.schema.errors import ErrorCode

from protocol.apis import request_class
from protocol.client import Client, Connection
from protocol.uuids import uuid_to_text
from tools.common import ToolError

PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
INIT_PRODUCER_ID = 22
CREATE_TOPICS, DELETE_TOPICS, DESCRIBE_CONFIGS, CREATE_PARTITIONS = 19, 20, 32, 37
DESCRIBE_TOPIC_PARTITIONS = 75
RESOURCE_TYPE_TOPIC = 2
CONFIG_SOURCE_DEFAULT = 5
ADMIN_TIMEOUT_MS = 30_000
DESCRIBE_PARTITION_LIMIT = 2000
DESCRIBE_PAGES_MAX = 10_000
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state", "__share_group_state"})


class KafkaApiError(ToolError):
    """An error code from the cluster, worded like the matching Java exception."""

    def __init__(self, code: ErrorCode, message: str | None = None) -> None:
        super().__init__(message or default_message(code))
        self.code = code


def error_code(value: int) -> ErrorCode:
    return value if isinstance(value, ErrorCode) else ErrorCode(value)


@functools.cache
def _error_texts() -> dict[str, str]:
    """Kafka's default exception messages, read from the docstrings in kio's ErrorCode source."""
    module = sys.modules[ErrorCode.__module__]
    try:
        with open(module.__file__ or "", encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
    except (OSError, SyntaxError):
        return {}
    texts: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "ErrorCode":
            body = node.body
            for statement, following in zip(body, body[1:]):
                if (
                    isinstance(statement, ast.Assign)
                    and isinstance(statement.targets[0], ast.Name)
                    and isinstance(following, ast.Expr)
                    and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)
                ):
                    texts[statement.targets[0].id] = following.value.value
    return texts


def default_message(code: ErrorCode) -> str:
    return _error_texts().get(code.name) or code.name.upper()


# Error codes whose Java exception is not the CamelCase name plus "Exception".
JAVA_EXCEPTION_NAMES = {
    "non_empty_group": "GroupNotEmptyException",
    "group_authorization_failed": "GroupAuthorizationException",
    "topic_authorization_failed": "TopicAuthorizationException",
    "kafka_storage_error": "KafkaStorageException",
    "unknown_server_error": "UnknownServerException",
    "policy_violation": "PolicyViolationException",
    "request_timed_out": "TimeoutException",
}


def java_exception_text(code_name: str, message: str) -> str:
    """``Throwable.toString()`` of the exception Kafka's client raises for an error code."""
    name = JAVA_EXCEPTION_NAMES.get(code_name) or "".join(w.capitalize() for w in code_name.split("_")) + "Exception"
    return f"org.apache.kafka.common.errors.{name}: {message}"


def check(code_value: int, message: str | None = None) -> None:
    code = error_code(code_value)
    if code != ErrorCode.none:
        raise KafkaApiError(code, message)


# --- building requests of any version -------------------------------------------------------


def build(api_key: int, version: int, class_name: str | None = None, **values: Any) -> Any:
    """An instance of the request class (or of the nested ``class_name``) for ``version``,
    given every field any version might have; fields this version lacks are dropped."""
    cls = request_class(api_key, version)
    if class_name is not None:
        cls = getattr(sys.modules[cls.__module__], class_name)
    names = {field.name for field in fields(cls)}
    return cls(**{name: value for name, value in values.items() if name in names})


def milliseconds(value_ms: int) -> datetime.timedelta:
    return datetime.timedelta(milliseconds=value_ms)


def topic_id_text(topic_id: uuid.UUID | None) -> str | None:
    """Kafka prints a topic id as URL-safe base64 of its 16 bytes, without padding."""
    if topic_id is None or topic_id.int == 0:
        return None
    return uuid_to_text(topic_id)


# --- topics ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    elr: tuple[int, ...] | None = None
    last_known_elr: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    topic_id: uuid.UUID | None
    is_internal: bool
    partitions: tuple[PartitionInfo, ...]


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    name: str
    value: str | None
    source: int

    @property
    def is_default(self) -> bool:
        return self.source == CONFIG_SOURCE_DEFAULT


def _partition_info(partition: Any) -> PartitionInfo:
    elr = getattr(partition, "eligible_leader_replicas", None)
    last_known = getattr(partition, "last_known_elr", None)
    return PartitionInfo(
        partition=partition.partition_index,
        leader=partition.leader_id,
        replicas=tuple(partition.replica_nodes),
        isr=tuple(partition.isr_nodes),
        elr=None if elr is None else tuple(elr),
        last_known_elr=None if last_known is None else tuple(last_known),
    )


def topic_infos(metadata: Any) -> dict[str, TopicInfo]:
    """Topics of a Metadata response that exist (an unknown name comes back with an error)."""
    result = {}
    for topic in metadata.topics:
        if error_code(topic.error_code) in (ErrorCode.unknown_topic_or_partition, ErrorCode.invalid_topic_exception):
            continue
        partitions = tuple(sorted((_partition_info(p) for p in topic.partitions), key=lambda p: p.partition))
        result[topic.name] = TopicInfo(topic.name, topic.topic_id, topic.is_internal, partitions)
    return result


def is_internal(name: str) -> bool:
    return name in INTERNAL_TOPICS


async def list_topics(client: Client) -> dict[str, TopicInfo]:
    return topic_infos(await client.metadata(None))


async def describe_topics(client: Client, names: list[str]) -> list[TopicInfo]:
    """Full descriptions, through DescribeTopicPartitions (which carries the ELR) when the broker
    has it, else through Metadata, as Kafka's Admin falls back."""
    if not names:
        return []
    connection = await client.any_connection()
    if DESCRIBE_TOPIC_PARTITIONS in connection.api_versions:
        return await _describe_topic_partitions(connection, names)
    infos = topic_infos(await client.metadata(names))
    missing = [name for name in names if name not in infos]
    if missing:
        raise KafkaApiError(ErrorCode.unknown_topic_or_partition)
    return [infos[name] for name in names]


async def _describe_topic_partitions(connection: Connection, names: list[str]) -> list[TopicInfo]:
    version = connection.version_for(DESCRIBE_TOPIC_PARTITIONS, 0)
    topics: dict[str, TopicInfo] = {}
    cursor = None
    for _ in range(DESCRIBE_PAGES_MAX):
        request = build(
            DESCRIBE_TOPIC_PARTITIONS, version,
            topics=tuple(build(DESCRIBE_TOPIC_PARTITIONS, version, "TopicRequest", name=n) for n in names),
            response_partition_limit=DESCRIBE_PARTITION_LIMIT,
            cursor=cursor,
        )
        response = await connection.request(request)
        for topic in response.topics:
            check(topic.error_code)
            partitions = [_with_lists(_partition_info(p)) for p in topic.partitions]
            previous = topics.get(topic.name)
            if previous is not None:
                partitions = list(previous.partitions) + partitions
            partitions.sort(key=lambda p: p.partition)
            topics[topic.name] = TopicInfo(topic.name, topic.topic_id, topic.is_internal, tuple(partitions))
        if response.next_cursor is None:
            break
        cursor = build(
            DESCRIBE_TOPIC_PARTITIONS, version, "Cursor",
            topic_name=response.next_cursor.topic_name,
            partition_index=response.next_cursor.partition_index,
        )
    return [topics[name] for name in names if name in topics]


def _with_lists(info: PartitionInfo) -> PartitionInfo:
    """DescribeTopicPartitions always yields ELR lists (empty when the broker sent none)."""
    return PartitionInfo(
        info.partition, info.leader, info.replicas, info.isr,
        info.elr or (), info.last_known_elr or (),
    )


async def describe_topic_configs(client: Client, names: Iterable[str]) -> dict[str, list[ConfigEntry]]:
    names = list(names)
    if not names:
        return {}
    connection = await client.any_connection()
    version = connection.version_for(DESCRIBE_CONFIGS, 4, 1)
    request = build(
        DESCRIBE_CONFIGS, version,
        resources=tuple(
            build(DESCRIBE_CONFIGS, version, "DescribeConfigsResource",
                  resource_type=RESOURCE_TYPE_TOPIC, resource_name=name, configuration_keys=None)
            for name in names
        ),
        include_synonyms=False,
        include_documentation=False,
    )
    response = await connection.request(request)
    result = {}
    for resource in response.results:
        check(resource.error_code, resource.error_message)
        result[resource.resource_name] = [
            ConfigEntry(entry.name, entry.value, entry.config_source) for entry in resource.configs
        ]
    return result


async def create_topic(
    client: Client,
    name: str,
    partitions: int | None,
    replication_factor: int | None,
    configs: dict[str, str],
) -> None:
    connection = await client.any_connection()
    needs_defaults = partitions is None or replication_factor is None
    version = connection.version_for(CREATE_TOPICS, 7, 4 if needs_defaults else 2)
    topic = build(
        CREATE_TOPICS, version, "CreatableTopic",
        name=name,
        num_partitions=-1 if partitions is None else partitions,
        replication_factor=-1 if replication_factor is None else replication_factor,
        assignments=(),
        configs=tuple(
            build(CREATE_TOPICS, version, "CreatableTopicConfig", name=key, value=value)
            for key, value in configs.items()
        ),
    )
    request = build(
        CREATE_TOPICS, version, topics=(topic,), timeout=milliseconds(ADMIN_TIMEOUT_MS), validate_only=False
    )
    response = await connection.request(request)
    for result in response.topics:
        message = getattr(result, "error_message", None)
        if error_code(result.error_code) == ErrorCode.topic_already_exists and not message:
            message = f"Topic '{name}' already exists."
        check(result.error_code, message)


async def delete_topics(client: Client, names: list[str]) -> None:
    connection = await client.any_connection()
    version = connection.version_for(DELETE_TOPICS, 6, 1)
    request = build(
        DELETE_TOPICS, version,
        topics=tuple(build(DELETE_TOPICS, version, "DeleteTopicState", name=n, topic_id=uuid.UUID(int=0)) for n in names),
        topic_names=tuple(names),
        timeout=milliseconds(ADMIN_TIMEOUT_MS),
    )
    response = await connection.request(request)
    for result in response.responses:
        check(result.error_code, getattr(result, "error_message", None))


async def create_partitions(client: Client, names: list[str], count: int) -> None:
    connection = await client.any_connection()
    version = connection.version_for(CREATE_PARTITIONS, 3, 0)
    request = build(
        CREATE_PARTITIONS, version,
        topics=tuple(
            build(CREATE_PARTITIONS, version, "CreatePartitionsTopic", name=n, count=count, assignments=None)
            for n in names
        ),
        timeout=milliseconds(ADMIN_TIMEOUT_MS),
        validate_only=False,
    )
    response = await connection.request(request)
    for result in response.results:
        check(result.error_code, result.error_message)


# --- offsets --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OffsetResult:
    offset: int
    timestamp: int
    error: ErrorCode


async def list_offsets(
    client: Client,
    leaders: dict[tuple[str, int], int],
    timestamp: int,
    *,
    isolation_level: int = 0,
    lowest_version: int = 1,
) -> dict[tuple[str, int], OffsetResult]:
    """ListOffsets for each (topic, partition) at its leader; ``timestamp`` may be -1 (latest),
    -2 (earliest), -3 (max timestamp, needs v7) or a time in milliseconds."""
    by_leader: dict[int, list[tuple[str, int]]] = {}
    for topic_partition, leader in leaders.items():
        by_leader.setdefault(leader, []).append(topic_partition)
    results: dict[tuple[str, int], OffsetResult] = {}
    for leader, topic_partitions in by_leader.items():
        if leader < 0:
            for topic_partition in topic_partitions:
                results[topic_partition] = OffsetResult(-1, -1, ErrorCode.leader_not_available)
            continue
        connection = await client.connection_to(leader)
        version = connection.version_for(LIST_OFFSETS, max(7, lowest_version), lowest_version)
        response = await connection.request(_list_offsets_request(version, topic_partitions, timestamp, isolation_level))
        for topic in response.topics:
            for partition in topic.partitions:
                results[(topic.name, partition.partition_index)] = OffsetResult(
                    partition.offset, partition.timestamp, error_code(partition.error_code)
                )
    return results


def _list_offsets_request(version: int, topic_partitions: list[tuple[str, int]], timestamp: int, isolation_level: int) -> Any:
    by_topic: dict[str, list[int]] = {}
    for topic, partition in topic_partitions:
        by_topic.setdefault(topic, []).append(partition)
    return build(
        LIST_OFFSETS, version,
        replica_id=-1,
        isolation_level=isolation_level,
        topics=tuple(
            build(LIST_OFFSETS, version, "ListOffsetsTopic", name=topic, partitions=tuple(
                build(LIST_OFFSETS, version, "ListOffsetsPartition",
                      partition_index=p, current_leader_epoch=-1, timestamp=timestamp)
                for p in partitions
            ))
            for topic, partitions in by_topic.items()
        ),
    )
