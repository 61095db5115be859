"""kafka-delete-records: move partitions' log start offsets up (DeleteRecords), as Apache Kafka
4.x's DeleteRecordsCommand.

Input is Kafka's JSON, ``{"partitions": [{"topic": "t", "partition": 0, "offset": 3}],
"version": 1}`` (a missing version means 1; offset -1 means the high watermark). Output is
Kafka's: ``Executing records delete operation``, ``Records delete operation completed:``, then
per partition ``partition: t-0\\tlow_watermark: 3`` or ``partition: t-0\\terror: <exception>``,
in the order Java's HashMap of TopicPartition iterates them.
"""

from __future__ import annotations

import json
import sys
from argparse import Namespace
from typing import Any

from tools.common import KafkaArgumentParser, PlainError, ToolError, client_properties, run_command, run_trio

DELETE_RECORDS = 21
SUPPORTED_VERSION = 1
TopicPartition = tuple[str, int]


def build_parser() -> KafkaArgumentParser:
    parser = KafkaArgumentParser(
        "kafka-delete-records",
        "This tool helps to delete records of the given partitions down to the specified offset.")
    parser.add_argument("--bootstrap-server", help="REQUIRED: The server to connect to.")
    parser.add_argument("--offset-json-file", help="REQUIRED: The JSON file with offset per partition. The format "
                        'to use is:\n{"partitions":\n  [{"topic": "foo", "partition": 1, "offset": 1}],\n "version":1\n}')
    parser.add_argument("--command-config", help="A property file containing configs to be passed to Admin Client.")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), execute, argv, error_prefix="Error: ")


def parse_offsets(text: str) -> list[tuple[TopicPartition, int]]:
    """Kafka's parseOffsetJsonStringWithoutDedup: the entries in file order."""
    try:
        document = json.loads(text)
    except ValueError:
        raise ToolError("The input string is not a valid JSON") from None
    if not isinstance(document, dict):
        raise ToolError("The input string is not a valid JSON object")
    version = document.get("version", SUPPORTED_VERSION)
    if version != SUPPORTED_VERSION:
        raise ToolError(f"Not supported version field value {version}")
    partitions = document.get("partitions")
    if partitions is None:
        raise ToolError("Missing partitions field")
    if not isinstance(partitions, list):
        raise ToolError("Expected JSON array for the partitions field")
    entries = []
    for item in partitions:
        try:
            topic, partition, offset = item["topic"], item["partition"], item["offset"]
        except (KeyError, TypeError) as error:
            raise ToolError(f"No such field exists: {error}") from None
        if not isinstance(topic, str) or not _is_int(partition) or not _is_int(offset):
            raise ToolError(f"Invalid entry {json.dumps(item)}: topic must be a string, partition and offset numbers")
        entries.append(((topic, partition), offset))
    return entries


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def execute(args: Namespace) -> int:
    if not args.bootstrap_server or not args.offset_json_file:
        missing = "bootstrap-server" if not args.bootstrap_server else "offset-json-file"
        raise PlainError(f"Missing required argument \"[{missing}]\"")
    try:
        with open(args.offset_json_file, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise ToolError(f"{args.offset_json_file} ({error.strerror})") from None
    entries = parse_offsets(text)
    seen: set[TopicPartition] = set()
    duplicates = [tp for tp, _ in entries if tp in seen or seen.add(tp)]
    if duplicates:
        raise ToolError("Offset json file contains duplicate topic partitions: "
                        + ",".join(f"{topic}-{partition}" for topic, partition in dict.fromkeys(duplicates)))
    properties = client_properties(args.command_config)
    results = run_trio(delete_records, args.bootstrap_server, dict(entries),
                       properties.get("client.id", "adminclient-1"))
    print("Records delete operation completed:")
    for topic_partition in java_topic_partition_order(list(results)):
        topic, partition = topic_partition
        print(f"partition: {topic}-{partition}\t{results[topic_partition]}")
    return 0


async def delete_records(bootstrap: str, offsets: dict[TopicPartition, int], client_id: str) -> dict[TopicPartition, str]:
    """DeleteRecords at each partition's leader; per partition ``low_watermark: N`` or
    ``error: <Java exception>: <message>``."""
    from protocol.client import Client
    from tools import admin

    results: dict[TopicPartition, str] = {}
    async with Client(bootstrap, client_id=client_id) as client:
        metadata = await client.metadata(sorted({topic for topic, _ in offsets}))
        # Kafka prints this before it asks; here it waits until the cluster answers, so an
        # unreachable server is reported in one line.
        print("Executing records delete operation", flush=True)
        topics = admin.topic_infos(metadata)
        by_leader: dict[int, list[TopicPartition]] = {}
        for topic_partition in offsets:
            topic, partition = topic_partition
            info = topics.get(topic)
            leaders = {p.partition: p.leader for p in info.partitions} if info else {}
            if partition not in leaders:
                results[topic_partition] = _error(admin.ErrorCode.unknown_topic_or_partition, None)
            elif leaders[partition] < 0:
                results[topic_partition] = _error(admin.ErrorCode.leader_not_available, None)
            else:
                by_leader.setdefault(leaders[partition], []).append(topic_partition)
        for leader, topic_partitions in by_leader.items():
            connection = await client.connection_to(leader)
            response = await connection.request(_request(connection, {tp: offsets[tp] for tp in topic_partitions}))
            for topic in response.topics:
                for item in topic.partitions:
                    code = admin.error_code(item.error_code)
                    results[(topic.name, item.partition_index)] = (
                        f"low_watermark: {item.low_watermark}" if code == admin.ErrorCode.none else _error(code, None))
    return results


def _request(connection: Any, offsets: dict[TopicPartition, int]) -> Any:
    from tools import admin

    version = connection.version_for(DELETE_RECORDS, 2, 0)
    by_topic: dict[str, list[tuple[int, int]]] = {}
    for (topic, partition), offset in offsets.items():
        by_topic.setdefault(topic, []).append((partition, offset))
    topics = tuple(
        admin.build(DELETE_RECORDS, version, "DeleteRecordsTopic", name=topic, partitions=tuple(
            admin.build(DELETE_RECORDS, version, "DeleteRecordsPartition", partition_index=partition, offset=offset)
            for partition, offset in partitions))
        for topic, partitions in by_topic.items())
    return admin.build(DELETE_RECORDS, version, topics=topics, timeout=admin.milliseconds(admin.ADMIN_TIMEOUT_MS))


def _error(code: Any, message: str | None) -> str:
    from tools import admin

    return f"error: {admin.java_exception_text(code.name, message or admin.default_message(code))}"


def java_topic_partition_order(keys: list[TopicPartition]) -> list[TopicPartition]:
    """Iteration order of a default-capacity ``HashMap<TopicPartition, ?>`` filled with ``keys``:
    ``TopicPartition.hashCode`` is ``31 * (31 + partition) + topic.hashCode()`` (32-bit)."""
    from tools.topics import java_string_hash

    capacity = 16
    while len(keys) > int(capacity * 0.75):
        capacity *= 2

    def bucket(key: TopicPartition) -> int:
        topic, partition = key
        value = (31 * (31 + partition) + java_string_hash(topic)) & 0xFFFFFFFF
        return (value ^ (value >> 16)) & (capacity - 1)

    return sorted(keys, key=bucket)


if __name__ == "__main__":
    sys.exit(main())
