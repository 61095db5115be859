"""kafka-consumer-groups and the group member's pure parts: the consumer protocol codec (against
kio and kafka-python), the range assignor (against kafka-python's), and the output, compared
with text Apache Kafka 4.1.1's ConsumerGroupCommand printed for the same data."""

from __future__ import annotations

import itertools
import random

import pytest

from protocol.consumer_protocol import (
    Assignment,
    ConsumerProtocolError,
    MemberSubscription,
    Subscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
    range_assign,
)
from tools import admin
from tools import consumer_groups_output as output
from tools.common import UsageError
from tools.consumer_groups import build_parser, check_arguments, parse_states
from tools.consumer_groups_actions import parse_topic_partitions

LONG_TOPIC = "a-much-longer-topic-name-here"


# --- consumer protocol codec ----------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_subscription_round_trip_and_kafka_python_bytes(version: int) -> None:
    from kafka.protocol.consumer.metadata import ConsumerProtocolSubscription as Oracle

    subscription = Subscription(("orders", "audit"), b"data", (("orders", 0), ("orders", 2)) if version else (),
                                7 if version >= 2 else -1, "rack-a" if version >= 3 else None)
    data = encode_subscription(subscription, version)
    assert decode_subscription(data) == subscription
    oracle = Oracle(version=version, topics=["orders", "audit"], user_data=b"data",
                    owned_partitions=[Oracle.TopicPartition(topic="orders", partitions=[0, 2])] if version else [],
                    generation_id=subscription.generation_id, rack_id=subscription.rack_id)
    assert data == oracle.encode(version=version), f"v{version}: ours {data!r}"


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_assignment_round_trip_and_kafka_python_bytes(version: int) -> None:
    from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment as Oracle

    assignment = Assignment((("orders", 0), ("orders", 2), ("audit", 1)), b"u")
    data = encode_assignment(assignment, version)
    assert decode_assignment(data) == assignment
    oracle = Oracle(version=version, assigned_partitions=[Oracle.TopicPartition(topic="orders", partitions=[0, 2]),
                                                          Oracle.TopicPartition(topic="audit", partitions=[1])],
                    user_data=b"u")
    assert data == oracle.encode(version=version)


def test_v0_bytes_equal_kafka_pythons_classic_structs() -> None:
    from kafka.protocol.old.consumer_protocol import (
        ConsumerProtocolMemberAssignment_v0,
        ConsumerProtocolMemberMetadata_v0,
    )

    assert encode_subscription(Subscription(("a", "b"), b"x"), 0) == ConsumerProtocolMemberMetadata_v0(0, ["a", "b"], b"x").encode()
    expected = ConsumerProtocolMemberAssignment_v0(0, [("a", [0, 2]), ("b", [1])], None).encode()
    assert encode_assignment(Assignment((("a", 0), ("a", 2), ("b", 1))), 0) == expected


def test_newer_versions_and_trailing_bytes_read_with_the_newest_schema() -> None:
    data = bytearray(encode_assignment(Assignment((("t", 1),)), 3))
    data[0:2] = (9).to_bytes(2, "big")
    assert decode_assignment(bytes(data) + b"future fields").partitions == (("t", 1),)


@pytest.mark.parametrize("data", [b"", b"\x00", b"\xff\xff\x00\x00", b"\x00\x00\x00\x00\x00\x05ab"])
def test_malformed_subscriptions_are_the_members_fault(data: bytes) -> None:
    with pytest.raises(ConsumerProtocolError):
        decode_subscription(data)


def test_empty_assignment_bytes_mean_no_partitions() -> None:
    assert decode_assignment(b"") == Assignment(())


def test_kio_reads_what_we_write() -> None:
    from kio.schema.consumer_protocol_assignment.v3.data import ConsumerProtocolAssignment
    from kio.serial import entity_reader

    data = encode_assignment(Assignment((("t", 0), ("t", 1))))
    entity, _ = entity_reader(ConsumerProtocolAssignment)(memoryview(data), 2)
    assert data[:2] == b"\x00\x03"
    assert [(t.topic, list(t.partitions)) for t in entity.assigned_partitions] == [("t", [0, 1])]


# --- range assignor -------------------------------------------------------------------------


def _members(ids: list[str], topics: dict[str, tuple[str, ...]], static: bool = False) -> list[MemberSubscription]:
    return [MemberSubscription(m, f"instance-{m}" if static else None, Subscription(topics[m])) for m in ids]


