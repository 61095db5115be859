"""Elections: pre-vote, vote, BeginQuorumEpoch, EndQuorumEpoch, check-quorum.

Rules:
- A voter whose election (or fetch) timeout expires becomes Prospective and asks every
  voter for a pre-vote for ``epoch + 1`` (KIP-996). Nobody changes state for a pre-vote.
  With a majority of pre-votes (its own included) it becomes Candidate at ``epoch + 1``,
  votes for itself and asks for real votes; with a majority of votes it becomes Leader.
- A vote (pre- or real) is granted only to a voter whose log is at least as up to date,
  compared by (last epoch, end offset). A real vote also needs that we have not voted for
  anyone else in that epoch and are not Leader, Candidate or Follower in it.
- A pre-vote is refused by a leader, and by a follower that has fetched from its leader
  within the fetch timeout, unless that leader announced its resignation; so a replica
  that comes back from a partition cannot disturb a stable leader.
- A new leader appends a LeaderChange control entry first, then sends BeginQuorumEpoch to
  the other voters, and resends it to voters that have not fetched in its epoch.
- A leader that has not heard from a majority within 1.5 fetch timeouts resigns
  (check-quorum); a resigning leader sends EndQuorumEpoch with its voters ordered by how
  far they have replicated, and the first of them stands for election at once.
- Observers never vote and never stand for election.
"""

from __future__ import annotations

from .log import Entry
from .messages import (BeginQuorumEpochRequest, BeginQuorumEpochResponse, EndQuorumEpochRequest,
                       EndQuorumEpochResponse, Error, LeaderChange, Message, VoteRequest, VoteResponse)
from .roles import (Candidate, Follower, Leader, Prospective, ReplicaProgress, Resigned,
                    Unattached, election_state_of)


