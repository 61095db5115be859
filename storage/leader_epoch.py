"""The leader-epoch cache: for each leader epoch, the first offset written in it.

Followers ask the leader "where did my last epoch end?" (OffsetForLeaderEpoch) and truncate to
the answer, so the cache must survive restarts: it lives in ``leader-epoch-checkpoint`` (the
offset-checkpoint container with ``<epoch> <start_offset>`` entries), rewritten atomically on
every change. Changes are rare (one per leadership change), so the fsync is cheap.

Rules: epochs and start offsets both strictly increase; truncating the log's end drops entries
starting at or after the new end; moving the log start clamps the entry that covers it.
"""

from __future__ import annotations

import logging
import os
from bisect import bisect_right

from storage.checkpoint import LEADER_EPOCH_CHECKPOINT, read_entries, write_entries
from storage.fs import FileSystem

log = logging.getLogger(__name__)

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1


class LeaderEpochCache:
    def __init__(self, fs: FileSystem, directory: str, entries: list[tuple[int, int]] | None = None) -> None:
        self.path = os.path.join(directory, LEADER_EPOCH_CHECKPOINT)
        self._fs = fs
        self._entries: list[tuple[int, int]] = list(entries or [])

    @classmethod
    def load(cls, fs: FileSystem, directory: str) -> tuple[LeaderEpochCache, bool]:
        """The cache, and whether its file was readable (if not, the log rebuilds it)."""
        cache = cls(fs, directory)
        rows = read_entries(fs, cache.path, 2)
        if rows is None:
            return cache, not fs.exists(cache.path)
        try:
            entries = [(int(epoch), int(start)) for epoch, start in rows]
        except ValueError:
            log.warning("ignoring %s with a non-numeric entry", cache.path)
            return cache, False
        if any(b[0] <= a[0] or b[1] < a[1] for a, b in zip(entries, entries[1:])):
            log.warning("ignoring %s whose epochs or offsets do not increase", cache.path)
            return cache, False
        cache._entries = entries
        return cache, True

    def entries(self) -> list[tuple[int, int]]:
        return list(self._entries)

    @property
    def latest_epoch(self) -> int:
        return self._entries[-1][0] if self._entries else UNDEFINED_EPOCH

    def assign(self, epoch: int, start_offset: int, *, persist: bool = True) -> bool:
        """Record that ``epoch`` starts at ``start_offset`` if it is newer than the latest;
        returns whether the cache changed. Entries that the new one contradicts (starting at or
        after it) are dropped, as Kafka does when a follower's log diverged."""
        if epoch < 0 or epoch <= self.latest_epoch:
            return False
        self._entries = [entry for entry in self._entries if entry[1] < start_offset]
        self._entries.append((epoch, start_offset))
        if persist:
            self.persist()
        return True

    def end_offset_for_epoch(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """Kafka's OffsetForLeaderEpoch answer: (the largest epoch <= requested that we know,
        the start offset of the next higher epoch, or the log end for the latest epoch)."""
        if requested_epoch == UNDEFINED_EPOCH or not self._entries:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if requested_epoch == self.latest_epoch:
            return requested_epoch, log_end_offset
        epochs = [epoch for epoch, _ in self._entries]
        higher = bisect_right(epochs, requested_epoch)
        if higher == len(epochs):
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if higher == 0:
            return requested_epoch, self._entries[0][1]
        return epochs[higher - 1], self._entries[higher][1]

    def epoch_for_offset(self, offset: int) -> int:
        """The epoch in which ``offset`` was written, or UNDEFINED_EPOCH."""
        starts = [start for _, start in self._entries]
        index = bisect_right(starts, offset) - 1
        return self._entries[index][0] if index >= 0 else UNDEFINED_EPOCH

    def truncate_from_end(self, end_offset: int) -> None:
        kept = [entry for entry in self._entries if entry[1] < end_offset]
        if kept != self._entries:
            self._entries = kept
            self.persist()

    def truncate_from_start(self, start_offset: int) -> None:
        """Drop epochs wholly before ``start_offset``; the one covering it now starts there."""
        covering = [entry for entry in self._entries if entry[1] <= start_offset]
        if not covering:
            return
        kept = [(covering[-1][0], start_offset)] + [e for e in self._entries if e[1] > start_offset]
        if kept != self._entries:
            self._entries = kept
            self.persist()

    def clear(self) -> None:
        self._entries = []

    def persist(self) -> None:
        write_entries(self._fs, self.path, self._entries)
