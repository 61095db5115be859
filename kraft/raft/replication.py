"""Pull-based replication: Fetch, FetchSnapshot and the high watermark.

Rules:
- Followers and observers send Fetch(fetch_offset, last_fetched_epoch) to the leader; the
  fetch offset is their durable log end offset (Ready sends only after the fsync).
- The leader answers from its log: entries from the fetch offset; or DivergingEpoch with
  its end offset for the largest epoch <= the follower's last fetched epoch, and the
  follower truncates to the smaller of that and its own end for the epoch; or the id of
  its latest snapshot when the follower needs history the log no longer holds, and the
  follower then fetches that snapshot in chunks (FetchSnapshot) and installs it.
- An empty answer is parked at the leader for up to ``fetch_max_wait_ms`` and sent as soon
  as there is something new (an append, or a higher high watermark).
- The leader's high watermark is the largest offset that a majority of voters (the leader
  counting only its durable entries) have reached, and moves only once it covers an entry
  of the leader's own epoch (the LeaderChange record at the epoch start). It never
  decreases. A follower's high watermark is the leader's, capped at its own log end.
- A follower whose fetches fail for ``fetch_timeout_ms`` stands for election (voters) or
  looks for the leader again (observers); an observer that knows no leader asks a random
  voter, whose answer names the leader.
"""

from __future__ import annotations

from .log import FetchValidity, Snapshot
from .messages import (DivergingEpoch, Error, FetchRequest, FetchResponse, FetchSnapshotRequest,
                       FetchSnapshotResponse, Message)
from .roles import Follower, Leader, ReplicaProgress, Unattached


