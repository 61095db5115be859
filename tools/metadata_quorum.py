"""kafka-metadata-quorum: describe the KRaft metadata quorum, in Apache Kafka 4.x's format.

``describe --status`` asks DescribeCluster for the cluster id and DescribeQuorum for the quorum,
then prints Kafka's summary block; ``describe --replication [--human-readable]`` prints one row
per replica (leader, then followers, then observers) in Kafka's tab-separated table, where every
cell is padded to its column's width and followed by a tab.

As Kafka's MetadataQuorumCommand (and its admin client's ``QuorumInfo``): a timestamp of -1 means
"unknown"; MaxFollowerLag is the leader's log end offset minus the smallest among the voters
(the first such voter in the response's order); MaxFollowerLagTimeMs is 0 when that voter is the
leader, the difference of the two last-caught-up times when both are known, and -1 otherwise.
add-controller and remove-controller are not implemented: kraft's quorum is static today.
"""

from __future__ import annotations

import time
import uuid
from argparse import Namespace
from collections.abc import Sequence
from dataclasses import dataclass, field

from protocol.uuids import uuid_to_text

from tools.common import KafkaArgumentParser, PlainError, ToolError, client_properties, run_command, run_trio

DESCRIBE_CLUSTER, DESCRIBE_QUORUM = 60, 55
METADATA_TOPIC = "__cluster_metadata"
STATUS_LABEL_WIDTH = 24
REPLICATION_HEADERS = ("NodeId", "DirectoryId", "LogEndOffset", "Lag", "LastFetchTimestamp",
                       "LastCaughtUpTimestamp", "Status")
REQUEST_TIMEOUT_S = 30


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """One voter or observer; ``None`` timestamps are the -1 ("unknown") of the wire."""

    replica_id: int
    directory_id: str
    log_end_offset: int
    last_fetch_timestamp_ms: int | None = None
    last_caught_up_timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class QuorumDescription:
    leader_id: int
    leader_epoch: int
    high_watermark: int
    voters: tuple[ReplicaState, ...]
    observers: tuple[ReplicaState, ...] = ()
    # node id -> endpoints as Kafka prints them, e.g. CONTROLLER://host:9093
    endpoints: dict[int, tuple[str, ...]] = field(default_factory=dict)

    def leader(self) -> ReplicaState:
        for voter in self.voters:
            if voter.replica_id == self.leader_id:
                return voter
        raise ToolError(f"The quorum leader {self.leader_id} is not among the voters "
                        f"{[v.replica_id for v in self.voters]}")


def build_parser() -> KafkaArgumentParser:
    parser = KafkaArgumentParser("kafka-metadata-quorum", "This tool describes kraft metadata quorum status.")
    connection = parser.add_mutually_exclusive_group(required=True)
    connection.add_argument("--bootstrap-server", help="A comma-separated list of host:port pairs to use for "
                            "establishing the connection to the Kafka cluster.")
    connection.add_argument("--bootstrap-controller", help="A comma-separated list of host:port pairs to use for "
                            "establishing the connection to the Kafka controllers.")
    parser.add_argument("--command-config", help="Property file containing configs to be passed to Admin Client.")
    commands = parser.add_subparsers(dest="command", required=True)
    describe = commands.add_parser("describe", help="Describe the metadata quorum info")
    describe.add_argument("--status", action="store_true", help="A short summary of the quorum status and the "
                          "other provides detailed information about the status of replication.")
    describe.add_argument("--replication", action="store_true",
                          help="Detailed information about the status of replication")
    describe.add_argument("--human-readable", action="store_true", help="Human-readable output")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), execute, argv)


def execute(args: Namespace) -> int:
    if args.status and args.replication:
        raise PlainError("Only one of --status or --replication should be specified with describe sub-command")
    if not args.status and not args.replication:
        raise PlainError("One of --status or --replication must be specified with describe sub-command")
    if args.status and args.human_readable:
        raise PlainError("The option --human-readable is only supported along with --replication")
    client_id = client_properties(args.command_config).get("client.id", "kafka-metadata-quorum")
    bootstrap = args.bootstrap_server or args.bootstrap_controller
    endpoint_type = CONTROLLER_ENDPOINT_TYPE if args.bootstrap_controller else BROKER_ENDPOINT_TYPE
    cluster_id, quorum = run_trio(describe, bootstrap, client_id, args.status, endpoint_type)
    if args.status:
        print(format_status(cluster_id, quorum))
    else:
        print(format_replication(quorum, args.human_readable, wall_clock_ms()), end="")
    return 0


