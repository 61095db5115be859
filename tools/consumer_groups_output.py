"""What kafka-consumer-groups prints, as pure functions of what the cluster answered.

Columns, widths, blank lines and which stream each line goes to follow Apache Kafka 4.1.1's
ConsumerGroupCommand, checked against that tool run on the same groups. Where Kafka's row
order comes from a Java HashMap or HashSet of TopicPartition (describe's rows, the reset
plan), we replay those collections with ``java_hash_map_order`` and TopicPartition's
``hashCode``, so the two tools print the same lines in the same order.

Every function returns the text; the command writes it. A "block" begins with its newline,
as Kafka's ``printf("\\n%s...")`` does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from protocol.consumer_protocol import ConsumerProtocolError, decode_assignment
from tools.topics import java_hash_map_order, java_string_hash

MISSING = "-"
COLUMN_WIDTH_MIN = 15
HASH_SET_LOAD_FACTOR = 0.75
TopicPartition = tuple[str, int]


def topic_partition_hash(topic_partition: TopicPartition) -> int:
    """``TopicPartition.hashCode``: 31 * (31 + partition) + topic.hashCode(), as 32 bits."""
    topic, partition = topic_partition
    return (31 * (31 + partition) + java_string_hash(topic)) & 0xFFFFFFFF


def hash_map_order(keys: Iterable[TopicPartition], initial_capacity: int | None = None) -> list[TopicPartition]:
    return java_hash_map_order(list(keys), initial_capacity, hash_of=topic_partition_hash)


def hash_set_copy_order(keys: Sequence[TopicPartition]) -> list[TopicPartition]:
    """The order of ``new HashSet<>(collection)``, whose table is sized for the collection."""
    capacity = max(int(len(keys) / HASH_SET_LOAD_FACTOR) + 1, 16)
    return hash_map_order(dict.fromkeys(keys), capacity)


def topic_partition_text(topic_partition: TopicPartition) -> str:
    return f"{topic_partition[0]}-{topic_partition[1]}"


def _text(value: object | None) -> str:
    return MISSING if value is None else str(value)


# --- --describe (offsets) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberView:
    """A member as DescribeGroups reports it, with its assignment decoded (Kafka's order)."""

    member_id: str
    instance_id: str | None
    client_id: str
    host: str
    partitions: tuple[TopicPartition, ...]


def member_view(member_id: str, instance_id: str | None, client_id: str, host: str, assignment: bytes) -> MemberView:
    """Kafka's Admin keeps a member's partitions in ``new HashSet<>(assignment.partitions())``."""
    try:
        partitions = decode_assignment(assignment).partitions
    except ConsumerProtocolError:
        partitions = ()
    return MemberView(member_id, instance_id, client_id, host, tuple(hash_set_copy_order(partitions)))


@dataclass(frozen=True, slots=True)
class OffsetRow:
    group: str
    topic: str | None
    partition: int | None
    current_offset: int | None
    log_end_offset: int | None
    consumer_id: str
    host: str
    client_id: str
    leader_epoch: int | None = None

    @property
    def lag(self) -> int | None:
        if self.current_offset is None or self.current_offset == -1 or self.log_end_offset is None:
            return None
        return self.log_end_offset - self.current_offset


def _partition_rows(group: str, partitions: Iterable[TopicPartition], committed: Mapping[TopicPartition, tuple[int, int | None]],
                    log_end: Mapping[TopicPartition, int], member: MemberView | None) -> list[OffsetRow]:
    """Kafka sorts the partitions by number, then keys a HashMap by them (the log end offsets)."""
    by_number = sorted(partitions, key=lambda tp: tp[1])
    rows = []
    for topic_partition in hash_map_order(by_number):
        offset, epoch = committed.get(topic_partition, (None, None))
        rows.append(OffsetRow(
            group, topic_partition[0], topic_partition[1], offset, log_end.get(topic_partition),
            member.member_id if member else MISSING, member.host if member else MISSING,
            member.client_id if member else MISSING, epoch))
    return rows


def offset_rows(group: str, members: Sequence[MemberView], committed: Mapping[TopicPartition, tuple[int, int | None]],
                log_end: Mapping[TopicPartition, int]) -> list[OffsetRow]:
    """Members with partitions first (most partitions first, a stable sort), then committed
    partitions no member holds; ``committed`` is in the order the broker listed them."""
    rows: list[OffsetRow] = []
    assigned: set[TopicPartition] = set()
    for member in sorted((m for m in members if m.partitions), key=lambda m: -len(m.partitions)):
        assigned.update(member.partitions)
        rows.extend(_partition_rows(group, member.partitions, committed, log_end, member))
    committed_order = hash_map_order(committed)
    unassigned = hash_map_order(tp for tp in committed_order if tp not in assigned)
    if unassigned:
        rows.extend(_partition_rows(group, unassigned, committed, log_end, None))
    return rows


def offsets_table(rows: Sequence[OffsetRow], verbose: bool = False) -> str:
    group_width = max([COLUMN_WIDTH_MIN] + [len(r.group) for r in rows])
    topic_width = max([COLUMN_WIDTH_MIN] + [len(_text(r.topic)) for r in rows])
    consumer_width = max([COLUMN_WIDTH_MIN] + [len(r.consumer_id) for r in rows])
    host_width = max([COLUMN_WIDTH_MIN] + [len(r.host) for r in rows])

    def line(group: str, topic: str, partition: str, epoch: str, current: str, end: str, lag: str,
             consumer: str, host: str, client: str) -> str:
        middle = f"{epoch:<15} " if verbose else ""
        return (f"\n{group:<{group_width}} {topic:<{topic_width}} {partition:<10} {middle}{current:<15} "
                f"{end:<15} {lag:<15} {consumer:<{consumer_width}} {host:<{host_width}} {client}")

    text = line("GROUP", "TOPIC", "PARTITION", "LEADER-EPOCH", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                "CONSUMER-ID", "HOST", "CLIENT-ID")
    for r in rows:
        text += line(r.group, _text(r.topic), _text(r.partition), _text(r.leader_epoch), _text(r.current_offset),
                     _text(r.log_end_offset), _text(r.lag), r.consumer_id, r.host, r.client_id)
    return text + "\n"


# --- group state notes ----------------------------------------------------------------------

REBALANCING_STATES = frozenset({"PreparingRebalance", "CompletingRebalance", "Assigning", "Reconciling"})


def state_note(group: str, state: str, rows: int) -> tuple[str, str, bool]:
    """(stdout text, stderr text, print the table?) for a described group, as Kafka's
    shouldPrintMemberState decides."""
    if state == "Dead":
        return f"\nError: Consumer group '{group}' does not exist.\n", "", False
    if state == "Empty":
        return "", f"\nConsumer group '{group}' has no active members.\n", rows > 0
    if state in REBALANCING_STATES:
        return "", f"\nWarning: Consumer group '{group}' is rebalancing.\n", rows > 0
    return "", "", rows > 0


# --- --describe --members -------------------------------------------------------------------


def assignment_text(partitions: Iterable[TopicPartition]) -> str:
    by_topic: dict[str, list[int]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, []).append(partition)
    parts = sorted(f"{topic}:" + ",".join(str(p) for p in sorted(numbers)) for topic, numbers in by_topic.items())
    return ";".join(parts) or MISSING


def members_table(group: str, members: Sequence[MemberView], verbose: bool, show_rows: bool) -> str:
    """The header is printed even when no member row is (an empty group)."""
    shown = members if show_rows else ()
    widths = {
        "group": max([15] + [len(group) for _ in shown]),
        "consumer": max([15] + [len(m.member_id) for m in shown]),
        "instance": max([17] + [len(m.instance_id or "") for m in shown]),
        "host": max([15] + [len(m.host) for m in shown]),
        "client": max([15] + [len(m.client_id) for m in shown]),
        "current": max([20] + [len(assignment_text(m.partitions)) for m in shown]),
    }
    with_instance = any(m.instance_id for m in shown)

    def head(group_text: str, consumer: str, instance: str, host: str, client: str, count: str) -> str:
        instance_column = f"{instance:<{widths['instance']}} " if with_instance else ""
        return (f"{group_text:<{widths['group']}} {consumer:<{widths['consumer']}} {instance_column}"
                f"{host:<{widths['host']}} {client:<{widths['client']}} {count:<15} ")

    def tail(epoch: str, current: str, target_epoch: str, target: str) -> str:
        return f"{epoch:<15} {current:<{widths['current']}} {target_epoch:<15} {target:<20}" if verbose else ""

    text = "\n" + head("GROUP", "CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID", "#PARTITIONS")
    text += tail("CURRENT-EPOCH", "CURRENT-ASSIGNMENT", "TARGET-EPOCH", "TARGET-ASSIGNMENT") + "\n"
    for m in shown:
        text += head(group, m.member_id, m.instance_id or "", m.host, m.client_id, str(len(m.partitions)))
        text += tail(MISSING, assignment_text(m.partitions), MISSING, MISSING) + "\n"
    return text


# --- --describe --state ---------------------------------------------------------------------


def state_table(group: str, coordinator: tuple[str, int, int], strategy: str, state: str, members: int,
                verbose: bool) -> str:
    host, port, node_id = coordinator
    coordinator_text = f"{host}:{port}  ({node_id})"
    group_width = max(15, len(group))
    coordinator_width = max(25, len(coordinator_text))
    if verbose:
        columns = [("GROUP", group, group_width), ("COORDINATOR (ID)", coordinator_text, coordinator_width),
                   ("ASSIGNMENT-STRATEGY", strategy or MISSING, 20), ("STATE", state, 20),
                   ("GROUP-EPOCH", MISSING, 15), ("TARGET-ASSIGNMENT-EPOCH", MISSING, 25), ("#MEMBERS", str(members), 0)]
    else:
        columns = [("GROUP", group, group_width), ("COORDINATOR (ID)", coordinator_text, coordinator_width),
                   ("ASSIGNMENT-STRATEGY", strategy or MISSING, 20), ("STATE", state, 20),
                   ("#MEMBERS", str(members), 0)]

    def line(index: int) -> str:
        return "\n" + " ".join(f"{column[index]:<{column[2]}}" if column[2] else column[index] for column in columns)

    return line(0) + line(1) + "\n"


# --- --list ---------------------------------------------------------------------------------


def list_table(listings: Sequence[tuple[str, str, str]], with_type: bool, with_state: bool) -> str:
    """(group, type, state) rows under GROUP [TYPE] [STATE]; the group column is 10 wider
    than the longest id (at least 15)."""
    group_width = max([15] + [len(group) for group, _, _ in listings]) + 10

    def line(group: str, group_type: str, state: str) -> str:
        text = f"{group:<{group_width}}"
        if with_type:
            text += f" {group_type:<20}"
        if with_state:
            text += f" {state:<20}"
        return text + "\n"

    return line("GROUP", "TYPE", "STATE") + "".join(line(*listing) for listing in listings)


# --- --reset-offsets ------------------------------------------------------------------------


def reset_table(plan: Mapping[str, Mapping[TopicPartition, int]]) -> str:
    """Kafka 4.1.1's fixed-width plan: groups in String-hash order, partitions in
    TopicPartition-hash order (both HashMaps)."""
    text = ""
    if plan:
        text += f"\n{'GROUP':<30} {'TOPIC':<30} {'PARTITION':<10} {'NEW-OFFSET':<15}"
    for group in java_hash_map_order(list(plan)):
        offsets = plan[group]
        for topic_partition in hash_map_order(offsets):
            topic, partition = topic_partition
            text += f"\n{group:<30} {topic:<30} {partition!s:<10} {offsets[topic_partition]!s:<15}"
    return text + "\n"


CSV_QUOTE_LENGTH_MIN = 25
CSV_SAFE_CHARACTER_MIN = ord(",") + 1


def csv_field(text: str) -> str:
    """Jackson's CSV quoting, which Kafka's export uses: a value longer than 24 characters, or
    one holding a character below the separator's successor, is quoted (quotes doubled)."""
    if len(text) >= CSV_QUOTE_LENGTH_MIN or any(ord(c) < CSV_SAFE_CHARACTER_MIN for c in text):
        return '"' + text.replace('"', '""') + '"'
    return text


def reset_csv(plan: Mapping[str, Mapping[TopicPartition, int]], with_group: bool) -> str:
    lines = []
    for group in java_hash_map_order(list(plan)):
        offsets = plan[group]
        for topic, partition in hash_map_order(offsets):
            prefix = f"{csv_field(group)}," if with_group else ""
            lines.append(f"{prefix}{csv_field(topic)},{partition},{offsets[(topic, partition)]}\n")
    return "".join(lines)


_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})(Z|[+-]\d{2}(?::?\d{2})?)?")


