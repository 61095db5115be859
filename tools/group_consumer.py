"""kafka-console-consumer's loop as a member of a consumer group.

Rules:
- The member joins, gets its partitions of the topic, and starts each at the group's
  committed offset, or at ``auto.offset.reset`` (earliest with ``--from-beginning``, else
  latest) where the group has none.
- What counts as consumed is what was printed: with ``--max-messages`` the records fetched
  but not printed are not committed, so the next run prints them. (Kafka's console consumer
  commits its consumer's position, which can skip them.)
- With ``enable.auto.commit`` (the default) the consumed offsets are committed every
  ``auto.commit.interval.ms``, before rejoining after a rebalance, and on exit, which then
  leaves the group; all of this also runs when the loop ends by an error or Ctrl-C, within
  ``CLOSE_TIMEOUT_S``.
"""

from __future__ import annotations

import sys
from argparse import Namespace
from typing import Any, BinaryIO

import trio

from protocol.client import Client, KafkaClientError
from tools.common import ToolError, parse_bool
from tools.consumer import AssignedConsumer, FetchSettings
from tools.group_member import GroupMember, GroupSettings
from tools.messages import ISOLATION_LEVELS, write_records

CLOSE_TIMEOUT_S = 30.0
IDLE_SLEEP_S = 0.1  # a member without partitions waits this long between checks
AUTO_COMMIT_INTERVAL_MS = 5_000


class _Progress:
    """The partitions this member reads and the next offset to commit for each."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.consumer: AssignedConsumer | None = None
        self.consumed: dict[int, int] = {}
        self.committed: dict[int, int] = {}

    def offsets(self) -> dict[tuple[str, int], int]:
        return {(self.topic, p): offset for p, offset in self.consumed.items()}

    def record_printed(self, records: list[Any], printed: int) -> None:
        """Everything printed is consumed; when all was printed, so are the skipped control records."""
        assert self.consumer is not None
        for record in records[:printed]:
            self.consumed[record.partition] = record.offset + 1
        if printed == len(records):
            self.consumed.update(self.consumer.positions)


async def consume_group(args: Namespace, group_id: str, reset: int, properties: dict[str, str], formatter: Any,
                        output: BinaryIO, counter: list[int]) -> None:
    client_id = properties.get("client.id", "console-consumer")
    auto_commit = parse_bool(properties.get("enable.auto.commit", "true"))
    try:
        interval_s = int(properties.get("auto.commit.interval.ms", AUTO_COMMIT_INTERVAL_MS)) / 1000
    except ValueError:
        raise ToolError("Invalid value for configuration auto.commit.interval.ms") from None
    async with Client(args.bootstrap_server, client_id=client_id) as client, trio.open_nursery() as nursery:
        member = GroupMember(client, group_id, [args.topic], GroupSettings.from_properties(properties), client_id)
        await nursery.start(member.heartbeat_loop)
        progress = _Progress(args.topic)
        try:
            await _loop(args, client, member, progress, reset, formatter, output, counter, auto_commit, interval_s)
        finally:
            with trio.CancelScope(shield=True, deadline=trio.current_time() + CLOSE_TIMEOUT_S):
                await _close(member, progress, auto_commit)
            nursery.cancel_scope.cancel()


async def _close(member: GroupMember, progress: _Progress, auto_commit: bool) -> None:
    try:
        if auto_commit and progress.consumed != progress.committed and not member.needs_rejoin:
            await member.commit(progress.offsets())
        await member.leave()
    except (KafkaClientError, ToolError) as error:
        print(f"WARN failed to commit offsets or leave group on close: {error}", file=sys.stderr)


async def _loop(args: Namespace, client: Client, member: GroupMember, progress: _Progress, reset: int,
                formatter: Any, output: BinaryIO, counter: list[int], auto_commit: bool, interval_s: float) -> None:
    timeout_s = float("inf") if args.timeout_ms is None or args.timeout_ms < 0 else args.timeout_ms / 1000
    limit = args.max_messages if args.max_messages is not None and args.max_messages >= 0 else None
    settings = FetchSettings(isolation_level=ISOLATION_LEVELS[args.isolation_level])
    deadline = trio.current_time() + timeout_s
    next_commit = trio.current_time() + interval_s
    while limit is None or counter[0] < limit:
        if trio.current_time() >= deadline:
            print("ERROR Error processing message, terminating consumer process: TimeoutException", file=sys.stderr)
            return
        records: list[Any] = []
        with trio.move_on_at(deadline):
            if progress.consumer is None or member.needs_rejoin:
                if auto_commit and progress.consumer is not None:
                    await _commit(member, progress)
                await _rejoin(client, member, progress, reset, settings)
            if progress.consumer is not None and progress.consumer.positions:
                records = await progress.consumer.poll()
            else:
                await trio.sleep(IDLE_SLEEP_S)
        if records:
            deadline = trio.current_time() + timeout_s
        before = counter[0]
        still_writing = write_records(records, formatter, output, counter, limit)
        progress.record_printed(records, counter[0] - before)
        if not still_writing:
            return
        if auto_commit and trio.current_time() >= next_commit:
            await _commit(member, progress)
            next_commit = trio.current_time() + interval_s


async def _commit(member: GroupMember, progress: _Progress) -> None:
    if progress.consumed == progress.committed:
        return
    snapshot = dict(progress.consumed)
    if await member.commit(progress.offsets()):
        progress.committed = snapshot


async def _rejoin(client: Client, member: GroupMember, progress: _Progress, reset: int, settings: FetchSettings) -> None:
    """Join, then start every assigned partition at its committed offset or the reset point."""
    assignment = await member.join()
    partitions = sorted(p for topic, p in assignment if topic == progress.topic)
    consumer = AssignedConsumer(client, progress.topic, partitions, reset, reset, settings)
    if partitions:
        await consumer.start()
        committed = await member.committed([(progress.topic, p) for p in partitions])
        for (_, partition), offset in committed.items():
            consumer.positions[partition] = offset
    progress.consumer = consumer
    progress.committed = {p: o for (_, p), o in committed.items()} if partitions else {}
    progress.consumed = dict(progress.committed)