class ElectionMixin:
    # ----- learning of epochs and leaders -----------------------------------------------

    def _observe_epoch(self, epoch: int, leader_id: int | None) -> bool:
        """Moves to a newer epoch or learns this epoch's leader; False when the sender's
        epoch is older than ours and the message is stale."""
        if epoch < self.epoch:
            return False
        known_leader = leader_id is not None and leader_id != self.local_id
        if epoch > self.epoch:
            if known_leader:
                self._become_follower(epoch, leader_id)
            else:
                self._transition(Unattached(epoch))
        elif known_leader and not isinstance(self.role, (Leader, Follower)):
            self._become_follower(epoch, leader_id)
        return True

    def _transition(self, role) -> None:
        self.quorum.transition(role)
        self._enter_role_timers()

    def _become_follower(self, epoch: int, leader_id: int) -> None:
        self._transition(Follower(epoch, leader_id))
        self._send_fetch()

    # ----- timeouts -----------------------------------------------------------------------

    def _on_election_timeout(self) -> None:
        """Unattached, Prospective, Candidate or Resigned whose timer ran out, or a Follower
        whose fetch timed out: start (again) with a pre-vote in the current epoch."""
        if not self.quorum.is_voter:
            return
        role = self.role
        voted_id = election_state_of(role, self.local_id).voted_id
        leader_id = role.leader_id if isinstance(role, (Follower, Prospective)) else None
        self._transition(Prospective(self.epoch, voted_id=voted_id, leader_id=leader_id))
        self.role.granted.add(self.local_id)
        self._maybe_win_pre_vote()
        if isinstance(self.role, Prospective):
            for voter in self._other_voters():
                self._send_vote_request(voter)

    def _retry_requests(self) -> None:
        for voter, (_, retry_at) in list(self.vote_requests.items()):
            if self.now_ms >= retry_at:
                self._send_vote_request(voter)

    def _other_voters(self) -> list[int]:
        return sorted(self.quorum.voters - {self.local_id})

    # ----- asking for votes ---------------------------------------------------------------

    def _send_vote_request(self, voter: int) -> None:
        role = self.role
        pre_vote = isinstance(role, Prospective)
        request = VoteRequest(role.epoch + 1 if pre_vote else role.epoch, self.local_id,
                              self.log.last_epoch, self.log.end_offset, pre_vote)
        correlation_id = self._send(voter, request)
        self.vote_requests[voter] = (correlation_id, self.now_ms + self.config.request_timeout_ms)

    def _on_vote_response(self, message: Message) -> None:
        response: VoteResponse = message.body
        role = self.role
        # A voter that grants our pre-vote while still naming the leader we gave up on
        # agrees that leader is gone: following it again would drop that grant and loop
        # pre-vote -> follower for as long as the leader stays away. A refusal naming a
        # leader means the leader is alive for that voter: go back to following it.
        same_lost_leader = (isinstance(role, Prospective) and response.vote_granted
                            and response.leader_epoch == self.epoch and response.leader_id == role.leader_id)
        if response.leader_epoch >= self.epoch and not same_lost_leader:
            self._observe_epoch(response.leader_epoch, response.leader_id)
        role = self.role
        expected = self.vote_requests.get(message.source)
        if expected is None or expected[0] != message.correlation_id:
            return
        if not isinstance(role, (Prospective, Candidate)) or response.pre_vote != isinstance(role, Prospective):
            return
        del self.vote_requests[message.source]
        (role.granted if response.vote_granted else role.rejected).add(message.source)
        if isinstance(role, Prospective):
            self._maybe_win_pre_vote()
        else:
            self._maybe_win_election()

    def _maybe_win_pre_vote(self) -> None:
        role = self.role
        if len(role.granted & self.quorum.voters) >= self.quorum.majority:
            self._transition(Candidate(self.epoch + 1, granted={self.local_id}))
            self._maybe_win_election()
            if isinstance(self.role, Candidate):
                for voter in self._other_voters():
                    self._send_vote_request(voter)
        elif len(role.rejected) >= self.quorum.majority:
            # Lost the pre-vote: wait for a backoff and try again (or hear from a leader).
            self.vote_requests.clear()
            self.election_deadline_ms = self.now_ms + self._random_backoff_ms()

    def _maybe_win_election(self) -> None:
        role = self.role
        if len(role.granted & self.quorum.voters) >= self.quorum.majority:
            self._become_leader()
        elif len(role.rejected) >= self.quorum.majority:
            self.vote_requests.clear()
            self.election_deadline_ms = self.now_ms + self._random_backoff_ms()

    def _become_leader(self) -> None:
        start = self.log.end_offset
        replicas = {voter: ReplicaProgress() for voter in self._other_voters()}
        self._transition(Leader(self.epoch, epoch_start_offset=start, replicas=replicas))
        change = LeaderChange(self.local_id, tuple(sorted(self.quorum.voters)))
        self._append_local(Entry(start, self.epoch, change.encode(), control=True))
        for voter in self._other_voters():
            self._send_begin_epoch(voter)
        if not replicas:
            self._maybe_advance_high_watermark()

    # ----- granting votes -----------------------------------------------------------------

    def _on_vote_request(self, message: Message) -> None:
        request: VoteRequest = message.body
        if not self.quorum.is_voter or request.candidate_id not in self.quorum.voters:
            self._reply_vote(message, request, False, Error.INCONSISTENT_VOTER_SET)
            return
        if request.candidate_epoch < self.epoch or (request.pre_vote and request.candidate_epoch == self.epoch):
            self._reply_vote(message, request, False, Error.FENCED_LEADER_EPOCH
                             if request.candidate_epoch < self.epoch else Error.NONE)
            return
        if request.pre_vote:
            self._reply_vote(message, request, self._grants_pre_vote(request))
            return
        if request.candidate_epoch > self.epoch:
            self._transition(Unattached(request.candidate_epoch))
        granted = self._grants_vote(request)
        if granted:
            self._transition(Unattached(self.epoch, voted_id=request.candidate_id))
        self._reply_vote(message, request, granted)

    def _log_is_up_to_date(self, request: VoteRequest) -> bool:
        ours = (self.log.last_epoch, self.log.end_offset)
        return (request.last_offset_epoch, request.last_offset) >= ours

    def _grants_pre_vote(self, request: VoteRequest) -> bool:
        role = self.role
        if isinstance(role, Leader):
            return False
        if isinstance(role, Follower) and not role.leader_resigned and role.last_fetch_success_ms is not None \
                and self.now_ms - role.last_fetch_success_ms < self.config.fetch_timeout_ms:
            return False
        return self._log_is_up_to_date(request)

    def _grants_vote(self, request: VoteRequest) -> bool:
        role = self.role
        if isinstance(role, (Unattached, Prospective)):
            if role.voted_id is not None:
                return role.voted_id == request.candidate_id
            return self._log_is_up_to_date(request)
        return False

    def _reply_vote(self, message: Message, request: VoteRequest, granted: bool,
                    error: Error = Error.NONE) -> None:
        self._reply(message, VoteResponse(error, self.leader_id, self.epoch, granted, request.pre_vote))

    # ----- BeginQuorumEpoch / EndQuorumEpoch ---------------------------------------------

    def _send_begin_epoch(self, voter: int) -> None:
        self.begin_epoch_sent_ms[voter] = self.now_ms
        self._send(voter, BeginQuorumEpochRequest(self.local_id, self.epoch))

    def _next_begin_epoch_resend_ms(self) -> float:
        """A voter that has not fetched in this epoch is told again, every half fetch timeout."""
        role = self.role
        waiting = [sent for voter, sent in self.begin_epoch_sent_ms.items()
                   if role.replicas[voter].last_fetch_ms is None]
        return min(waiting) + self.config.fetch_timeout_ms // 2 if waiting else float("inf")

    def _on_begin_epoch_request(self, message: Message) -> None:
        request: BeginQuorumEpochRequest = message.body
        if self._observe_epoch(request.leader_epoch, request.leader_id):
            role = self.role
            if isinstance(role, Follower) and role.leader_id != request.leader_id:
                # Two leaders in one epoch: a safety bug somewhere; refuse to follow the second.
                self._reply(message, BeginQuorumEpochResponse(Error.INVALID_REQUEST, self.leader_id, self.epoch))
                return
        self._reply(message, BeginQuorumEpochResponse(
            Error.NONE if request.leader_epoch == self.epoch else Error.FENCED_LEADER_EPOCH,
            self.leader_id, self.epoch))

    def _on_quorum_response(self, message: Message) -> None:
        body = message.body
        if body.leader_epoch > self.epoch:
            self._observe_epoch(body.leader_epoch, body.leader_id)

    def _on_end_epoch_request(self, message: Message) -> None:
        request: EndQuorumEpochRequest = message.body
        self._observe_epoch(request.leader_epoch, request.leader_id)
        role = self.role
        if isinstance(role, Follower) and role.epoch == request.leader_epoch \
                and role.leader_id == request.leader_id:
            role.leader_resigned = True
            self.fetch_deadline_ms = self.now_ms + self._successor_backoff_ms(request.preferred_successors)
        self._reply(message, EndQuorumEpochResponse(Error.NONE, self.leader_id, self.epoch))

    def _successor_backoff_ms(self, successors: tuple[int, ...]) -> int:
        """The first preferred successor stands at once, later ones wait exponentially
        longer, and voters left out wait a full election timeout."""
        if self.local_id not in successors:
            return self._random_election_timeout_ms()
        position = successors.index(self.local_id)
        if position == 0:
            return 0
        return min(self.config.election_backoff_max_ms, self.config.retry_backoff_ms << position)

    def _resign_leadership(self) -> None:
        replicas = self.role.replicas
        successors = tuple(sorted(self._other_voters(), key=lambda v: (-replicas[v].end_offset, v)))
        self._transition(Resigned(self.epoch, successors))
        for voter in self._other_voters():
            self._send(voter, EndQuorumEpochRequest(self.local_id, self.epoch, successors))

    def _check_quorum(self) -> None:
        role = self.role
        if len(self.quorum.voters) == 1:
            self.check_quorum_deadline_ms = self.now_ms + self._check_quorum_timeout_ms()
            return
        window_start = self.now_ms - self._check_quorum_timeout_ms()
        fetch_times = [role.replicas[voter].last_fetch_ms for voter in self._other_voters()]
        recent = 1 + sum(1 for at in fetch_times if at is not None and at >= window_start)
        if recent >= self.quorum.majority:
            self.check_quorum_deadline_ms = self.now_ms + self._check_quorum_timeout_ms()
        else:
            self._resign_leadership()
