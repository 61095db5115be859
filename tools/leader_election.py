"""kafka-leader-election: elect preferred or unclean leaders (ElectLeaders), as Apache Kafka 4.x's
LeaderElectionCommand.

Exactly one of ``--all-topic-partitions``, ``--topic`` (with ``--partition``) or
``--path-to-json-file`` (Kafka's ``{"partitions": [{"topic": "t", "partition": 0}]}``). Output
is Kafka's: ``Successfully completed leader election (PREFERRED) for partitions t-0, t-1``,
``Valid replica already elected for partitions ...``, and per failure ``Error completing leader
election (PREFERRED) for partition: t-0: <exception>: <message>``, after which the command exits
1 with ``N replica(s) could not be elected``. Partition lists follow Java's HashSet order.
"""

from __future__ import annotations

import json
import sys
from argparse import Namespace

from tools.common import KafkaArgumentParser, PlainError, ToolError, client_properties, run_command, run_trio
from tools.delete_records import java_topic_partition_order

ELECT_LEADERS = 43
ELECTION_TYPES = {"PREFERRED": 0, "UNCLEAN": 1}
TopicPartition = tuple[str, int]


def build_parser() -> KafkaArgumentParser:
    parser = KafkaArgumentParser("kafka-leader-election",
                                 "This tool attempts to elect a new leader for a set of topic partitions.")
    parser.add_argument("--bootstrap-server", help="A hostname and port for the broker to connect to.")
    parser.add_argument("--election-type", help="Type of election to attempt. Possible values are \"preferred\" "
                        "for preferred leader election or \"unclean\" for unclean leader election.")
    parser.add_argument("--all-topic-partitions", action="store_true",
                        help="Perform election on all of the eligible topic partitions.")
    parser.add_argument("--topic", help="Name of topic for which to perform an election.")
    parser.add_argument("--partition", type=int, help="Partition id for which to perform an election.")
    parser.add_argument("--path-to-json-file", help="The JSON file with the list of partition for which leader "
                        "elections should be performed.")
    parser.add_argument("--command-config", help="Config properties file to pass to the admin client.")
    parser.add_argument("--admin.config", dest="admin_config", help="Deprecated: use --command-config.")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), execute, argv, error_prefix="Error: ")


def parse_partitions(text: str) -> list[TopicPartition]:
    try:
        document = json.loads(text)
        partitions = [(item["topic"], int(item["partition"])) for item in document["partitions"]]
    except (ValueError, KeyError, TypeError):
        raise ToolError("Replica election data is empty or not in the expected format") from None
    duplicates = {tp for tp in partitions if partitions.count(tp) > 1}
    if duplicates:
        raise ToolError("Replica election data contains duplicate partitions: "
                        + ",".join(f"{t}-{p}" for t, p in sorted(duplicates)))
    return partitions


def selected_partitions(args: Namespace) -> list[TopicPartition] | None:
    chosen = [bool(args.all_topic_partitions), args.topic is not None, args.path_to_json_file is not None]
    if sum(chosen) != 1:
        raise PlainError("One and only one of the following options is required: all-topic-partitions, topic, "
                         "path-to-json-file")
    if args.partition is not None and args.topic is None:
        raise PlainError("Option partition is only allowed if topic is used")
    if args.all_topic_partitions:
        return None
    if args.topic is not None:
        if args.partition is None:
            raise PlainError("Missing required option(s): partition")
        return [(args.topic, args.partition)]
    try:
        with open(args.path_to_json_file, encoding="utf-8") as handle:
            return parse_partitions(handle.read())
    except OSError as error:
        raise ToolError(f"{args.path_to_json_file} ({error.strerror})") from None


def execute(args: Namespace) -> int:
    missing = [name for name, value in (("bootstrap-server", args.bootstrap_server),
                                        ("election-type", args.election_type)) if not value]
    if missing:
        raise PlainError(f"Missing required option(s): {', '.join(missing)}")
    election = args.election_type.upper()
    if election not in ELECTION_TYPES:
        raise PlainError(f"Unknown election type {args.election_type}: expected preferred or unclean")
    partitions = selected_partitions(args)
    properties = client_properties(args.command_config or args.admin_config)
    results = run_trio(elect, args.bootstrap_server, ELECTION_TYPES[election], partitions,
                       properties.get("client.id", "adminclient-1"))
    succeeded = [tp for tp, (code, _) in results.items() if code == "none"]
    noop = [tp for tp, (code, _) in results.items() if code == "election_not_needed"]
    failed = {tp: outcome for tp, outcome in results.items() if outcome[0] not in ("none", "election_not_needed")}
    if succeeded:
        print(f"Successfully completed leader election ({election}) for partitions {_names(succeeded)}")
    if noop:
        print(f"Valid replica already elected for partitions {_names(noop)}")
    from tools import admin

    for (topic, partition), (code, message) in failed.items():
        print(f"Error completing leader election ({election}) for partition: {topic}-{partition}: "
              f"{admin.java_exception_text(code, message)}")
    if failed:
        raise PlainError(f"{len(failed)} replica(s) could not be elected")
    return 0


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{topic}-{partition}" for topic, partition in java_topic_partition_order(partitions))


async def elect(bootstrap: str, election_type: int, partitions: list[TopicPartition] | None,
                client_id: str) -> dict[TopicPartition, tuple[str, str]]:
    """ElectLeaders through any broker (it forwards to the active controller); per partition
    (error name, message)."""
    from protocol.client import Client
    from tools import admin

    async with Client(bootstrap, client_id=client_id) as client:
        connection = await client.any_connection()
        version = connection.version_for(ELECT_LEADERS, 2, 1)
        topic_partitions = None
        if partitions is not None:
            by_topic: dict[str, list[int]] = {}
            for topic, partition in partitions:
                by_topic.setdefault(topic, []).append(partition)
            topic_partitions = tuple(admin.build(ELECT_LEADERS, version, "TopicPartitions", topic=topic,
                                                 partitions=tuple(items)) for topic, items in by_topic.items())
        response = await connection.request(admin.build(
            ELECT_LEADERS, version, election_type=election_type, topic_partitions=topic_partitions,
            timeout=admin.milliseconds(admin.ADMIN_TIMEOUT_MS)))
    top = admin.error_code(response.error_code)
    if top != admin.ErrorCode.none:
        raise ToolError(admin.java_exception_text(top.name, admin.default_message(top)))
    results = {}
    for topic in response.replica_election_results:
        for item in topic.partition_result:
            code = admin.error_code(item.error_code)
            results[(topic.topic, item.partition_id)] = (code.name, item.error_message or admin.default_message(code))
    return results


if __name__ == "__main__":
    sys.exit(main())
