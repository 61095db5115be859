"""OffsetCommit, OffsetFetch, OffsetDelete, DeleteGroups and offset expiry."""

from __future__ import annotations

import logging

import trio
from kio.schema.errors import ErrorCode

from .coordinator import CommittedOffset
from .group import Group, GroupState
from .records import group_key, offset_key, offset_value

logger = logging.getLogger(__name__)
Partitions = list[tuple[str, list[tuple[int, int, int, str | None]]]]  # topic, (partition, offset, epoch, metadata)


class OffsetsMixin:
    def _commit_error(self, group_id: str, generation: int, member_id: str,
                      instance_id: str | None) -> ErrorCode:
        error = self.coordinator_error(group_id)
        if error != ErrorCode.none:
            return error
        group = self.groups.get(group_id)
        if generation < 0 and not member_id and (group is None or group.is_empty):
            return ErrorCode.none  # an admin or assign-mode commit
        if group is None:
            return ErrorCode.illegal_generation if generation >= 0 else ErrorCode.unknown_member_id
        if group.state == GroupState.COMPLETING_REBALANCE:
            return ErrorCode.rebalance_in_progress
        if instance_id is not None and group.instances.get(instance_id, member_id) != member_id:
            return ErrorCode.fenced_instance_id
        member = group.members.get(member_id)
        if member is None:
            return ErrorCode.unknown_member_id
        if generation != group.generation:
            return ErrorCode.illegal_generation
        member.session_deadline = trio.current_time() + member.session_timeout_ms / 1000
        return ErrorCode.none

    async def commit_offsets(self, *, group_id: str, generation: int, member_id: str, instance_id: str | None,
                             topics: Partitions) -> dict[tuple[str, int], ErrorCode]:
        error = self._commit_error(group_id, generation, member_id, instance_id)
        results: dict[tuple[str, int], ErrorCode] = {}
        entries, accepted = [], {}
        image = self._image()
        now_ms = self.clock_ms()
        metadata_max = self._config["offset.metadata.max.bytes"]
        for topic, partitions in topics:
            topic_image = image.topic(topic)
            for partition, offset, epoch, metadata in partitions:
                key = (topic, partition)
                if error != ErrorCode.none:
                    results[key] = error
                elif topic_image is None or partition not in topic_image.partitions:
                    results[key] = ErrorCode.unknown_topic_or_partition
                elif metadata is not None and len(metadata.encode()) > metadata_max:
                    results[key] = ErrorCode.offset_metadata_too_large
                else:
                    committed = CommittedOffset(offset, epoch, metadata or "", now_ms)
                    accepted[key] = committed
                    entries.append((offset_key(group_id, topic, partition), offset_value(committed)))
        if entries:
            code = await self._append(group_id, entries)
            if code == ErrorCode.none:
                self.groups.setdefault(group_id, Group(group_id))
                self.offsets.setdefault(group_id, {}).update(accepted)
            results.update({key: code for key in accepted})
        return results

    def fetch_offsets(self, group_id: str, topics: list[tuple[str, list[int]]] | None
                      ) -> tuple[ErrorCode, list[tuple[str, list[tuple[int, CommittedOffset | None]]]]]:
        error = self.coordinator_error(group_id)
        if error != ErrorCode.none:
            return error, []
        committed = self.offsets.get(group_id, {})
        if topics is None:
            by_topic: dict[str, list] = {}
            for (topic, partition), value in sorted(committed.items()):
                by_topic.setdefault(topic, []).append((partition, value))
            return ErrorCode.none, list(by_topic.items())
        return ErrorCode.none, [(topic, [(p, committed.get((topic, p))) for p in partitions])
                                for topic, partitions in topics]

    async def delete_offsets(self, group_id: str, topics: list[tuple[str, list[int]]]
                             ) -> tuple[ErrorCode, dict[tuple[str, int], ErrorCode]]:
        error = self.coordinator_error(group_id)
        if error != ErrorCode.none:
            return error, {}
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.group_id_not_found, {}
        if group.state not in (GroupState.EMPTY, GroupState.STABLE) or \
                (not group.is_empty and group.protocol_type != "consumer"):
            return ErrorCode.non_empty_group, {}
        subscribed = group.subscribed_topics() or set()
        results, entries = {}, []
        committed = self.offsets.get(group_id, {})
        for topic, partitions in topics:
            for partition in partitions:
                if topic in subscribed:
                    results[(topic, partition)] = ErrorCode.group_subscribed_to_topic
                    continue
                results[(topic, partition)] = ErrorCode.none
                if (topic, partition) in committed:
                    entries.append((offset_key(group_id, topic, partition), None))
        code = await self._append(group_id, entries)
        if code != ErrorCode.none:
            return code, {}
        for key, value in results.items():
            if value == ErrorCode.none:
                committed.pop(key, None)
        return ErrorCode.none, results

    async def delete_groups(self, group_ids: list[str]) -> dict[str, ErrorCode]:
        results = {}
        for group_id in group_ids:
            error = self.coordinator_error(group_id)
            group = self.groups.get(group_id)
            if error != ErrorCode.none:
                results[group_id] = error
            elif group is None or group.state == GroupState.DEAD:
                results[group_id] = ErrorCode.group_id_not_found
            elif not group.is_empty:
                results[group_id] = ErrorCode.non_empty_group
            else:
                results[group_id] = await self._remove_group(group_id)
        return results

    async def _remove_group(self, group_id: str) -> ErrorCode:
        entries = [(offset_key(group_id, t, p), None) for t, p in self.offsets.get(group_id, {})]
        entries.append((group_key(group_id), None))
        code = await self._append(group_id, entries)
        if code == ErrorCode.none:
            group = self.groups.pop(group_id, None)
            if group is not None:
                group.state = GroupState.DEAD
            self.offsets.pop(group_id, None)
        return code

    async def expire_offsets(self) -> None:
        """Offsets of an empty group expire ``offsets.retention.minutes`` after its last
        commit (Kafka 2.1+); a group left with neither members nor offsets is removed."""
        retention_ms = self._config["offsets.retention.minutes"] * 60_000
        now_ms = self.clock_ms()
        for group_id, group in list(self.groups.items()):
            if not group.is_empty or self.coordinator_error(group_id) != ErrorCode.none:
                continue
            committed = self.offsets.get(group_id, {})
            expired = [key for key, value in committed.items()
                       if now_ms - max(value.commit_timestamp_ms, group.state_timestamp_ms) >= retention_ms]
            if expired and len(expired) == len(committed):
                logger.info("[node %d] group %s: all %d offsets expired; removing the group",
                            self.node_id, group_id, len(expired))
                await self._remove_group(group_id)
            elif expired:
                code = await self._append(group_id, [(offset_key(group_id, t, p), None) for t, p in expired])
                if code == ErrorCode.none:
                    for key in expired:
                        committed.pop(key, None)
