"""JoinGroup, SyncGroup, Heartbeat, LeaveGroup and the rebalance timers (see group.py for
the states and transitions)."""

from __future__ import annotations

import logging
import uuid

import trio
from kio.schema.errors import ErrorCode

from .coordinator import TIMER_TICK_S_MAX, JoinResult
from .group import Group, GroupState, Member, Reply

logger = logging.getLogger(__name__)


class MembershipMixin:
    # ----- JoinGroup ---------------------------------------------------------------------

    async def join(self, *, group_id: str, member_id: str, instance_id: str | None, protocol_type: str,
                   protocols: list[tuple[str, bytes]], session_timeout_ms: int, rebalance_timeout_ms: int,
                   client_id: str, client_host: str, require_known_member_id: bool) -> JoinResult:
        if not group_id:
            return JoinResult(ErrorCode.invalid_group_id, member_id=member_id)
        error = self.coordinator_error(group_id)
        if error != ErrorCode.none:
            return JoinResult(error, member_id=member_id)
        if not self._config["group.min.session.timeout.ms"] <= session_timeout_ms \
                <= self._config["group.max.session.timeout.ms"]:
            return JoinResult(ErrorCode.invalid_session_timeout, member_id=member_id)
        group = self.groups.get(group_id)
        if group is None:
            if member_id:
                return JoinResult(ErrorCode.unknown_member_id, member_id=member_id)
            group = self.groups[group_id] = Group(group_id)
        if not group.supports_protocols(protocol_type, [name for name, _ in protocols]):
            return JoinResult(ErrorCode.inconsistent_group_protocol, member_id=member_id)
        now = trio.current_time()
        if not member_id:
            new_id = f"{client_id}-{uuid.uuid4()}"
            if instance_id is not None and instance_id in group.instances:
                return await self._rejoin_static(group, instance_id, new_id, protocols, session_timeout_ms,
                                                 rebalance_timeout_ms, client_id, client_host)
            if require_known_member_id and instance_id is None:
                group.pending_members[new_id] = now + session_timeout_ms / 1000
                self._wake()
                return JoinResult(ErrorCode.member_id_required, member_id=new_id)
            member_id = new_id
        elif member_id not in group.members and member_id not in group.pending_members:
            if instance_id is not None and instance_id in group.instances:
                return JoinResult(ErrorCode.fenced_instance_id, member_id=member_id)
            return JoinResult(ErrorCode.unknown_member_id, member_id=member_id)
        member = group.members.get(member_id)
        if member is None and len(group.members) >= self._config["group.max.size"]:
            group.pending_members.pop(member_id, None)
            return JoinResult(ErrorCode.group_max_size_reached, member_id=member_id)
        if member is None:
            group.pending_members.pop(member_id, None)
            member = Member(member_id, instance_id, client_id, client_host, session_timeout_ms,
                            rebalance_timeout_ms, protocol_type, list(protocols))
            group.add_member(member)
            self._extend_initial_delay(group, now)
            self._prepare_rebalance(group, f"member {member_id} joined")
        else:
            changed = member.protocols != list(protocols)
            member.protocols = list(protocols)
            member.session_timeout_ms, member.rebalance_timeout_ms = session_timeout_ms, rebalance_timeout_ms
            if group.state == GroupState.COMPLETING_REBALANCE and not changed:
                return self._join_result(group, member)
            if group.state == GroupState.STABLE and not changed and member_id != group.leader:
                return self._join_result(group, member)
            if group.state != GroupState.PREPARING_REBALANCE:
                self._prepare_rebalance(group, f"member {member_id} rejoined")
        member.join_reply = member.join_reply or Reply()
        reply = member.join_reply
        self._maybe_complete_join(group)
        return await reply.wait()

    async def _rejoin_static(self, group: Group, instance_id: str, new_id: str, protocols, session_ms: int,
                             rebalance_ms: int, client_id: str, client_host: str) -> JoinResult:
        """A restarted static member takes over its old identity without a rebalance when
        nothing about it changed; the old member id is fenced from then on."""
        old = group.remove_member(group.instances[instance_id])
        was_leader = group.leader is None or group.leader == (old.member_id if old else None)
        member = Member(new_id, instance_id, client_id, client_host, session_ms, rebalance_ms,
                        group.protocol_type or "", list(protocols), old.assignment if old else b"",
                        session_deadline=trio.current_time() + session_ms / 1000)
        group.add_member(member)
        if was_leader:
            group.leader = new_id
        if old is not None:
            for reply in (old.join_reply, old.sync_reply):
                if reply is not None:
                    reply.set(JoinResult(ErrorCode.fenced_instance_id, member_id=old.member_id))
        unchanged = old is not None and old.protocols == list(protocols)
        if group.state == GroupState.STABLE and unchanged:
            await self._persist_group(group)
            return self._join_result(group, member)
        if group.state != GroupState.PREPARING_REBALANCE:
            self._prepare_rebalance(group, f"static member {instance_id} rejoined")
        member.join_reply = Reply()
        reply = member.join_reply
        self._maybe_complete_join(group)
        return await reply.wait()

    def _join_result(self, group: Group, member: Member) -> JoinResult:
        members = ()
        if member.member_id == group.leader:
            members = tuple((m.member_id, m.instance_id, m.metadata_for(group.protocol_name))
                            for m in group.members.values())
        return JoinResult(ErrorCode.none, group.generation, group.protocol_type, group.protocol_name,
                          group.leader or "", member.member_id, members)

    def _extend_initial_delay(self, group: Group, now: float) -> None:
        if group.state == GroupState.EMPTY or group.initial_delay_deadline > now:
            delay_s = self._config["group.initial.rebalance.delay.ms"] / 1000
            cap = now + group.rebalance_timeout_ms() / 1000
            group.initial_delay_deadline = min(max(group.initial_delay_deadline, now) + delay_s, cap) \
                if group.initial_delay_deadline > now else min(now + delay_s, cap)

    def _prepare_rebalance(self, group: Group, reason: str) -> None:
        if group.state == GroupState.COMPLETING_REBALANCE:
            for member in group.members.values():
                member.assignment = b""
                if member.sync_reply is not None:
                    member.sync_reply.set((ErrorCode.rebalance_in_progress, b""))
                    member.sync_reply = None
        if group.state != GroupState.PREPARING_REBALANCE:
            group.state = GroupState.PREPARING_REBALANCE
            group.rebalance_deadline = trio.current_time() + group.rebalance_timeout_ms() / 1000
            logger.info("[node %d] group %s preparing rebalance (generation %d): %s", self.node_id,
                        group.group_id, group.generation, reason)
        self._wake()

    def _maybe_complete_join(self, group: Group) -> None:
        if group.state != GroupState.PREPARING_REBALANCE:
            return
        now = trio.current_time()
        ready = group.all_rejoined() and not group.pending_members and now >= group.initial_delay_deadline
        if ready or now >= group.rebalance_deadline:
            self._complete_join(group)

    def _complete_join(self, group: Group) -> None:
        now = trio.current_time()
        for member in [m for m in group.members.values() if m.join_reply is None]:
            group.remove_member(member.member_id)
        group.pending_members.clear()
        group.generation += 1
        group.state_timestamp_ms = self.clock_ms()
        if group.is_empty:
            group.state, group.protocol_name, group.leader = GroupState.EMPTY, None, None
            group.protocol_type = None if not self.offsets.get(group.group_id) else group.protocol_type
            self._spawn_persist(group)
            logger.info("[node %d] group %s is empty (generation %d)", self.node_id, group.group_id, group.generation)
            return
        group.protocol_name = group.select_protocol()
        if group.leader not in group.members:
            group.leader = next(iter(group.members))
        group.state = GroupState.COMPLETING_REBALANCE
        group.rebalance_deadline = now + group.rebalance_timeout_ms() / 1000
        for member in group.members.values():
            reply, member.join_reply = member.join_reply, None
            member.session_deadline = now + member.session_timeout_ms / 1000
            reply.set(self._join_result(group, member))
        logger.info("[node %d] group %s generation %d with %d member(s), protocol %s", self.node_id,
                    group.group_id, group.generation, len(group.members), group.protocol_name)

    def _spawn_persist(self, group: Group) -> None:
        self._pending_persists.append(group.group_id)
        self._wake()

    # ----- SyncGroup, Heartbeat, LeaveGroup ------------------------------------------------

    def _member_error(self, group_id: str, member_id: str, instance_id: str | None,
                      generation: int | None) -> tuple[ErrorCode, Group | None, Member | None]:
        error = self.coordinator_error(group_id)
        if error != ErrorCode.none:
            return error, None, None
        group = self.groups.get(group_id)
        if group is None or group.state == GroupState.DEAD:
            return ErrorCode.unknown_member_id, None, None
        if instance_id is not None and group.instances.get(instance_id, member_id) != member_id:
            return ErrorCode.fenced_instance_id, group, None
        member = group.members.get(member_id)
        if member is None:
            return ErrorCode.unknown_member_id, group, None
        if generation is not None and generation != group.generation:
            return ErrorCode.illegal_generation, group, member
        return ErrorCode.none, group, member

    async def sync(self, *, group_id: str, generation: int, member_id: str, instance_id: str | None,
                   protocol_type: str | None, protocol_name: str | None,
                   assignments: dict[str, bytes]) -> tuple[ErrorCode, bytes]:
        error, group, member = self._member_error(group_id, member_id, instance_id, generation)
        if error != ErrorCode.none:
            return error, b""
        if (protocol_type is not None and protocol_type != group.protocol_type) or \
                (protocol_name is not None and protocol_name != group.protocol_name):
            return ErrorCode.inconsistent_group_protocol, b""
        member.session_deadline = trio.current_time() + member.session_timeout_ms / 1000
        if group.state == GroupState.PREPARING_REBALANCE:
            return ErrorCode.rebalance_in_progress, b""
        if group.state == GroupState.STABLE:
            return ErrorCode.none, member.assignment
        member.sync_reply = member.sync_reply or Reply()
        reply = member.sync_reply
        if member_id == group.leader:
            for other in group.members.values():
                other.assignment = assignments.get(other.member_id, b"")
            generation_synced = group.generation
            error = await self._persist_group(group)
            if group.generation != generation_synced or group.state != GroupState.COMPLETING_REBALANCE:
                return ErrorCode.rebalance_in_progress, b""
            if error != ErrorCode.none:
                self._prepare_rebalance(group, "the assignment could not be stored")
                return error, b""
            group.state = GroupState.STABLE
            group.state_timestamp_ms = self.clock_ms()
            for other in group.members.values():
                if other.sync_reply is not None:
                    other.sync_reply.set((ErrorCode.none, other.assignment))
                    other.sync_reply = None
        result = await reply.wait()
        return result if isinstance(result, tuple) else (result.error_code, b"")

    def heartbeat(self, *, group_id: str, generation: int, member_id: str, instance_id: str | None) -> ErrorCode:
        error, group, member = self._member_error(group_id, member_id, instance_id, None)
        if error != ErrorCode.none:
            return error
        member.session_deadline = trio.current_time() + member.session_timeout_ms / 1000
        if group.state == GroupState.PREPARING_REBALANCE:
            return ErrorCode.rebalance_in_progress
        if generation != group.generation:
            return ErrorCode.illegal_generation
        return ErrorCode.none

    def leave(self, *, group_id: str, members: list[tuple[str, str | None]]) -> tuple[ErrorCode, list[ErrorCode]]:
        error = self.coordinator_error(group_id)
        if error != ErrorCode.none:
            return error, [error] * len(members)
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.unknown_member_id, [ErrorCode.unknown_member_id] * len(members)
        results = []
        for member_id, instance_id in members:
            if instance_id is not None:
                known = group.instances.get(instance_id)
                if known is None:
                    results.append(ErrorCode.unknown_member_id)
                    continue
                if member_id and member_id != known:
                    results.append(ErrorCode.fenced_instance_id)
                    continue
                member_id = known
            member = group.remove_member(member_id)
            if member is None:
                results.append(ErrorCode.unknown_member_id)
                continue
            for reply in (member.join_reply, member.sync_reply):
                if reply is not None:
                    reply.set(JoinResult(ErrorCode.unknown_member_id, member_id=member_id))
            results.append(ErrorCode.none)
            self._prepare_rebalance(group, f"member {member_id} left")
        self._maybe_complete_join(group)
        return ErrorCode.none, results

    # ----- timers ------------------------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Expire sessions and rebalance deadlines, persist empty groups, expire offsets."""
        task_status.started()
        next_expiry_check = trio.current_time()
        while True:
            with trio.move_on_after(TIMER_TICK_S_MAX):
                await self._wakeup.wait()
            self._wakeup = trio.Event()
            now = trio.current_time()
            for group in list(self.groups.values()):
                self._expire_members(group, now)
                self._maybe_complete_join(group)
                if group.state == GroupState.COMPLETING_REBALANCE and now >= group.rebalance_deadline:
                    self._prepare_rebalance(group, "the leader did not send its assignment in time")
            while self._pending_persists:
                group = self.groups.get(self._pending_persists.pop(0))
                if group is not None:
                    await self._persist_group(group)
            if now >= next_expiry_check:
                await self.expire_offsets()
                next_expiry_check = now + self._config["offsets.retention.check.interval.ms"] / 1000

    def _expire_members(self, group: Group, now: float) -> None:
        for member_id, deadline in list(group.pending_members.items()):
            if now >= deadline:
                del group.pending_members[member_id]
        for member in list(group.members.values()):
            awaiting = member.join_reply is not None or member.sync_reply is not None
            if not awaiting and member.session_deadline and now >= member.session_deadline:
                group.remove_member(member.member_id)
                logger.info("[node %d] group %s: member %s session expired", self.node_id,
                            group.group_id, member.member_id)
                self._prepare_rebalance(group, f"member {member.member_id} session expired")
