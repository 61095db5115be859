"""Sparse segment indexes: ``.index`` (offset -> file position) and ``.timeindex``
(timestamp -> offset), in Kafka's on-disk entry formats.

Entries are *appended* to the files as they are made rather than written into a preallocated,
memory-mapped file as Kafka does. That keeps a file's length equal to its content (no trimming on
roll, no zero-filled tail to tell apart from entries) and means a torn write shows up as a length
that is not a multiple of the entry size. All entries are also kept in memory (``array``) so
lookups are a binary search with no I/O; ``segment.index.bytes`` bounds the memory per segment.

Loading is lazy for segments the log only trusts (``load(lazy=True)``): opening reads the last
entry alone, and the whole file is read and checked on first use, so start-up costs a few reads
per segment however many entries the log holds (Kafka's LazyIndex). Should that late check fail,
``on_corrupt`` (the segment) rebuilds the index from the log.

Rules, as in Kafka:
- ``.index`` entries are 8 bytes: int32 (last offset of a batch - segment base offset), int32
  position of that batch in the ``.log``. Offsets and positions strictly increase.
- ``.timeindex`` entries are 12 bytes: int64 largest timestamp seen so far in the segment, int32
  relative offset of the batch holding it. Timestamps and offsets strictly increase.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable
from bisect import bisect_left, bisect_right

from storage.fs import File, FileSystem

OFFSET_ENTRY = struct.Struct(">ii")
TIME_ENTRY = struct.Struct(">qi")
OFFSET_ENTRY_BYTES = OFFSET_ENTRY.size
TIME_ENTRY_BYTES = TIME_ENTRY.size


class _Index:
    """Shared file handling: append-only entries mirrored in two parallel in-memory arrays."""

    entry: struct.Struct

    def __init__(self, fs: FileSystem, path: str, base_offset: int, index_bytes_max: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.entries_max = max(1, index_bytes_max // self.entry.size)
        self._fs = fs
        self._file: File = fs.open(path)
        self._key_array = array("q")
        self._value_array = array("q")
        # Set by load(lazy=True) until the entries are read: (count, last entry).
        self._unloaded: tuple[int, tuple[int, int]] | None = None
        self.on_corrupt: Callable[[], None] | None = None

    @property
    def _keys(self) -> array:
        if self._unloaded is not None:
            self._load_now()
        return self._key_array

    @property
    def _values(self) -> array:
        if self._unloaded is not None:
            self._load_now()
        return self._value_array

    def _load_now(self) -> None:
        self._unloaded = None
        if not self.load():
            assert self.on_corrupt is not None, f"{self.path}: no way to rebuild a corrupt index"
            self.on_corrupt()

    def __len__(self) -> int:
        return self._unloaded[0] if self._unloaded is not None else len(self._key_array)

    @property
    def is_full(self) -> bool:
        return len(self) >= self.entries_max

    def _last(self) -> tuple[int, int] | None:
        if self._unloaded is not None:
            return self._unloaded[1]
        return (self._key_array[-1], self._value_array[-1]) if self._key_array else None

    def load(self, *, sane_prefix: bool = False, lazy: bool = False) -> bool:
        """Read the file; False (and no entries) when its length or order is not sane. With
        ``sane_prefix``, keep the entries up to the first one that is torn or out of order
        instead: enough for recovery, which only trusts entries that were fsynced, and those
        are a prefix of the file. With ``lazy``, check the length and read the last entry only
        (module docstring)."""
        if lazy and not sane_prefix:
            return self._load_last_entry()
        self._unloaded = None
        data = self._file.pread(self._file.size(), 0)
        whole_bytes = len(data) - len(data) % self.entry.size
        if not sane_prefix and (whole_bytes != len(data) or whole_bytes // self.entry.size > self.entries_max):
            return False
        keys, values = array("q"), array("q")
        for first, second in self.entry.iter_unpack(memoryview(data)[:whole_bytes]):
            key, value = self._decode(first, second)
            if keys and (key <= keys[-1] or value <= values[-1]) or value < 0 or len(keys) == self.entries_max:
                if sane_prefix:
                    break
                return False
            keys.append(key)
            values.append(value)
        self._key_array, self._value_array = keys, values
        return True

    def _load_last_entry(self) -> bool:
        size = self._file.size()
        count = size // self.entry.size
        if size % self.entry.size or count > self.entries_max:
            return False
        if count == 0:
            self._key_array, self._value_array, self._unloaded = array("q"), array("q"), None
            return True
        key, value = self._decode(*self.entry.unpack(self._file.pread(self.entry.size, size - self.entry.size)))
        if value < 0:
            return False
        self._unloaded = (count, (key, value))
        return True

    def reset(self) -> None:
        """Forget every entry, in memory and on disk (before a rebuild)."""
        self._key_array, self._value_array, self._unloaded = array("q"), array("q"), None
        self._file.truncate(0)

    def _append(self, key: int, value: int, first: int, second: int) -> None:
        assert not self._keys or (key > self._keys[-1] and value > self._values[-1]), (
            f"{self.path}: entry ({key}, {value}) does not follow ({self._keys[-1]}, {self._values[-1]})"
        )
        self._file.pwrite(self.entry.pack(first, second), len(self._keys) * self.entry.size)
        self._keys.append(key)
        self._values.append(value)

    def _truncate_entries(self, count: int) -> None:
        if count < len(self._keys):
            del self._keys[count:]
            del self._values[count:]
            self._file.truncate(count * self.entry.size)

    def _floor(self, key: int) -> int:
        """Index of the last entry whose key is <= ``key``, or -1."""
        return bisect_right(self._keys, key) - 1

    def _decode(self, first: int, second: int) -> tuple[int, int]:
        raise NotImplementedError

    def flush(self) -> None:
        self._file.fsync()

    def close(self) -> None:
        self._file.close()


class OffsetIndex(_Index):
    """Absolute last offset of an indexed batch -> byte position of that batch."""

    entry = OFFSET_ENTRY

    def _decode(self, first: int, second: int) -> tuple[int, int]:
        return self.base_offset + first, second

    def append(self, last_offset: int, position: int) -> None:
        self._append(last_offset, position, last_offset - self.base_offset, position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """(offset, position) of the last entry at or below ``offset``; scanning forward from
        that position finds the batch holding ``offset``. (base_offset, 0) when none is."""
        index = self._floor(offset)
        if index < 0:
            return self.base_offset, 0
        return self._keys[index], self._values[index]

    def last_entry(self) -> tuple[int, int] | None:
        return self._last()

    def truncate_to(self, offset: int) -> None:
        """Drop entries for batches ending at or after ``offset``."""
        self._truncate_entries(bisect_right(self._keys, offset - 1))

    def entries(self) -> list[tuple[int, int]]:
        return list(zip(self._keys, self._values))


class TimeIndex(_Index):
    """Largest timestamp so far -> absolute last offset of the batch carrying it."""

    entry = TIME_ENTRY

    def _decode(self, first: int, second: int) -> tuple[int, int]:
        return first, self.base_offset + second

    def maybe_append(self, timestamp_ms: int, offset: int) -> None:
        """Append unless the timestamp does not exceed the last entry's (entries must rise)."""
        if self._keys and (timestamp_ms <= self._keys[-1] or offset <= self._values[-1]):
            return
        self._append(timestamp_ms, offset, timestamp_ms, offset - self.base_offset)

    def lookup_before(self, timestamp_ms: int) -> int | None:
        """Offset of the last entry with a timestamp below ``timestamp_ms``: every batch up to
        and including that offset is older, so a scan for ``timestamp_ms`` may start there."""
        index = bisect_right(self._keys, timestamp_ms - 1) - 1
        return self._values[index] if index >= 0 else None

    def last_entry(self) -> tuple[int, int] | None:
        """(timestamp_ms, offset)."""
        return self._last()

    def truncate_to(self, offset: int) -> None:
        """Drop entries pointing at offsets at or after ``offset``."""
        self._truncate_entries(bisect_left(self._values, offset))

    def entries(self) -> list[tuple[int, int]]:
        return list(zip(self._keys, self._values))
