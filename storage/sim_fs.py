"""A simulated disk for tests: a ``FileSystem`` in memory whose ``crash()`` keeps only what
was made durable, so the log engine's recovery can be checked against power loss.

Rules (a simple, pessimistic model of a page cache over a journaling file system):
- A file's bytes are durable as of its last ``fsync``; a name (create, rename, remove) is
  durable as of the last ``fsync_directory`` of its directory. Directories themselves are
  durable once made (the log engine creates them before it relies on them).
- ``crash()`` with profile ``lose``: every file reverts to its durable bytes and every
  directory to its durable names. Open handles become invalid.
- Profile ``torn``: as ``lose``, except that each file keeps the writes made since its last
  fsync up to a seeded-random cut inside its last write (the disk wrote part of it).
- Handles follow the inode, not the name, so a file renamed while open keeps working, as on
  POSIX. ``inject_error`` makes the next matching operations raise an ``OSError`` (ENOSPC,
  EIO), for the engine's error paths.
"""

from __future__ import annotations

import errno
import os
import random
from dataclasses import dataclass, field

PROFILES = ("lose", "torn")


@dataclass
class _Inode:
    data: bytearray = field(default_factory=bytearray)
    durable: bytes = b""
    # Since the last fsync: (position, length, bytes it overwrote) of the last write, and the
    # file's size before it, so a crash can tear it.
    last_write: tuple[int, int, bytes] | None = None
    size_before_last_write: int = 0


class SimFile:
    __slots__ = ("path", "_fs", "_inode", "_generation")

    def __init__(self, fs: SimFileSystem, path: str, inode: _Inode) -> None:
        self.path = path
        self._fs = fs
        self._inode = inode
        self._generation = fs.generation

    def _check(self, operation: str) -> _Inode:
        if self._generation != self._fs.generation:
            raise OSError(errno.EBADF, f"{self.path}: handle from before a crash")
        self._fs.maybe_fail(operation, self.path)
        return self._inode

    def pread(self, length: int, position: int) -> bytes:
        inode = self._check("read")
        return bytes(inode.data[position:position + length])

    def pwrite(self, data: bytes | bytearray | memoryview, position: int) -> None:
        inode = self._check("write")
        data = bytes(data)
        inode.size_before_last_write = len(inode.data)
        inode.last_write = (position, len(data), bytes(inode.data[position:position + len(data)]))
        if position > len(inode.data):
            inode.data.extend(b"\0" * (position - len(inode.data)))
        inode.data[position:position + len(data)] = data

    def size(self) -> int:
        return len(self._check("stat").data)

    def truncate(self, size: int) -> None:
        inode = self._check("write")
        if size < len(inode.data):
            del inode.data[size:]
        else:
            inode.data.extend(b"\0" * (size - len(inode.data)))
        inode.last_write = None

    def fsync(self) -> None:
        inode = self._check("fsync")
        inode.durable = bytes(inode.data)
        inode.last_write = None

    def close(self) -> None:
        pass

    def fileno(self) -> int | None:
        return None


