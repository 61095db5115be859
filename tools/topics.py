"""kafka-topics: create, list, describe, alter (partitions) and delete topics.

Flags, output and errors follow Apache Kafka 4.x's TopicCommand: ``Created topic T.``; list
prints sorted names; describe prints a topic line and one line per partition; errors print
``Error while executing topic command : <message>`` on stdout and exit 1 (checked against
Kafka 4.1.1's TopicCommand run on the same cluster). ``--topic`` is a regular expression for
every action except ``--create``, matched against whole names as Java's ``String.matches``.

Where Kafka's output order comes from a Java HashMap (several topics in one describe, the
configs of a topic), we reproduce that iteration order, so scripts diffing the two agree.
"""

from __future__ import annotations

import re
import sys
from argparse import Namespace
from collections.abc import Callable
from typing import Any

from tools.common import (
    KafkaArgumentParser,
    PlainError,
    ToolError,
    UsageError,
    client_properties,
    integer,
    run_command,
    run_trio,
)

DEFAULT_CLIENT_ID = "kraft-topics"
ACTIONS = ("create", "list", "describe", "alter", "delete")
COLLISION_WARNING = (
    "WARNING: Due to limitations in metric names, topics with a period ('.') or underscore ('_')"
    " could collide. To avoid issues it is best to use either, but not both."
)


def build_parser() -> KafkaArgumentParser:
    parser = KafkaArgumentParser("kafka-topics", "This tool helps to create, delete, describe, or change a topic.")
    parser.add_argument("--bootstrap-server", help="REQUIRED: The Kafka server to connect to.")
    parser.add_argument("--command-config", help="Property file containing configs to be passed to Admin Client.")
    for action, text in (
        ("create", "Create a new topic."),
        ("list", "List all available topics."),
        ("describe", "List details for the given topics."),
        ("alter", "Alter the number of partitions."),
        ("delete", "Delete a topic."),
    ):
        parser.add_argument(f"--{action}", action="store_true", help=text)
    parser.add_argument("--topic", help="The topic to create, alter, describe or delete. It also accepts a "
                        "regular expression, except for --create option.")
    parser.add_argument("--partitions", type=integer, help="The number of partitions for the topic.")
    parser.add_argument("--replication-factor", type=integer, help="The replication factor for each partition.")
    parser.add_argument("--config", action="append", default=[], metavar="name=value",
                        help="A topic configuration override for the topic being created.")
    parser.add_argument("--if-exists", action="store_true",
                        help="If set when altering or deleting or describing topics, the action will only "
                        "execute if the topic exists.")
    parser.add_argument("--if-not-exists", action="store_true",
                        help="If set when creating topics, the action will only execute if the topic does not "
                        "already exist.")
    parser.add_argument("--exclude-internal", action="store_true",
                        help="Exclude internal topics when listing or describing topics.")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(
        build_parser(), execute, argv,
        error_prefix="Error while executing topic command : ", error_stream=sys.stdout,
    )


def execute(args: Namespace) -> int:
    check_arguments(args)
    properties = client_properties(args.command_config)
    run_trio(run, args, properties.get("client.id", DEFAULT_CLIENT_ID))
    return 0


def check_arguments(args: Namespace) -> None:
    actions = [action for action in ACTIONS if getattr(args, action)]
    if len(actions) != 1:
        raise UsageError("Command must include exactly one action: --list, --describe, --create, --alter or --delete")
    if not args.bootstrap_server:
        raise PlainError("--bootstrap-server must be specified")
    if (args.create or args.alter or args.delete) and not args.topic:
        raise UsageError('Missing required argument "[topic]"')
    if args.alter and args.partitions is None:
        raise UsageError('Missing required argument "[partitions]"')
    if args.alter and args.config:
        raise UsageError("Option \"[alter]\" can't be used with option \"[config]\" "
                         "(To alter topic configurations, the kafka-configs tool can be used.)")
    invalid = [
        ("config", args.config, ("create",)),
        ("partitions", args.partitions is not None, ("create", "alter")),
        ("replication-factor", args.replication_factor is not None, ("create",)),
        ("if-exists", args.if_exists, ("alter", "delete", "describe")),
        ("if-not-exists", args.if_not_exists, ("create",)),
        ("exclude-internal", args.exclude_internal, ("list", "describe")),
    ]
    for option, present, allowed in invalid:
        if present and not any(getattr(args, action) for action in allowed):
            used = next(action for action in ACTIONS if getattr(args, action))
            raise UsageError(f"Option \"[{option}]\" can't be used with option \"[{used}]\"")


async def run(args: Namespace, client_id: str) -> None:
    import trio

    from protocol.client import Client
    from tools import admin

    async with Client(args.bootstrap_server, client_id=client_id) as client:
        with trio.move_on_after(admin.ADMIN_TIMEOUT_MS / 1000) as scope:
            if args.create:
                await create(client, args)
            elif args.list:
                print("\n".join(await matching_topics(client, args.topic, args.exclude_internal)))
            elif args.describe:
                await describe(client, args)
            elif args.alter:
                topics = await existing_topics(client, args)
                if topics:
                    await admin.create_partitions(client, topics, args.partitions)
            elif args.delete:
                topics = await existing_topics(client, args)
                if topics:
                    await admin.delete_topics(client, topics)
        if scope.cancelled_caught:
            raise ToolError(f"Timed out waiting for the cluster at {args.bootstrap_server}")


def parse_topic_configs(items: list[str]) -> dict[str, str]:
    """``--config k=v`` as Kafka splits it: exactly one ``=``, whitespace around it ignored."""
    configs = {}
    for item in items:
        parts = re.split(r"\s*=\s*", item)
        if len(parts) != 2:
            raise ToolError('requirement failed: Invalid topic config: all configs to be added must be in '
                            'the format "key=val".')
        configs[parts[0].strip()] = parts[1].strip()
    return configs


