"""The one door through which the log engine touches the disk.

Every read, write, fsync and rename in ``storage/`` goes through a ``FileSystem`` so that tests
can later run the same engine on a simulated disk that forgets un-fsynced writes on a crash.
The interface is deliberately small: positional I/O (no shared file cursor, so a reader and a
writer never disturb each other), explicit ``fsync`` for files and directories (a rename is only
durable once its directory is synced), and the handful of namespace operations the engine needs.
"""

from __future__ import annotations

import os
from typing import Protocol

# Creating files readable by the broker's user only would surprise operators used to Kafka,
# which creates data files with the process umask; we do the same.
FILE_MODE = 0o644


class File(Protocol):
    """An open file used with explicit positions; ``size`` is the current length in bytes."""

    path: str

    def pread(self, length: int, position: int) -> bytes: ...
    def pwrite(self, data: bytes | bytearray | memoryview, position: int) -> None: ...
    def size(self) -> int: ...
    def truncate(self, size: int) -> None: ...
    def fsync(self) -> None: ...
    def close(self) -> None: ...
    def fileno(self) -> int | None: ...


class FileSystem(Protocol):
    def open(self, path: str, *, create: bool = True) -> File: ...
    def exists(self, path: str) -> bool: ...
    def is_directory(self, path: str) -> bool: ...
    def listdir(self, path: str) -> list[str]: ...
    def make_directory(self, path: str) -> None: ...
    def remove(self, path: str) -> None: ...
    def remove_directory(self, path: str) -> None: ...
    def rename(self, source: str, destination: str) -> None: ...
    def fsync_directory(self, path: str) -> None: ...


class RealFile:
    """A file descriptor opened read-write; writes are positional so no cursor is shared."""

    __slots__ = ("path", "_fd")

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd = fd

    def pread(self, length: int, position: int) -> bytes:
        chunks = []
        while length > 0:
            chunk = os.pread(self._fd, length, position)
            if not chunk:
                break
            chunks.append(chunk)
            length -= len(chunk)
            position += len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def pwrite(self, data: bytes | bytearray | memoryview, position: int) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, position)
            view = view[written:]
            position += written

    def size(self) -> int:
        return os.fstat(self._fd).st_size

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)

    def fsync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def fileno(self) -> int | None:
        """For ``os.sendfile``; a simulated file has none."""
        return self._fd if self._fd >= 0 else None


class RealFileSystem:
    """The operating system's file system."""

    def open(self, path: str, *, create: bool = True) -> RealFile:
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        return RealFile(path, os.open(path, flags, FILE_MODE))

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def is_directory(self, path: str) -> bool:
        return os.path.isdir(path)

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(path))

    def make_directory(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def remove(self, path: str) -> None:
        os.remove(path)

    def remove_directory(self, path: str) -> None:
        os.rmdir(path)

    def rename(self, source: str, destination: str) -> None:
        os.replace(source, destination)

    def fsync_directory(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


REAL_FILE_SYSTEM = RealFileSystem()


def read_whole_file(fs: FileSystem, path: str) -> bytes:
    """Small files only (checkpoints, snapshots): the caller bounds the size it accepts."""
    file = fs.open(path, create=False)
    try:
        return file.pread(file.size(), 0)
    finally:
        file.close()


def write_file_atomically(fs: FileSystem, path: str, data: bytes) -> None:
    """Temp file, fsync, rename over the target, fsync the directory: after a crash a reader
    sees either the old file or the new one, never a mix."""
    temp_path = path + ".tmp"
    file = fs.open(temp_path)
    try:
        file.truncate(0)
        file.pwrite(data, 0)
        file.fsync()
    finally:
        file.close()
    fs.rename(temp_path, path)
    fs.fsync_directory(os.path.dirname(path) or ".")


def remove_tree(fs: FileSystem, path: str) -> None:
    """Remove a directory and everything in it, depth first."""
    for name in fs.listdir(path):
        child = os.path.join(path, name)
        if fs.is_directory(child):
            remove_tree(fs, child)
        else:
            fs.remove(child)
    fs.remove_directory(path)