def parse_datetime_ms(text: str) -> int:
    """``YYYY-MM-DDTHH:mm:SS.sss`` with an optional zone (``Z``, ``+hh``, ``+hh:mm``); without
    one it is UTC, as Kafka's ``Utils.getDateTime`` appends ``Z``."""
    import datetime

    match = _DATETIME.fullmatch(text)
    if not match:
        raise ValueError(f'Unparseable date: "{text}"')
    year, month, day, hour, minute, second, millis = (int(match.group(i)) for i in range(1, 8))
    zone = match.group(8) or "Z"
    offset = datetime.timedelta(0)
    if zone != "Z":
        digits = zone[1:].replace(":", "")
        offset = datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        if zone[0] == "-":
            offset = -offset
    try:
        moment = datetime.datetime(year, month, day, hour, minute, second, millis * 1000,
                                   tzinfo=datetime.timezone(offset))
    except ValueError as error:
        raise ValueError(f'Unparseable date: "{text}"') from error
    return int(moment.timestamp() * 1000)


# --- --delete and --delete-offsets ----------------------------------------------------------

def delete_groups_text(succeeded: Sequence[str], failed: Mapping[str, str]) -> str:
    """Kafka collects both outcomes in HashMaps keyed by group id."""
    quoted = ", ".join(f"'{group}'" for group in java_hash_map_order(list(succeeded)))
    if not failed:
        return f"Deletion of requested consumer groups ({quoted}) was successful.\n"
    text = "\nError: Deletion of some consumer groups failed:\n"
    for group in java_hash_map_order(list(failed)):
        text += f"* Group '{group}' could not be deleted due to: {failed[group]}\n"
    if succeeded:
        text += f"\nThese consumer groups were deleted successfully: {quoted}\n"
    return text


def delete_offsets_table(results: Mapping[TopicPartition, str | None]) -> str:
    """Rows sorted by topic name and partition glued together, as Kafka sorts them; partition -1
    (a topic that could not be described) shows as "-"."""
    topic_width = max([15] + [len(topic) for topic, _ in results])
    line = "\n{:<%d} {:<10} {:<15}" % topic_width
    text = line.format("TOPIC", "PARTITION", "STATUS")
    for (topic, partition), error in sorted(results.items(), key=lambda item: item[0][0] + str(item[0][1])):
        status = "Successful" if error is None else f"Error: {error}"
        text += line.format(topic, partition if partition >= 0 else MISSING, status)
    return text + "\n"