def test_range_assignor_gives_the_first_members_one_more() -> None:
    members = _members(["c1", "c0"], {"c0": ("t0", "t1"), "c1": ("t0", "t1")})
    assigned = range_assign(members, {"t0": 3, "t1": 3})
    assert assigned["c0"].partitions == (("t0", 0), ("t0", 1), ("t1", 0), ("t1", 1))
    assert assigned["c1"].partitions == (("t0", 2), ("t1", 2))


def test_range_assignor_puts_static_members_first_and_skips_unknown_topics() -> None:
    members = [MemberSubscription("a", None, Subscription(("t",))),
               MemberSubscription("z", "instance-0", Subscription(("t", "missing")))]
    assigned = range_assign(members, {"t": 3})
    assert assigned["z"].partitions == (("t", 0), ("t", 1))
    assert assigned["a"].partitions == (("t", 2),)


def test_range_assignor_matches_kafka_python_on_random_groups() -> None:
    from kafka.coordinator.assignors.range import RangePartitionAssignor

    class Cluster:
        def __init__(self, counts: dict[str, int]) -> None:
            self.counts = counts

        def partitions_for_topic(self, topic: str) -> set[int] | None:
            return set(range(self.counts[topic])) if topic in self.counts else None

    class Member:
        def __init__(self, member: MemberSubscription) -> None:
            self.member_id, self.group_instance_id = member.member_id, member.instance_id
            self.metadata = member.subscription

    seed = random.randrange(1 << 30)
    generator = random.Random(seed)
    for _ in range(200):
        counts = {f"t{i}": generator.randint(1, 9) for i in range(generator.randint(1, 4))}
        ids = [f"member-{generator.randrange(1000)}" for _ in range(generator.randint(1, 6))]
        ids = list(dict.fromkeys(ids))
        topics = {m: tuple(generator.sample(sorted(counts), generator.randint(1, len(counts)))) for m in ids}
        members = _members(ids, topics, static=generator.random() < 0.3)
        ours = range_assign(members, counts)
        theirs = RangePartitionAssignor.assign(Cluster(counts), [Member(m) for m in members])
        for member_id, assignment in theirs.items():
            expected = tuple((topic, p) for topic, parts in assignment.assigned_partitions for p in parts)
            assert ours[member_id].partitions == expected, f"seed {seed}: {member_id} {counts} {topics}"


# --- Java collection order ------------------------------------------------------------------


def test_topic_partition_hash_is_javas() -> None:
    # Printed by Java 17 with kafka-clients 4.1.1: new TopicPartition(topic, partition).hashCode()
    assert output.topic_partition_hash(("orders", 0)) == -1008769370 & 0xFFFFFFFF
    assert output.topic_partition_hash((LONG_TOPIC, 7)) == 1467224094


def test_offset_rows_follow_kafkas_hash_map_order() -> None:
    committed = {(LONG_TOPIC, 0): (3, None), (LONG_TOPIC, 1): (4, None), ("orders", 0): (12, None),
                 ("orders", 1): (1, None)}
    rows = output.offset_rows("grp1", [], committed, {})
    assert [(r.topic, r.partition) for r in rows] == [(LONG_TOPIC, 1), (LONG_TOPIC, 0), ("orders", 0), ("orders", 1)]


# --- output, as Kafka 4.1.1 printed it ------------------------------------------------------

KAFKA_DESCRIBE = """
GROUP           TOPIC                         PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID     HOST            CLIENT-ID
grp1            a-much-longer-topic-name-here 1          4               4               0               -               -               -
grp1            a-much-longer-topic-name-here 0          3               3               0               -               -               -
grp1            orders                        0          12              12              0               -               -               -
grp1            orders                        1          1               10              9               -               -               -
"""


def test_describe_offsets_table_equals_kafkas() -> None:
    committed = {("orders", 0): (12, None), ("orders", 1): (1, None), (LONG_TOPIC, 0): (3, None),
                 (LONG_TOPIC, 1): (4, None)}
    log_end = {("orders", 0): 12, ("orders", 1): 10, (LONG_TOPIC, 0): 3, (LONG_TOPIC, 1): 4}
    rows = output.offset_rows("grp1", [], committed, log_end)
    assert output.offsets_table(rows) == KAFKA_DESCRIBE
    assert output.state_note("grp1", "Empty", len(rows)) == ("", "\nConsumer group 'grp1' has no active members.\n", True)