class ReplicationMixin:
    # ----- leader -------------------------------------------------------------------------

    def _leader_tick(self) -> None:
        for replica_id, (request, expire_ms) in list(self.parked_fetches.items()):
            if self.now_ms >= expire_ms:
                del self.parked_fetches[replica_id]
                self._answer_fetch(request)
        for voter, sent_ms in list(self.begin_epoch_sent_ms.items()):
            if self.role.replicas[voter].last_fetch_ms is None \
                    and self.now_ms >= sent_ms + self.config.fetch_timeout_ms // 2:
                self._send_begin_epoch(voter)
        if self.now_ms >= self.check_quorum_deadline_ms:
            self._check_quorum()

    def _on_fetch_request(self, message: Message) -> None:
        request: FetchRequest = message.body
        role = self.role
        if request.replica_epoch < self.epoch:
            self._reply_fetch(message, Error.FENCED_LEADER_EPOCH)
        elif request.replica_epoch > self.epoch:
            self._reply_fetch(message, Error.UNKNOWN_LEADER_EPOCH)
        elif not isinstance(role, Leader):
            self._reply_fetch(message, Error.NOT_LEADER_OR_FOLLOWER)
        else:
            self._leader_fetch(message, request)

    def _leader_fetch(self, message: Message, request: FetchRequest) -> None:
        validity, diverging = self.log.validate_fetch(request.fetch_offset, request.last_fetched_epoch)
        if validity is FetchValidity.SNAPSHOT:
            self._reply_fetch(message, Error.NONE, snapshot_id=self.log.snapshot.snapshot_id)
            return
        if validity is FetchValidity.DIVERGING:
            self._reply_fetch(message, Error.NONE, diverging_epoch=DivergingEpoch(*diverging))
            return
        if request.fetch_offset > self.log.end_offset:
            self._reply_fetch(message, Error.OFFSET_OUT_OF_RANGE)
            return
        self._record_progress(request.replica_id, request.fetch_offset)
        self.parked_fetches.pop(request.replica_id, None)
        if request.fetch_offset == self.log.end_offset:
            self.parked_fetches[request.replica_id] = (message, self.now_ms + self.config.fetch_max_wait_ms)
        else:
            self._answer_fetch(message)

    def _record_progress(self, replica_id: int, fetch_offset: int) -> None:
        role = self.role
        # Observers are tracked too (for DescribeQuorum) but never counted.
        progress = role.replicas.setdefault(replica_id, ReplicaProgress())
        progress.end_offset = fetch_offset
        progress.last_fetch_ms = self.now_ms
        if fetch_offset >= self.log.end_offset:
            progress.last_caught_up_ms = self.now_ms
        if replica_id in self.quorum.voters:
            self._maybe_advance_high_watermark()

    def _maybe_advance_high_watermark(self) -> None:
        role = self.role
        offsets = [self.durable_end_offset] + [
            role.replicas[voter].end_offset for voter in self.quorum.voters if voter != self.local_id]
        offsets.sort(reverse=True)
        candidate = offsets[self.quorum.majority - 1]
        if candidate > role.epoch_start_offset and candidate > self.high_watermark:
            self._set_high_watermark(candidate)
            self._complete_parked_fetches()

    def _complete_parked_fetches(self) -> None:
        parked, self.parked_fetches = self.parked_fetches, {}
        for request, _ in parked.values():
            self._answer_fetch(request)

    def _answer_fetch(self, message: Message) -> None:
        request: FetchRequest = message.body
        if request.fetch_offset < self.log.start_offset:
            self._reply_fetch(message, Error.NONE, snapshot_id=self.log.snapshot.snapshot_id)
            return
        entries = self.log.read(request.fetch_offset, self.config.fetch_max_entries)
        self._reply_fetch(message, Error.NONE, entries=entries)

    def _reply_fetch(self, message: Message, error: Error, **fields) -> None:
        self._reply(message, FetchResponse(error, self.leader_id, self.epoch, self.high_watermark, **fields))

    def _on_fetch_snapshot_request(self, message: Message) -> None:
        request: FetchSnapshotRequest = message.body
        snapshot = self.log.snapshot
        if request.replica_epoch != self.epoch or not isinstance(self.role, Leader):
            error = Error.FENCED_LEADER_EPOCH if request.replica_epoch < self.epoch else Error.NOT_LEADER_OR_FOLLOWER
            self._reply(message, FetchSnapshotResponse(error, self.leader_id, self.epoch, request.snapshot_id))
        elif snapshot is None or snapshot.snapshot_id != request.snapshot_id:
            self._reply(message, FetchSnapshotResponse(
                Error.SNAPSHOT_NOT_FOUND, self.leader_id, self.epoch, request.snapshot_id))
        elif not 0 <= request.position <= len(snapshot.data):
            self._reply(message, FetchSnapshotResponse(
                Error.POSITION_OUT_OF_RANGE, self.leader_id, self.epoch, request.snapshot_id))
        else:
            chunk = snapshot.data[request.position:request.position + self.config.snapshot_chunk_bytes]
            self._reply(message, FetchSnapshotResponse(
                Error.NONE, self.leader_id, self.epoch, request.snapshot_id,
                size=len(snapshot.data), position=request.position, unaligned_records=chunk))

    # ----- follower and observer ---------------------------------------------------------

    def _wants_to_fetch(self) -> bool:
        role = self.role
        return isinstance(role, Follower) or (isinstance(role, Unattached) and not self.quorum.is_voter)

    def _follower_tick(self) -> None:
        if isinstance(self.role, Follower) and self.now_ms >= self.fetch_deadline_ms:
            if self.quorum.is_voter:
                self._on_election_timeout()
            else:
                self._transition(Unattached(self.epoch))
            return
        if self.fetch_in_flight is not None and self.now_ms >= self.fetch_in_flight[2]:
            self.fetch_in_flight = None
        if self.fetch_in_flight is None and self.now_ms >= self.fetch_backoff_until_ms:
            self._send_fetch()

    def _fetch_target(self) -> int:
        if isinstance(self.role, Follower):
            return self.role.leader_id
        return self.rng.choice(sorted(self.quorum.voters))

    def _send_fetch(self) -> None:
        target = self._fetch_target()
        if self.snapshot_fetch is not None:
            snapshot_id, buffer = self.snapshot_fetch
            body = FetchSnapshotRequest(self.local_id, self.epoch, snapshot_id, len(buffer))
        else:
            # The log end is durable by the time this leaves: Ready sends after the fsync.
            body = FetchRequest(self.local_id, self.epoch, self.log.end_offset, self.log.last_epoch)
        correlation_id = self._send(target, body)
        self.fetch_in_flight = (correlation_id, target, self.now_ms + self.config.request_timeout_ms)

    def _accept_fetch_answer(self, message: Message) -> bool:
        """Is this the answer to the fetch in flight, from the current leader's epoch?"""
        if self.fetch_in_flight is None or self.fetch_in_flight[0] != message.correlation_id:
            return False
        self.fetch_in_flight = None
        body = message.body
        if body.error is not Error.NONE or body.leader_epoch < self.epoch:
            self.snapshot_fetch = None  # start over with a plain Fetch
            self.fetch_backoff_until_ms = self.now_ms + self.config.retry_backoff_ms
            self._observe_epoch(body.leader_epoch, body.leader_id)
            return False
        self._observe_epoch(body.leader_epoch, body.leader_id)
        role = self.role
        return isinstance(role, Follower) and role.leader_id == message.source and role.epoch == body.leader_epoch

    def _on_fetch_response(self, message: Message) -> None:
        if not self._accept_fetch_answer(message):
            return
        response: FetchResponse = message.body
        self.role.last_fetch_success_ms = self.now_ms
        self.fetch_deadline_ms = self.now_ms + self.config.fetch_timeout_ms
        if response.snapshot_id is not None:
            self.snapshot_fetch = (response.snapshot_id, bytearray())
        elif response.diverging_epoch is not None:
            diverging = response.diverging_epoch
            self._truncate_local(self.log.truncation_offset_for(diverging.epoch, diverging.end_offset))
        else:
            self._append_fetched(response)
        self._send_fetch()

    def _append_fetched(self, response: FetchResponse) -> None:
        for entry in response.entries:
            if entry.offset < self.log.end_offset:
                continue  # already here (a duplicate answer); the leader validated the prefix
            assert entry.offset == self.log.end_offset, (entry, self.log.end_offset)
            self._append_local(entry)
        self._set_high_watermark(min(response.high_watermark, self.log.end_offset))

    def _on_fetch_snapshot_response(self, message: Message) -> None:
        if not self._accept_fetch_answer(message) or self.snapshot_fetch is None:
            return
        response: FetchSnapshotResponse = message.body
        snapshot_id, buffer = self.snapshot_fetch
        self.role.last_fetch_success_ms = self.now_ms
        self.fetch_deadline_ms = self.now_ms + self.config.fetch_timeout_ms
        if response.snapshot_id != snapshot_id or response.position != len(buffer):
            self.snapshot_fetch = None
        else:
            buffer += response.unaligned_records
            if len(buffer) >= response.size:
                self._install_fetched_snapshot(Snapshot(snapshot_id, bytes(buffer)))
        self._send_fetch()

    def _install_fetched_snapshot(self, snapshot: Snapshot) -> None:
        """The log keeps its entries after the snapshot only if it agrees with it; the
        driver mirrors that by cutting the log start and truncating at the new log end."""
        self.snapshot_fetch = None
        if self.log.snapshot is not None and snapshot.snapshot_id <= self.log.snapshot.snapshot_id:
            return
        self.log.install_snapshot(snapshot)
        start, end = self.log.start_offset, self.log.end_offset
        self.pending.entries = [e for e in self.pending.entries if start <= e.offset < end]
        if self.pending.truncate_to is None or end < self.pending.truncate_to:
            self.pending.truncate_to = end
        self.durable_end_offset = max(start, min(self.durable_end_offset, end))
        self.pending.snapshot = snapshot
        self.pending.load_snapshot = snapshot
        self._set_high_watermark(snapshot.snapshot_id.end_offset)
