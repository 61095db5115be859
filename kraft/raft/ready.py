"""The core's configuration and the batch of work it hands to its driver.

``Ready`` is a contract, in the order the driver must follow:

1. ``election_state``: write ``quorum-state`` durably (write-temp, fsync, rename). A vote
   or a role change must not be acted on by anyone before it survives a crash.
2. ``snapshot``: write the snapshot file ``<end_offset>-<epoch>.checkpoint`` durably; it was
   either taken here (``create_snapshot``) or fetched from the leader (FetchSnapshot).
   Only then may the log before ``log_start_offset`` be deleted.
3. ``truncate_to``: drop the log from this offset on (a follower's divergence).
4. ``entries``: append them; fsync the log when ``must_sync``.
5. ``messages``: send them, only now that 1-4 are durable: a Fetch then reports a durable
   log end offset, and a vote is never granted twice across a crash.
6. ``load_snapshot`` then ``committed``: load the state machine from the snapshot, then
   apply the newly committed entries (offset order, all below the high watermark).
7. ``core.advance(ready)``: the core may now count its own appended entries as durable.

The core is not stepped between ``ready()`` and ``advance()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .log import Entry, Snapshot
from .messages import Message
from .roles import ElectionState


@dataclass(frozen=True, slots=True)
class RaftConfig:
    """Kafka's ``controller.quorum.*`` settings and the core's limits; defaults as Kafka's."""

    election_timeout_ms: int = 1000       # controller.quorum.election.timeout.ms
    fetch_timeout_ms: int = 2000          # controller.quorum.fetch.timeout.ms
    election_backoff_max_ms: int = 1000   # controller.quorum.election.backoff.max.ms
    retry_backoff_ms: int = 20            # controller.quorum.retry.backoff.ms
    request_timeout_ms: int = 2000        # controller.quorum.request.timeout.ms
    fetch_max_wait_ms: int = 500          # how long the leader parks an empty Fetch
    fetch_max_entries: int = 100          # entries in one Fetch answer
    snapshot_chunk_bytes: int = 1 << 20   # bytes in one FetchSnapshot answer
    append_max_entries: int = 1000        # entries one client append may carry

    def __post_init__(self) -> None:
        assert self.election_timeout_ms > 0 and self.fetch_timeout_ms > 0
        assert self.fetch_max_entries > 0 and self.snapshot_chunk_bytes > 0


@dataclass(frozen=True, slots=True)
class Ready:
    election_state: ElectionState | None = None
    snapshot: Snapshot | None = None
    log_start_offset: int | None = None
    truncate_to: int | None = None
    entries: tuple[Entry, ...] = ()
    must_sync: bool = False
    messages: tuple[Message, ...] = ()
    load_snapshot: Snapshot | None = None
    committed: tuple[Entry, ...] = ()
    high_watermark: int = 0

    @property
    def is_empty(self) -> bool:
        return (self.election_state is None and self.snapshot is None and self.truncate_to is None
                and not self.entries and not self.messages and self.load_snapshot is None
                and not self.committed)


@dataclass(slots=True)
class Pending:
    """What the core has accumulated since the last ``ready()``."""

    snapshot: Snapshot | None = None
    truncate_to: int | None = None
    entries: list[Entry] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    load_snapshot: Snapshot | None = None
