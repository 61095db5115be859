"""kafka-console-consumer: print the records of a topic to stdout.

Without ``--group`` every partition of the topic (or the one ``--partition``) is assigned
directly, starting at the end (or the beginning with ``--from-beginning``), which is where
Kafka's console consumer starts in its throw-away group. With ``--group`` (or ``group.id``)
it joins that consumer group (``tools.group_member``), resumes from the group's committed
offsets (``auto.offset.reset`` where there are none), and with ``enable.auto.commit`` (the
default) commits what it has printed every ``auto.commit.interval.ms`` and before it leaves.
Validation messages, the ``--property``/``--formatter-property`` names and the output follow
Apache Kafka 4.x's ConsoleConsumer and DefaultMessageFormatter; at exit it prints
``Processed a total of N messages`` on stderr.
"""

from __future__ import annotations

import sys
from argparse import Namespace
from typing import Any, BinaryIO

from tools.common import (
    KafkaArgumentParser,
    PlainError,
    UsageError,
    integer,
    load_properties,
    parse_key_values,
    run_command,
    run_trio,
)
from tools.messages import ISOLATION_LEVELS, write_records

DEFAULT_FORMATTER = "org.apache.kafka.tools.consumer.DefaultMessageFormatter"
EARLIEST, LATEST = -2, -1


def build_parser() -> KafkaArgumentParser:
    parser = KafkaArgumentParser("kafka-console-consumer",
                                 "This tool helps to read data from Kafka topics and outputs it to standard output.")
    parser.add_argument("--bootstrap-server", help="REQUIRED: The server(s) to connect to.")
    parser.add_argument("--topic", help="The topic to consume from.")
    parser.add_argument("--include", help="Regular expression of topics to include (not supported yet).")
    parser.add_argument("--partition", type=integer, help="The partition to consume from.")
    parser.add_argument("--offset", help="The offset to consume from: a non-negative number, 'earliest' or 'latest'.")
    parser.add_argument("--from-beginning", action="store_true",
                        help="Start with the earliest message present in the log rather than the latest.")
    parser.add_argument("--max-messages", type=integer, help="The maximum number of messages to consume.")
    parser.add_argument("--timeout-ms", type=integer, help="Exit if no message is available for this long.")
    parser.add_argument("--property", action="append", default=[], metavar="prop",
                        help="Formatter properties: print.key, print.timestamp, key.separator, ...")
    parser.add_argument("--formatter-property", action="append", default=[], metavar="prop")
    parser.add_argument("--formatter-config", help="Config properties file for the message formatter.")
    parser.add_argument("--formatter", default=DEFAULT_FORMATTER)
    parser.add_argument("--isolation-level", default="read_uncommitted",
                        help="read_committed or read_uncommitted (default).")
    parser.add_argument("--group", help="The consumer group id of the consumer.")
    parser.add_argument("--consumer-property", "--command-property", action="append", default=[],
                        dest="consumer_property", metavar="consumer_prop")
    parser.add_argument("--consumer.config", "--command-config", dest="consumer_config")
    parser.add_argument("--skip-message-on-error", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), execute, argv)


def parse_offset(args: Namespace) -> int:
    """Where to start: EARLIEST, LATEST or an offset, with Kafka's argument checks."""
    if args.partition is not None:
        if args.from_beginning and args.offset is not None:
            raise UsageError("Options from-beginning and offset cannot be specified together.")
    elif args.offset is not None:
        raise UsageError("The partition is required when offset is specified.")
    if args.offset is None:
        return EARLIEST if args.from_beginning else LATEST
    text = args.offset.lower()
    if text in ("earliest", "latest"):
        return EARLIEST if text == "earliest" else LATEST
    try:
        offset = int(args.offset)
    except ValueError:
        offset = -1
    if offset < 0:
        raise UsageError(f"The provided offset value '{args.offset}' is incorrect. Valid values are "
                         "'earliest', 'latest', or a non-negative long.")
    return offset