class SimFileSystem:
    def __init__(self, seed: int = 0) -> None:
        self._names: dict[str, _Inode] = {}
        self._durable_names: dict[str, _Inode] = {}
        self._directories: set[str] = {"/"}
        self._random = random.Random(seed)
        self._failures: list[tuple[str, str, int, int]] = []  # (operation, path part, errno, count)
        self.generation = 0
        self.crashes = 0

    # ----- faults -------------------------------------------------------------------------------

    def inject_error(self, operation: str, error: int = errno.ENOSPC, *, path_contains: str = "",
                     count: int = 1) -> None:
        """The next ``count`` ``operation``s (write, fsync, read, rename, ...) on a matching
        path raise ``OSError(error)``."""
        self._failures.append((operation, path_contains, error, count))

    def maybe_fail(self, operation: str, path: str) -> None:
        for index, (wanted, part, error, count) in enumerate(self._failures):
            if wanted == operation and part in path:
                if count <= 1:
                    del self._failures[index]
                else:
                    self._failures[index] = (wanted, part, error, count - 1)
                raise OSError(error, f"{os.strerror(error)} (simulated): {path}")

    def crash(self, profile: str = "lose") -> None:
        """Power loss (module rules); every open handle becomes invalid."""
        assert profile in PROFILES, f"unknown crash profile {profile!r}"
        self.generation += 1
        self.crashes += 1
        self._names = dict(self._durable_names)
        reverted: set[int] = set()
        for inode in self._names.values():
            if id(inode) not in reverted:
                reverted.add(id(inode))
                self._revert(inode, profile)

    def _revert(self, inode: _Inode, profile: str) -> None:
        if profile == "torn" and inode.last_write is not None:
            position, length, overwritten = inode.last_write
            cut = self._random.randrange(length) if length else 0
            # The first ``cut`` bytes of the last write reached the disk, the rest did not.
            inode.data[position + cut:position + len(overwritten)] = overwritten[cut:]
            del inode.data[max(inode.size_before_last_write, position + cut):]
        elif profile == "lose":
            inode.data = bytearray(inode.durable)
        inode.durable = bytes(inode.data)
        inode.last_write = None

    # ----- the FileSystem interface -----------------------------------------------------------

    @staticmethod
    def _normal(path: str) -> str:
        return os.path.normpath(os.path.join("/", path))

    def open(self, path: str, *, create: bool = True) -> SimFile:
        path = self._normal(path)
        inode = self._names.get(path)
        if inode is None:
            if not create:
                raise FileNotFoundError(errno.ENOENT, "No such file", path)
            if os.path.dirname(path) not in self._directories:
                raise FileNotFoundError(errno.ENOENT, "No such directory", os.path.dirname(path))
            self.maybe_fail("create", path)
            inode = self._names[path] = _Inode()
        return SimFile(self, path, inode)

    def exists(self, path: str) -> bool:
        path = self._normal(path)
        return path in self._names or path in self._directories

    def is_directory(self, path: str) -> bool:
        return self._normal(path) in self._directories

    def listdir(self, path: str) -> list[str]:
        path = self._normal(path)
        if path not in self._directories:
            raise FileNotFoundError(errno.ENOENT, "No such directory", path)
        names = {os.path.basename(p) for p in list(self._names) + list(self._directories)
                 if os.path.dirname(p) == path and p != path}
        return sorted(names)

    def make_directory(self, path: str) -> None:
        path = self._normal(path)
        while path not in self._directories:
            self._directories.add(path)
            path = os.path.dirname(path)

    def remove(self, path: str) -> None:
        path = self._normal(path)
        self.maybe_fail("remove", path)
        if self._names.pop(path, None) is None:
            raise FileNotFoundError(errno.ENOENT, "No such file", path)

    def remove_directory(self, path: str) -> None:
        path = self._normal(path)
        if self.listdir(path):
            raise OSError(errno.ENOTEMPTY, "Directory not empty", path)
        self._directories.discard(path)

    def rename(self, source: str, destination: str) -> None:
        source, destination = self._normal(source), self._normal(destination)
        self.maybe_fail("rename", source)
        if source in self._directories:
            moved = [p for p in list(self._names) if p.startswith(source + "/")]
            for old in moved:
                self._names[destination + old[len(source):]] = self._names.pop(old)
            self._directories = {destination + d[len(source):] if d == source or d.startswith(source + "/")
                                 else d for d in self._directories}
            return
        inode = self._names.pop(source, None)
        if inode is None:
            raise FileNotFoundError(errno.ENOENT, "No such file", source)
        self._names[destination] = inode

    def fsync_directory(self, path: str) -> None:
        path = self._normal(path)
        self.maybe_fail("fsync", path)
        for name in [p for p in self._durable_names if os.path.dirname(p) == path]:
            del self._durable_names[name]
        for name, inode in self._names.items():
            if os.path.dirname(name) == path:
                self._durable_names[name] = inode

    # ----- inspection for tests -----------------------------------------------------------------

    def file_bytes(self, path: str) -> bytes:
        return bytes(self._names[self._normal(path)].data)