KAFKA_ACTIVE = """
GROUP           TOPIC                         PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID                                  HOST            CLIENT-ID
grp2            a-much-longer-topic-name-here 1          -               8               -               rdkafka-c9e2180f-907d-4e4c-ad41-f5ab4165d3d7 /127.0.0.1      rdkafka
grp2            a-much-longer-topic-name-here 0          4               6               2               rdkafka-c9e2180f-907d-4e4c-ad41-f5ab4165d3d7 /127.0.0.1      rdkafka
grp2            orders                        0          -               24              -               rdkafka-c9e2180f-907d-4e4c-ad41-f5ab4165d3d7 /127.0.0.1      rdkafka
grp2            orders                        1          -               20              -               rdkafka-c9e2180f-907d-4e4c-ad41-f5ab4165d3d7 /127.0.0.1      rdkafka
grp2            orders                        2          16              16              0               rdkafka-c9e2180f-907d-4e4c-ad41-f5ab4165d3d7 /127.0.0.1      rdkafka
"""
KAFKA_MEMBERS_VERBOSE = """
GROUP           CONSUMER-ID                                  HOST            CLIENT-ID       #PARTITIONS     CURRENT-EPOCH   CURRENT-ASSIGNMENT                             TARGET-EPOCH    TARGET-ASSIGNMENT   
grp2            rdkafka-c9e2180f-907d-4e4c-ad41-f5ab4165d3d7 /127.0.0.1      rdkafka         5               -               a-much-longer-topic-name-here:0,1;orders:0,1,2 -               -                   
"""


def _active_member() -> output.MemberView:
    partitions = ((LONG_TOPIC, 0), (LONG_TOPIC, 1), ("orders", 0), ("orders", 1), ("orders", 2))
    assignment = encode_assignment(Assignment(partitions))
    return output.member_view("rdkafka-c9e2180f-907d-4e4c-ad41-f5ab4165d3d7", None, "rdkafka", "/127.0.0.1", assignment)


def test_describe_of_an_active_member_equals_kafkas() -> None:
    committed = {(LONG_TOPIC, 0): (4, None), ("orders", 2): (16, None)}
    log_end = {(LONG_TOPIC, 0): 6, (LONG_TOPIC, 1): 8, ("orders", 0): 24, ("orders", 1): 20, ("orders", 2): 16}
    rows = output.offset_rows("grp2", [_active_member()], committed, log_end)
    assert output.offsets_table(rows) == KAFKA_ACTIVE
    assert output.members_table("grp2", [_active_member()], verbose=True, show_rows=True) == KAFKA_MEMBERS_VERBOSE


def test_members_header_is_printed_for_an_empty_group() -> None:
    text = output.members_table("grp1", [], verbose=False, show_rows=False)
    assert text == "\nGROUP           CONSUMER-ID     HOST            CLIENT-ID       #PARTITIONS     \n"


def test_state_tables_equal_kafkas() -> None:
    assert output.state_table("grp1", ("127.0.0.1", 44635, 1), "", "Empty", 0, verbose=False) == (
        "\nGROUP           COORDINATOR (ID)          ASSIGNMENT-STRATEGY  STATE                #MEMBERS"
        "\ngrp1            127.0.0.1:44635  (1)      -                    Empty                0\n")
    assert output.state_table("grp1", ("127.0.0.1", 44635, 1), "range", "Stable", 1, verbose=True) == (
        "\nGROUP           COORDINATOR (ID)          ASSIGNMENT-STRATEGY  STATE                GROUP-EPOCH     "
        "TARGET-ASSIGNMENT-EPOCH   #MEMBERS"
        "\ngrp1            127.0.0.1:44635  (1)      range                Stable               -               "
        "-                         1\n")


def test_list_table_equals_kafkas() -> None:
    assert output.list_table([("grp1", "Classic", "Empty")], with_type=False, with_state=True) == (
        "GROUP                     STATE               \ngrp1                      Empty               \n")


def test_reset_plan_equals_kafkas() -> None:
    plan = {"gx": {("orders", 0): 3, ("orders", 1): 3, ("orders", 2): 3, (LONG_TOPIC, 1): 3}}
    assert output.reset_table(plan) == (
        "\nGROUP                          TOPIC                          PARTITION  NEW-OFFSET     "
        "\ngx                             a-much-longer-topic-name-here  1          3              "
        "\ngx                             orders                         0          3              "
        "\ngx                             orders                         1          3              "
        "\ngx                             orders                         2          3              \n")
    assert output.reset_table({"busy": {}}).startswith("\nGROUP ")
    assert output.reset_table({}) == "\n"