def check_arguments(args: Namespace, consumer_properties: dict[str, str]) -> None:
    if args.include is not None:
        raise PlainError("--include needs consumer groups, which kraft's console consumer does not support yet")
    if not args.topic:
        raise UsageError("Exactly one of --include/--topic is required.")
    if not args.bootstrap_server:
        raise UsageError('Missing required argument "[bootstrap-server]"')
    group_ids = list(dict.fromkeys(g for g in (args.group, consumer_properties.get("group.id")) if g is not None))
    if len(group_ids) > 1:
        raise UsageError("The group ids provided in different places (directly using '--group', via "
                         "'--consumer-property', or via '--consumer.config') do not match. Detected group ids: "
                         + ", ".join(f"'{g}'" for g in group_ids))
    if group_ids and args.partition is not None:
        raise UsageError("Options group and partition cannot be specified together.")
    reset = consumer_properties.get("auto.offset.reset")
    if args.from_beginning and reset is not None and reset != "earliest":
        raise UsageError(f"Can't simultaneously specify --from-beginning and 'auto.offset.reset={reset}', "
                         "please remove one option")
    if args.formatter != DEFAULT_FORMATTER:
        raise PlainError(f"kraft's console consumer has only {DEFAULT_FORMATTER}, not {args.formatter}")
    if args.isolation_level not in ISOLATION_LEVELS:
        raise PlainError(f"Invalid value {args.isolation_level} for configuration isolation.level: "
                         "String must be one of: read_committed, read_uncommitted")


def formatter_properties(args: Namespace) -> dict[str, str]:
    if args.property and args.formatter_property:
        raise UsageError("Options --property and --formatter-property cannot be specified together.")
    properties = load_properties(args.formatter_config) if args.formatter_config else {}
    properties.update(parse_key_values(args.property or args.formatter_property))
    return properties


def execute(args: Namespace) -> int:
    consumer_properties = load_properties(args.consumer_config) if args.consumer_config else {}
    consumer_properties.update(parse_key_values(args.consumer_property))
    check_arguments(args, consumer_properties)
    start = parse_offset(args)
    from tools.messages import DefaultMessageFormatter

    formatter = DefaultMessageFormatter(formatter_properties(args))
    reset = EARLIEST if args.from_beginning or consumer_properties.get("auto.offset.reset") == "earliest" else LATEST
    counter = [0]
    group_id = args.group or consumer_properties.get("group.id")
    try:
        if group_id:
            from tools.group_consumer import consume_group

            run_trio(consume_group, args, group_id, reset, consumer_properties, formatter, sys.stdout.buffer, counter)
        else:
            run_trio(consume, args, start, reset, consumer_properties, formatter, sys.stdout.buffer, counter)
    except KeyboardInterrupt:
        # Ctrl-C is how an endless consumer ends: report the count, as Kafka's shutdown hook does.
        _report_total(counter)
        raise
    except BaseException:
        # A failure reports itself in one line (tools.common); a count of 0 would only add noise.
        if counter[0]:
            _report_total(counter)
        raise
    _report_total(counter)
    return 0


def _report_total(counter: list[int]) -> None:
    print(f"Processed a total of {counter[0]} messages", file=sys.stderr)


async def consume(args: Namespace, start: int, reset: int, properties: dict[str, str], formatter: Any,
                  output: BinaryIO, counter: list[int]) -> None:
    import trio

    from protocol.client import Client
    from tools.consumer import AssignedConsumer, FetchSettings

    settings = FetchSettings(isolation_level=ISOLATION_LEVELS[args.isolation_level])
    partitions = None if args.partition is None else [args.partition]
    timeout_s = float("inf") if args.timeout_ms is None or args.timeout_ms < 0 else args.timeout_ms / 1000
    limit = args.max_messages if args.max_messages is not None and args.max_messages >= 0 else None
    async with Client(args.bootstrap_server, client_id=properties.get("client.id", "console-consumer")) as client:
        consumer = AssignedConsumer(client, args.topic, partitions, start, reset, settings)
        deadline = trio.current_time() + timeout_s
        with trio.move_on_at(deadline):
            await consumer.start()
        while limit is None or counter[0] < limit:
            if trio.current_time() >= deadline:
                print("ERROR Error processing message, terminating consumer process: TimeoutException",
                      file=sys.stderr)
                return
            with trio.move_on_at(deadline):
                records = await consumer.poll()
            if records:
                deadline = trio.current_time() + timeout_s
            if not write_records(records, formatter, output, counter, limit):
                return


if __name__ == "__main__":
    sys.exit(main())
