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

The core is not stepped between ``ready()`` and ``advance()``. ``ReadyRunner`` follows the
contract, once, for the trio driver and for the simulation alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

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


class ReadyDisk(Protocol):
    def write_unsynced(self, ready: "Ready", log: Any) -> bool:
        """Steps 1-4 but the final fsync; True when that fsync is owed."""

    def sync(self) -> None:
        """The owed fsync."""


class ReadyRunner:
    """Executes a core's ``Ready`` by the contract above, in two halves so that a driver may
    let time pass between them: ``persist`` (steps 1-4, the fsync possibly still owed) and
    ``complete`` (the owed fsync, then 5 send, 6 the state machine, 7 advance). The trio
    driver calls them back to back; the simulation puts a simulated fsync latency, and the
    crashes that may fall into it, between them. ``proceed`` is asked after the messages went
    out and before the state machine: False stops there (the simulation's crash points)."""

    def __init__(self, disk: ReadyDisk, send: Callable[[Message], None],
                 load_snapshot: Callable[[Snapshot], None],
                 commit: Callable[[tuple[Entry, ...]], None]) -> None:
        self.disk = disk
        self._send = send
        self._load_snapshot = load_snapshot
        self._commit = commit

    def persist(self, core: Any, ready: Ready) -> bool:
        """Steps 1-4; True when an fsync is owed before ``complete`` may send."""
        return self.disk.write_unsynced(ready, core.log)

    def complete(self, core: Any, ready: Ready, owed: bool,
                 proceed: Callable[[], bool] = lambda: True) -> bool:
        """The rest of the contract; False when ``proceed`` stopped it before step 6."""
        if owed:
            self.disk.sync()
        for message in ready.messages:
            self._send(message)
        if not proceed():
            return False
        if ready.load_snapshot is not None:
            self._load_snapshot(ready.load_snapshot)
        if ready.committed:
            self._commit(ready.committed)
        core.advance(ready)
        return True

    def run(self, core: Any, ready: Ready) -> None:
        """Both halves at once, as the trio driver does."""
        self.complete(core, ready, self.persist(core, ready))