def test_reset_csv_quotes_as_jackson_does() -> None:
    plan = {"grp1": {(LONG_TOPIC, 1): 0, ("orders", 0): 0}}
    assert output.reset_csv(plan, with_group=True) == f'grp1,"{LONG_TOPIC}",1,0\ngrp1,orders,0,0\n'
    assert output.csv_field("a b") == '"a b"' and output.csv_field('say "x"') == '"say ""x"""'


def test_delete_messages_use_hash_map_order() -> None:
    assert output.delete_groups_text(["grp2", "gx"], {}) == "Deletion of requested consumer groups ('gx', 'grp2') was successful.\n"
    text = output.delete_groups_text(["ok"], {"g": admin.java_exception_text("group_id_not_found", "The group id does not exist.")})
    assert text == ("\nError: Deletion of some consumer groups failed:\n* Group 'g' could not be deleted due to: "
                    "org.apache.kafka.common.errors.GroupIdNotFoundException: The group id does not exist.\n"
                    "\nThese consumer groups were deleted successfully: 'ok'\n")


def test_delete_offsets_table_sorts_topic_and_partition_as_one_string() -> None:
    text = output.delete_offsets_table({("t", 10): None, ("t", 2): "boom", ("nosuch", -1): "gone"})
    assert text.splitlines()[1:] == ["TOPIC           PARTITION  STATUS         ",
                                     "nosuch          -          Error: gone    ",
                                     "t               10         Successful     ",
                                     "t               2          Error: boom    "]


# --- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected_ms", [
    ("2024-01-02T03:04:05.678", 1704164645678),
    ("2024-01-02T03:04:05.678Z", 1704164645678),
    ("2024-01-02T05:04:05.678+02:00", 1704164645678),
    ("2024-01-02T01:04:05.678-0200", 1704164645678),
    ("2024-01-02T05:04:05.678+02", 1704164645678),
])
def test_datetime_as_kafka_reads_it(text: str, expected_ms: int) -> None:
    assert output.parse_datetime_ms(text) == expected_ms


@pytest.mark.parametrize("text", ["2024-01-02", "2024-01-02T03:04:05", "2024-13-02T03:04:05.678"])
def test_bad_datetimes(text: str) -> None:
    with pytest.raises(ValueError, match="Unparseable date"):
        output.parse_datetime_ms(text)


def test_topic_partition_arguments() -> None:
    assert parse_topic_partitions("orders:0,2") == [("orders", 0), ("orders", 2)]
    with pytest.raises(UsageError, match="Invalid partition 'x' specified in topic arg 'orders:x'"):
        parse_topic_partitions("orders:x")
    with pytest.raises(UsageError, match="expected topic name and partitions"):
        parse_topic_partitions("a:b:c")


def test_states_parse_case_insensitively() -> None:
    assert parse_states("stable,EMPTY") == ["Stable", "Empty"]
    with pytest.raises(UsageError, match="Invalid state list 'nope'"):
        parse_states("nope")


@pytest.mark.parametrize("argv, message", [
    (["--list", "--describe"], "exactly one action"),
    (["--describe"], "takes one of these options"),
    (["--describe", "--group", "g", "--members", "--state"], "at most one of these options"),
    (["--describe", "--group", "g", "--state", "stable"], "does not take a value"),
    (["--delete", "--group", "g", "--topic", "t"], "topic-specific offset deletion"),
    (["--delete-offsets", "--group", "g"], "takes the following options"),
    (["--reset-offsets", "--group", "g", "--to-earliest", "--execute"], "reset scopes"),
    (["--reset-offsets", "--group", "g", "--all-topics", "--execute"], "requires one of the following scenarios"),
    (["--reset-offsets", "--group", "g", "--all-topics", "--to-earliest", "--to-latest", "--dry-run"], "can't be used"),
    (["--reset-offsets", "--group", "g", "--all-topics", "--to-earliest", "--dry-run", "--execute"], "only accepts one"),
    (["--list", "--group", "g"], "can't be used with option \"[list]\""),
])
def test_argument_checks(argv: list[str], message: str) -> None:
    args = build_parser().parse_args(["--bootstrap-server", "localhost:9092", *argv])
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_arguments(args)


def test_hash_set_copy_keeps_insertion_order_within_a_bucket() -> None:
    keys = [(f"t{i}", p) for i, p in itertools.product(range(5), range(4))]
    ordered = output.hash_set_copy_order(keys)
    assert sorted(ordered) == sorted(keys) and len(ordered) == len(keys)