async def create(client: Any, args: Namespace) -> None:
    from tools import admin

    configs = parse_topic_configs(args.config)
    if args.replication_factor is not None and not 1 <= args.replication_factor <= 32767:
        raise ToolError("The replication factor must be between 1 and 32767 inclusive")
    if args.partitions is not None and args.partitions < 1:
        raise ToolError("The partitions must be greater than 0")
    if "." in args.topic or "_" in args.topic:
        print(COLLISION_WARNING)
    try:
        await admin.create_topic(client, args.topic, args.partitions, args.replication_factor, configs)
    except admin.KafkaApiError as error:
        if error.code == admin.ErrorCode.topic_already_exists and args.if_not_exists:
            return
        raise
    print(f"Created topic {args.topic}.")


def topic_filter(pattern: str) -> re.Pattern[str]:
    """Kafka's IncludeList: commas mean alternatives, blanks and surrounding quotes are dropped."""
    regex = pattern.strip().replace(",", "|").replace(" ", "")
    regex = re.sub(r"^[\"']+", "", regex)
    regex = re.sub(r"[\"']+$", "", regex)
    try:
        return re.compile(regex)
    except re.error:
        raise ToolError(f"{regex} is an invalid regex.") from None


def select_topics(names: list[str], pattern: str | None, exclude_internal: bool, internal: set[str]) -> list[str]:
    matcher = topic_filter(pattern) if pattern is not None else None
    return [
        name for name in sorted(names)
        if (matcher is None or matcher.fullmatch(name)) and not (exclude_internal and name in internal)
    ]


async def matching_topics(client: Any, pattern: str | None, exclude_internal: bool) -> list[str]:
    from tools import admin

    topics = await admin.list_topics(client)
    internal = {name for name, info in topics.items() if info.is_internal or admin.is_internal(name)}
    return select_topics(list(topics), pattern, exclude_internal, internal)


async def existing_topics(client: Any, args: Namespace) -> list[str]:
    topics = await matching_topics(client, args.topic, args.exclude_internal)
    if args.topic and not topics and not args.if_exists:
        raise ToolError(f"Topic '{args.topic}' does not exist as expected")
    return topics


async def describe(client: Any, args: Namespace) -> None:
    from tools import admin

    names = await existing_topics(client, args)
    if not names:
        return
    descriptions = {info.name: info for info in await admin.describe_topics(client, names)}
    configs = await admin.describe_topic_configs(client, descriptions)
    for name in java_hash_map_order(list(descriptions), initial_capacity=len(descriptions)):
        info = descriptions[name]
        if not info.partitions:
            continue
        print(topic_line(info, configs.get(name, [])))
        for partition in info.partitions:
            print(partition_line(name, partition))


def topic_line(info: Any, configs: list[Any]) -> str:
    from tools.admin import topic_id_text

    ordered = {entry.name: entry for entry in configs}
    overrides = ",".join(
        f"{name}={ordered[name].value}" for name in java_hash_map_order(list(ordered))
        if not ordered[name].is_default
    )
    parts = [f"Topic: {info.name}"]
    topic_id = topic_id_text(info.topic_id)
    if topic_id is not None:
        parts.append(f"TopicId: {topic_id}")
    parts.append(f"PartitionCount: {len(info.partitions)}")
    parts.append(f"ReplicationFactor: {len(info.partitions[0].replicas)}")
    parts.append(f"Configs: {overrides}")
    return "\t".join(parts)


def partition_line(topic: str, partition: Any) -> str:
    def nodes(values: tuple[int, ...] | None) -> str:
        return "N/A" if values is None else ",".join(str(value) for value in values)

    leader = str(partition.leader) if partition.leader >= 0 else "none"
    return (
        f"\tTopic: {topic}\tPartition: {partition.partition}\tLeader: {leader}"
        f"\tReplicas: {nodes(partition.replicas)}\tIsr: {nodes(partition.isr)}"
        f"\tElr: {nodes(partition.elr)}\tLastKnownElr: {nodes(partition.last_known_elr)}"
    )


# --- Java HashMap iteration order -----------------------------------------------------------


def java_string_hash(text: str) -> int:
    """``String.hashCode`` over UTF-16 code units, as an unsigned 32-bit number."""
    value = 0
    data = text.encode("utf-16-be")
    for index in range(0, len(data), 2):
        value = (31 * value + int.from_bytes(data[index : index + 2], "big")) & 0xFFFFFFFF
    return value


def java_hash_map_order(
    keys: list[Any], initial_capacity: int | None = None, hash_of: Callable[[Any], int] | None = None
) -> list[Any]:
    """The order a ``java.util.HashMap`` filled with ``keys`` (in this order) iterates them.

    Keys are strings unless ``hash_of`` gives their ``hashCode`` (as an unsigned 32-bit number).

    Buckets are ``(h ^ (h >>> 16)) & (capacity - 1)``; within a bucket insertion order holds
    (resizing keeps it). Capacity starts at 16, or at the power of two >= ``initial_capacity``,
    and doubles whenever the size passes 3/4 of it. Tree bins (8+ keys in one bucket) are not
    modelled.
    """
    capacity = 16 if initial_capacity is None else 1 << max(0, initial_capacity - 1).bit_length()
    while len(keys) > int(capacity * 0.75):
        capacity *= 2

    def bucket(key: Any) -> int:
        value = (hash_of or java_string_hash)(key)
        return (value ^ (value >> 16)) & (capacity - 1)

    return sorted(keys, key=bucket)


if __name__ == "__main__":
    sys.exit(main())
