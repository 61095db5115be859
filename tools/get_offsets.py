"""kafka-get-offsets: print ``topic:partition:offset`` for the matching partitions.

As Apache Kafka 4.x's GetOffsetShell: ``--topic`` is a regular expression (all topics when
absent), ``--partitions`` a comma-separated id list, ``--topic-partitions`` a list of
``topic-regex:partition-spec`` rules; ``--time`` is -1/latest (default), -2/earliest,
-3/max-timestamp, -4/earliest-local, -5/latest-tiered or a timestamp in milliseconds. Lines are
sorted as Kafka sorts ``topic-partition`` strings, and partitions without an offset for the
time (offset -1) are left out.
"""

from __future__ import annotations

import re
import sys
from argparse import Namespace
from dataclasses import dataclass

from tools.common import KafkaArgumentParser, PlainError, ToolError, client_properties, run_command, run_trio

NAMED_TIMES = {"latest": -1, "earliest": -2, "max-timestamp": -3, "earliest-local": -4, "latest-tiered": -5}
# ListOffsets versions that introduced each special timestamp.
LOWEST_VERSION_FOR_TIME = {-3: 7, -4: 8, -5: 9}
RULE_PATTERN = re.compile(r"([^:,]*)(?::(?:([0-9]*)|(?:([0-9]*)-([0-9]*))))?")
PARTITION_MAX = 2**31 - 1


def build_parser() -> KafkaArgumentParser:
    parser = KafkaArgumentParser("kafka-get-offsets", "An interactive shell for getting topic-partition offsets.")
    parser.add_argument("--bootstrap-server", help="REQUIRED. The server(s) to connect to in the form HOST1:PORT1,HOST2:PORT2.")
    parser.add_argument("--topic-partitions", help="Comma separated list of topic-partition patterns, e.g. "
                        "topic1:1,topic2:0-3,topic3,topic4:5-,topic5:-3")
    parser.add_argument("--topic", help="The topic to get the offsets for. It also accepts a regular expression.")
    parser.add_argument("--partitions", help="Comma separated list of partition ids to get the offsets for.")
    parser.add_argument("--time", default="latest", help="timestamp of the offsets before that: <timestamp> / -1 or "
                        "latest / -2 or earliest / -3 or max-timestamp / -4 or earliest-local / -5 or latest-tiered")
    parser.add_argument("--command-config", help="Property file containing configs to be passed to Admin Client.")
    parser.add_argument("--exclude-internal-topics", action="store_true",
                        help="By default, internal topics are included. If specified, internal topics are excluded.")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), execute, argv, error_prefix="Error occurred: ")


@dataclass(frozen=True, slots=True)
class Rule:
    """One topic-partition filter: a whole-name topic regex and a partition range [low, high)."""

    topic: re.Pattern[str]
    low: int = 0
    high: int = PARTITION_MAX
    ids: frozenset[int] | None = None

    def allows_topic(self, topic: str) -> bool:
        return self.topic.fullmatch(topic) is not None

    def allows(self, topic: str, partition: int) -> bool:
        if not self.allows_topic(topic):
            return False
        if self.ids is not None:
            return not self.ids or partition in self.ids
        return self.low <= partition < self.high


def parse_time(text: str) -> int:
    if text in NAMED_TIMES:
        return NAMED_TIMES[text]
    try:
        return int(text)
    except ValueError:
        raise ToolError(f"Malformed time argument {text}. Please use -1 or latest / -2 or earliest / -3 or "
                        "max-timestamp / -4 or earliest-local / -5 or latest-tiered, or a specified long format "
                        "timestamp") from None


def parse_rules(args: Namespace) -> list[Rule]:
    from tools.topics import topic_filter

    if args.topic_partitions is not None:
        if args.topic is not None or args.partitions is not None:
            raise ToolError("--topic-partitions cannot be used with --topic or --partitions")
        return [_parse_rule(spec, topic_filter) for spec in args.topic_partitions.split(",")]
    ids: frozenset[int] = frozenset()
    if args.partitions:
        try:
            ids = frozenset(int(p) for p in args.partitions.split(","))
        except ValueError:
            raise ToolError("--partitions expects a comma separated list of numeric partition ids, but received: "
                            f"{args.partitions}") from None
    return [Rule(topic_filter(args.topic if args.topic is not None else ".*"), ids=ids)]


def _parse_rule(spec: str, topic_filter: object) -> Rule:
    match = RULE_PATTERN.fullmatch(spec)
    if match is None:
        raise ToolError(f"Invalid rule specification: {spec}")
    topic, single, low, high = (group or None for group in match.groups())
    pattern = topic_filter(topic or ".*")  # type: ignore[operator]
    if single is not None:
        return Rule(pattern, int(single), int(single) + 1)
    return Rule(pattern, int(low) if low else 0, int(high) if high else PARTITION_MAX)


def execute(args: Namespace) -> int:
    if not args.bootstrap_server:
        raise PlainError('Missing required argument "[bootstrap-server]"')
    timestamp = parse_time(args.time)
    rules = parse_rules(args)
    properties = client_properties(args.command_config)
    offsets = run_trio(fetch_offsets, args, rules, timestamp, properties.get("client.id", "GetOffsetShell"))
    for (topic, partition), offset in sorted(offsets.items(), key=lambda item: f"{item[0][0]}-{item[0][1]}"):
        print(f"{topic}:{partition}:{offset}")
    return 0


async def fetch_offsets(args: Namespace, rules: list[Rule], timestamp: int, client_id: str) -> dict[tuple[str, int], int]:
    from protocol.client import Client
    from tools import admin

    async with Client(args.bootstrap_server, client_id=client_id) as client:
        topics = await admin.list_topics(client)
        leaders = {
            (name, partition.partition): partition.leader
            for name, info in topics.items()
            if not (args.exclude_internal_topics and (info.is_internal or admin.is_internal(name)))
            for partition in info.partitions
            if any(rule.allows(name, partition.partition) for rule in rules)
        }
        if not leaders:
            raise ToolError("Could not match any topic-partitions with the specified filters")
        lowest = LOWEST_VERSION_FOR_TIME.get(timestamp, 1)
        results = await admin.list_offsets(client, leaders, timestamp, lowest_version=lowest)
    offsets = {}
    for topic_partition, result in results.items():
        if result.error != admin.ErrorCode.none:
            topic, partition = topic_partition
            print(f"Skip getting offsets for topic-partition {topic}-{partition} due to error: "
                  f"{admin.default_message(result.error)}", file=sys.stderr)
        elif result.offset != -1:
            offsets[topic_partition] = result.offset
    return offsets


if __name__ == "__main__":
    sys.exit(main())