BROKER_ENDPOINT_TYPE, CONTROLLER_ENDPOINT_TYPE = 1, 2


# --- the wire -------------------------------------------------------------------------------


async def describe(bootstrap: str, client_id: str, with_cluster_id: bool,
                   endpoint_type: int = 1) -> tuple[str | None, QuorumDescription]:
    """``endpoint_type`` 2 (controller) through ``--bootstrap-controller``, as KIP-919 asks."""
    import trio

    from protocol.client import Client
    from tools import admin

    async with Client(bootstrap, client_id) as client:
        with trio.fail_after(REQUEST_TIMEOUT_S):
            connection = await client.any_connection()
            cluster_id = None
            if with_cluster_id:
                version = connection.version_for(DESCRIBE_CLUSTER, 1)
                cluster = await connection.request(admin.build(
                    DESCRIBE_CLUSTER, version, include_cluster_authorized_operations=False, endpoint_type=endpoint_type))
                admin.check(cluster.error_code, cluster.error_message)
                cluster_id = cluster.cluster_id
            version = connection.version_for(DESCRIBE_QUORUM, 2)
            partition = admin.build(DESCRIBE_QUORUM, version, "PartitionData", partition_index=0)
            topic = admin.build(DESCRIBE_QUORUM, version, "TopicData", topic_name=METADATA_TOPIC,
                                partitions=(partition,))
            response = await connection.request(admin.build(DESCRIBE_QUORUM, version, topics=(topic,)))
    return cluster_id, quorum_from_response(response)


def quorum_from_response(response: object) -> QuorumDescription:
    """Checks a DescribeQuorum response as Kafka's admin client does and reads its facts."""
    from tools import admin

    admin.check(response.error_code, getattr(response, "error_message", None))
    topics = response.topics
    if len(topics) != 1 or topics[0].topic_name != METADATA_TOPIC:
        raise ToolError(f"DescribeQuorum answered for topics {[t.topic_name for t in topics]}, "
                        f"expected only {METADATA_TOPIC}")
    partitions = topics[0].partitions
    if len(partitions) != 1 or partitions[0].partition_index != 0:
        raise ToolError(f"DescribeQuorum answered for partitions {[p.partition_index for p in partitions]}, "
                        "expected only 0")
    partition = partitions[0]
    admin.check(partition.error_code, getattr(partition, "error_message", None))
    endpoints = {
        node.node_id: tuple(endpoint_text(lst.name, lst.host, lst.port) for lst in node.listeners)
        for node in getattr(response, "nodes", ())
    }
    return QuorumDescription(
        leader_id=partition.leader_id, leader_epoch=partition.leader_epoch,
        high_watermark=partition.high_watermark,
        voters=tuple(_replica_state(r) for r in partition.current_voters),
        observers=tuple(_replica_state(r) for r in partition.observers), endpoints=endpoints)


def _replica_state(replica: object) -> ReplicaState:
    def known(value: int) -> int | None:
        return None if value == -1 else value

    return ReplicaState(
        replica.replica_id, uuid_text(getattr(replica, "replica_directory_id", None)), replica.log_end_offset,
        known(getattr(replica, "last_fetch_timestamp", -1)), known(getattr(replica, "last_caught_up_timestamp", -1)))


# --- Kafka's text forms -----------------------------------------------------------------------


def uuid_text(value: uuid.UUID | None) -> str:
    """Kafka's ``Uuid.toString``: URL-safe base64 of the 16 bytes without padding (zero when absent)."""
    return uuid_to_text(value)


ZERO_UUID_TEXT = uuid_text(None)


