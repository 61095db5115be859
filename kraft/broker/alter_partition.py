"""How partition leaders change their ISR: AlterPartition to the active controller, and the
periodic check for followers that fell behind (after Kafka's AlterPartitionManager and
ReplicaManager's isr-expiration task).

Rules:
- A leader's proposals (``ReplicaManager.on_isr_change``) are queued and sent together in
  one AlterPartition request; each partition has at most one change in flight, so a
  proposal always builds on the partition epoch the controller last committed.
- The new ISR carries each member's broker epoch as its fetches reported it (KIP-903), so
  the controller refuses a member that restarted since.
- Every answer goes back to the partition's leader state: applied when accepted, dropped
  when refused or when no controller answered, so the next check may propose again. A
  failed send backs off ``RETRY_S`` before the next one: never a tight loop.
- Every ``replica.lag.time.max.ms`` / 2 the leaders look for followers to drop.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import trio

from kio.schema.errors import ErrorCode

from ..controller import IsrRequest
from ..controller.channel import ForwardingFailed
from ..raft.core import NotLeaderError
from ..raft.driver import AppendLostError
from .replicas import Partition, ReplicaManager
from .replication import UNKNOWN, IsrChange

logger = logging.getLogger(__name__)
RETRY_S = 0.1


class AlterPartitionManager:
    def __init__(self, node_id: int, config: Any, replicas: ReplicaManager, controller: Any,
                 broker_epoch: Callable[[], int | None]) -> None:
        self.node_id = node_id
        self._config = config
        self._replicas = replicas
        self._controller = controller
        self._broker_epoch = broker_epoch
        self._queued: dict[tuple[str, int], tuple[Partition, IsrChange]] = {}
        self._wake = trio.Event()
        replicas.on_isr_change = self.submit

    def submit(self, partition: Partition, change: IsrChange) -> None:
        self._queued[(partition.topic, partition.index)] = (partition, change)
        self._wake.set()

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._expire_isrs)
            task_status.started()
            while True:
                await self._wake.wait()
                self._wake = trio.Event()
                queued, self._queued = self._queued, {}
                if queued and not await self._send(list(queued.values())):
                    await trio.sleep(RETRY_S)

    async def _expire_isrs(self) -> None:
        interval_s = max(self._config["replica.lag.time.max.ms"] / 2000, 0.05)
        while True:
            await trio.sleep(interval_s)
            self._replicas.shrink_isrs()

    def _request(self, partition: Partition, change: IsrChange) -> IsrRequest:
        leader = partition.leader_state
        own_epoch = self._broker_epoch()
        members = []
        for replica in change.isr:
            if replica == self.node_id:
                epoch = UNKNOWN if own_epoch is None else own_epoch
            else:
                progress = leader.followers.get(replica) if leader is not None else None
                epoch = progress.broker_epoch if progress is not None else UNKNOWN
            members.append((replica, epoch))
        return IsrRequest(partition.topic_id, partition.index, partition.leader_epoch,
                          change.partition_epoch - 1, tuple(members))

    async def _send(self, queued: list[tuple[Partition, IsrChange]]) -> bool:
        replicas = self._replicas
        live = [(p, c) for p, c in queued if p.leader_state is not None and p.leader_state.pending is c]
        if not live:
            return True
        epoch = self._broker_epoch()
        try:
            error, results = await self._controller.alter_partition(
                self.node_id, -1 if epoch is None else epoch, [self._request(p, c) for p, c in live])
        except (ForwardingFailed, NotLeaderError, AppendLostError, OSError, trio.TooSlowError) as failure:
            logger.info("[node %d] AlterPartition for %d partitions failed: %s", self.node_id, len(live), failure)
            error, results = ErrorCode.not_controller, []
        answers = {(r.topic_id, r.partition_index): r for r in results}
        for partition, change in live:
            answer = answers.get((partition.topic_id, partition.index))
            if error != ErrorCode.none or answer is None:
                replicas.isr_change_answered(partition, change, error if error != ErrorCode.none
                                             else ErrorCode.unknown_server_error)
            else:
                replicas.isr_change_answered(partition, change, answer.error_code, answer.isr, answer.leader_epoch,
                                             answer.partition_epoch)
        return error == ErrorCode.none