def endpoint_text(listener: str, host: str, port: int) -> str:
    """``RaftVoterEndpoint.toString``: IPv6 hosts go in brackets."""
    return f"{listener}://{f'[{host}]' if ':' in host else host}:{port}"


def replica_text(replica: ReplicaState, endpoints: Sequence[str]) -> str:
    """One entry of CurrentVoters/CurrentObservers; the zero directory id and no endpoints are left out."""
    text = f'{{"id": {replica.replica_id}'
    if replica.directory_id != ZERO_UUID_TEXT:
        text += f', "directoryId": "{replica.directory_id}"'
    if endpoints:
        text += ', "endpoints": [' + ", ".join(f'"{e}"' for e in endpoints) + "]"
    return text + "}"


def _replicas_text(quorum: QuorumDescription, replicas: Sequence[ReplicaState]) -> str:
    return "[" + ", ".join(replica_text(r, quorum.endpoints.get(r.replica_id, ())) for r in replicas) + "]"


def format_status(cluster_id: str | None, quorum: QuorumDescription) -> str:
    leader = quorum.leader()
    lagging = min(quorum.voters, key=lambda voter: voter.log_end_offset)  # the first of the smallest
    if lagging is leader:
        lag_time_ms = 0
    elif leader.last_caught_up_timestamp_ms is not None and lagging.last_caught_up_timestamp_ms is not None:
        lag_time_ms = leader.last_caught_up_timestamp_ms - lagging.last_caught_up_timestamp_ms
    else:
        lag_time_ms = -1
    rows = [
        ("ClusterId:", cluster_id), ("LeaderId:", quorum.leader_id), ("LeaderEpoch:", quorum.leader_epoch),
        ("HighWatermark:", quorum.high_watermark),
        ("MaxFollowerLag:", leader.log_end_offset - lagging.log_end_offset),
        ("MaxFollowerLagTimeMs:", lag_time_ms),
        ("CurrentVoters:", _replicas_text(quorum, quorum.voters)),
        ("CurrentObservers:", _replicas_text(quorum, quorum.observers)),
    ]
    return "\n".join(f"{label:<{STATUS_LABEL_WIDTH}}{value}" for label, value in rows)


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


def relative_time_ms(timestamp_ms: int, description: str, now_ms: int) -> int:
    if not 0 < timestamp_ms <= now_ms:
        raise ToolError("Error while computing relative time, possible drift in system clock.\n"
                        f"Current timestamp is {now_ms}, {description} timestamp is {timestamp_ms}")
    return now_ms - timestamp_ms


def _timestamp_cell(timestamp_ms: int | None, description: str, human_readable: bool, now_ms: int) -> str:
    if timestamp_ms is None:
        return "-1"
    if human_readable:
        return f"{relative_time_ms(timestamp_ms, description, now_ms)} ms ago"
    return str(timestamp_ms)


def replication_rows(quorum: QuorumDescription, human_readable: bool, now_ms: int) -> list[list[str]]:
    leader = quorum.leader()
    groups = [([leader], "Leader"), ([v for v in quorum.voters if v.replica_id != quorum.leader_id], "Follower"),
              (list(quorum.observers), "Observer")]
    return [
        [str(r.replica_id), r.directory_id, str(r.log_end_offset), str(leader.log_end_offset - r.log_end_offset),
         _timestamp_cell(r.last_fetch_timestamp_ms, "last fetch", human_readable, now_ms),
         _timestamp_cell(r.last_caught_up_timestamp_ms, "last caught up", human_readable, now_ms), status]
        for replicas, status in groups for r in replicas
    ]


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Kafka's ``ToolsUtils.prettyPrintTable``: cells left-aligned to the column width, each followed by a tab."""
    widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(len(headers))]
    return "".join("".join(f"{cell:<{width}}\t" for cell, width in zip(row, widths)) + "\n"
                   for row in (headers, *rows))


def format_replication(quorum: QuorumDescription, human_readable: bool, now_ms: int) -> str:
    return format_table(REPLICATION_HEADERS, replication_rows(quorum, human_readable, now_ms))


if __name__ == "__main__":
    raise SystemExit(main())
