"""All partition logs of a node, in ``<log.dir>/<topic>-<partition>/`` across its log dirs.

Start-up (``load_all``): each log dir is locked (``.lock``, an fcntl lock, so a second broker
on the same directory fails fast), its checkpoints are read, every partition directory is opened
and recovered, and directories left from deletions are removed. A ``.kafka_cleanshutdown``
marker means the last shutdown flushed everything, so segments are trusted without a deep scan;
the marker is removed once loading is done, so a later crash is never mistaken for a clean stop.

Shutdown (``close``): flush every log, write the checkpoints, then the marker.

Offline log directories (Kafka's LogDirFailureChannel): an I/O error (EIO, ENOSPC, ...) while
appending to, flushing or deleting from a log, or writing a directory's checkpoints, takes the
whole log directory offline until a restart:
- every log in it is taken offline (appends, reads and flushes raise StorageError, which the
  broker answers with KAFKA_STORAGE_ERROR); logs in other directories go on;
- nothing more is written there: no flush, no checkpoint, no retention or cleaning, no new
  partition, and no clean-shutdown marker, so the next start recovers the directory from what
  is on disk (everything acknowledged and flushed is still there; see storage.log).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from functools import partial

from protocol.records import CorruptRecordError, InvalidRecordError
from storage.checkpoint import (
    LOG_START_OFFSET_CHECKPOINT,
    RECOVERY_POINT_CHECKPOINT,
    REPLICATION_OFFSET_CHECKPOINT,
    read_offsets,
    write_offsets,
)
from storage.cleaner import CLEANER_OFFSET_CHECKPOINT, clean_log
from storage.config import LogConfig
from storage.errors import StorageError
from storage.fs import REAL_FILE_SYSTEM, FileSystem, remove_tree, write_file_atomically
from storage.log import PartitionLog, wall_clock_ms
from storage.partition_metadata import read_partition_metadata, write_partition_metadata

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
DELETE_DIRECTORY_SUFFIX = "-delete"
# Directories other components own: the KRaft metadata log, and Kafka's JBOD/stray leftovers.
SKIPPED_DIRECTORY_SUFFIXES = ("-future", "-stray")
METADATA_LOG_DIRECTORY = "__cluster_metadata-0"

TopicPartition = tuple[str, int]


def partition_directory_name(topic: str, partition: int) -> str:
    return f"{topic}-{partition}"


def parse_partition_directory_name(name: str) -> TopicPartition | None:
    topic, separator, partition = name.rpartition("-")
    if not separator or not topic or not partition.isdigit():
        return None
    return topic, int(partition)


class LogManager:
    def __init__(self, log_dirs: list[str], default_config: LogConfig, *, fs: FileSystem = REAL_FILE_SYSTEM,
                 clock: Callable[[], int] = wall_clock_ms, broker_epoch: int = 0) -> None:
        if not log_dirs:
            raise StorageError("no log directories configured")
        self.log_dirs = [os.path.abspath(path) for path in log_dirs]
        self.default_config = default_config
        self.broker_epoch = broker_epoch
        self._fs = fs
        self._clock = clock
        self._logs: dict[TopicPartition, PartitionLog] = {}
        self._log_dir_of: dict[TopicPartition, str] = {}
        # The cleaner's first dirty offset per compacted log (cleaner-offset-checkpoint).
        self._first_dirty_offsets: dict[TopicPartition, int] = {}
        self._lock_fds: list[int] = []
        # Offline log dir -> the first error that took it offline.
        self._offline_log_dirs: dict[str, str] = {}
        for log_dir in self.log_dirs:
            self._prepare_log_dir(log_dir)

    def _prepare_log_dir(self, log_dir: str) -> None:
        try:
            self._fs.make_directory(log_dir)
        except OSError as error:
            raise StorageError(f"cannot create log directory {log_dir}: {error}") from error
        self._lock_fds.append(_lock(os.path.join(log_dir, LOCK_FILE), log_dir))

    # ----- start-up ---------------------------------------------------------------------------

    def load_all(self, topic_configs: Mapping[str, LogConfig] | None = None) -> None:
        """Open every partition log (see module docstring); ``topic_configs`` overrides the
        default config per topic."""
        for log_dir in self.log_dirs:
            self._load_log_dir(log_dir, topic_configs or {})

    def _load_log_dir(self, log_dir: str, topic_configs: Mapping[str, LogConfig]) -> None:
        marker = os.path.join(log_dir, CLEAN_SHUTDOWN_FILE)
        clean_shutdown = self._fs.exists(marker)
        recovery_points = read_offsets(self._fs, os.path.join(log_dir, RECOVERY_POINT_CHECKPOINT))
        log_starts = read_offsets(self._fs, os.path.join(log_dir, LOG_START_OFFSET_CHECKPOINT))
        high_watermarks = read_offsets(self._fs, os.path.join(log_dir, REPLICATION_OFFSET_CHECKPOINT))
        self._first_dirty_offsets.update(read_offsets(self._fs, os.path.join(log_dir, CLEANER_OFFSET_CHECKPOINT)))
        for name in self._fs.listdir(log_dir):
            path = os.path.join(log_dir, name)
            if not self._fs.is_directory(path) or name == METADATA_LOG_DIRECTORY:
                continue
            if name.endswith(DELETE_DIRECTORY_SUFFIX):
                remove_tree(self._fs, path)
                continue
            topic_partition = parse_partition_directory_name(name)
            if topic_partition is None or name.endswith(SKIPPED_DIRECTORY_SUFFIXES):
                log.warning("ignoring directory %s: not a <topic>-<partition> log", path)
                continue
            if topic_partition in self._logs:
                raise StorageError(f"{topic_partition} is in both {self._log_dir_of[topic_partition]} and {log_dir}")
            self._register(topic_partition, log_dir, PartitionLog.open(
                path, topic_configs.get(topic_partition[0], self.default_config), self._fs,
                recovery_point=recovery_points.get(topic_partition, 0),
                log_start_offset=log_starts.get(topic_partition, 0),
                high_watermark=high_watermarks.get(topic_partition, 0),
                clean_shutdown=clean_shutdown, clock=self._clock))
        if clean_shutdown:
            self._fs.remove(marker)
            self._fs.fsync_directory(log_dir)

    def _register(self, key: TopicPartition, log_dir: str, partition_log: PartitionLog) -> None:
        self._logs[key] = partition_log
        self._log_dir_of[key] = log_dir
        partition_log.on_offline = partial(self.mark_offline, log_dir)
        if log_dir in self._offline_log_dirs:
            partition_log.take_offline(self._offline_reason(log_dir))

    # ----- offline log directories ------------------------------------------------------------

    def mark_offline(self, log_dir: str, reason: str) -> None:
        """Take ``log_dir`` and every log in it offline (module rules); idempotent."""
        log_dir = os.path.abspath(log_dir)
        assert log_dir in self.log_dirs, f"{log_dir} is not one of this node's log dirs {self.log_dirs}"
        if log_dir in self._offline_log_dirs:
            return
        self._offline_log_dirs[log_dir] = reason
        keys = [key for key, directory in self._log_dir_of.items() if directory == log_dir]
        log.error("log directory %s is offline after an I/O error (%s); %d partitions in it answer "
                  "KAFKA_STORAGE_ERROR until a restart", log_dir, reason, len(keys))
        for key in keys:
            self._logs[key].take_offline(self._offline_reason(log_dir))

    def _offline_reason(self, log_dir: str) -> str:
        return f"log directory {log_dir} is offline: {self._offline_log_dirs[log_dir]}"

    def offline_log_dirs(self) -> dict[str, str]:
        """Offline log dir -> the error that took it offline."""
        return dict(self._offline_log_dirs)

    def is_offline(self, log_dir: str) -> bool:
        return os.path.abspath(log_dir) in self._offline_log_dirs

    def log_dir_of(self, topic: str, partition: int) -> str | None:
        return self._log_dir_of.get((topic, partition))

    def _online_logs(self) -> list[tuple[TopicPartition, PartitionLog]]:
        return [(key, value) for key, value in self._logs.items() if not value.is_offline]

    # ----- partitions -------------------------------------------------------------------------

    def get(self, topic: str, partition: int) -> PartitionLog | None:
        return self._logs.get((topic, partition))

    def logs(self) -> dict[TopicPartition, PartitionLog]:
        return dict(self._logs)

    def topic_id(self, topic: str, partition: int) -> uuid.UUID | None:
        partition_log = self._logs.get((topic, partition))
        return None if partition_log is None else read_partition_metadata(self._fs, partition_log.directory)

    def get_or_create(self, topic: str, partition: int, topic_id: uuid.UUID | None = None,
                      config: LogConfig | None = None) -> PartitionLog:
        """The existing log, or a new one in the log dir holding the fewest partitions. A topic
        id that differs from the one on disk means the name now belongs to another topic."""
        key = (topic, partition)
        existing = self._logs.get(key)
        if existing is not None:
            stored = read_partition_metadata(self._fs, existing.directory)
            if topic_id is not None and stored is not None and stored != topic_id:
                raise StorageError(f"{topic}-{partition} on disk belongs to topic id {stored}, not {topic_id}")
            if topic_id is not None and stored is None:
                write_partition_metadata(self._fs, existing.directory, topic_id)
            if config is not None:
                # Logs loaded at start-up carry the default config until the broker names theirs.
                existing.config = config
            return existing
        online = [path for path in self.log_dirs if path not in self._offline_log_dirs]
        if not online:
            raise StorageError(f"cannot create {topic}-{partition}: every log directory is offline")
        log_dir = min(online, key=lambda path: sum(1 for d in self._log_dir_of.values() if d == path))
        directory = os.path.join(log_dir, partition_directory_name(topic, partition))
        try:
            self._fs.make_directory(directory)
            self._fs.fsync_directory(log_dir)
            if topic_id is not None:
                write_partition_metadata(self._fs, directory, topic_id)
            created = PartitionLog.open(directory, config or self.default_config, self._fs, clock=self._clock)
        except OSError as error:
            self.mark_offline(log_dir, f"creating {topic}-{partition}: {error}")
            raise StorageError(f"cannot create {topic}-{partition} in {log_dir}: {error}") from error
        self._register(key, log_dir, created)
        return created

    def delete(self, topic: str, partition: int) -> bool:
        """Close the log, rename its directory to ``<topic>-<partition>.<uuid>-delete`` (so a
        crash mid-way leaves a name load_all removes), then remove it. False if unknown."""
        key = (topic, partition)
        partition_log = self._logs.pop(key, None)
        if partition_log is None:
            return False
        log_dir = self._log_dir_of.pop(key)
        self._first_dirty_offsets.pop(key, None)
        partition_log.close(flush=False)
        doomed = os.path.join(log_dir, f"{partition_directory_name(topic, partition)}.{uuid.uuid4().hex}"
                                       f"{DELETE_DIRECTORY_SUFFIX}")
        self._fs.rename(partition_log.directory, doomed)
        self._fs.fsync_directory(log_dir)
        remove_tree(self._fs, doomed)
        self.checkpoint()
        return True

    def truncate_to(self, topic: str, partition: int, offset: int) -> None:
        """Truncate a log (a follower diverged from its leader) and checkpoint its dir's
        recovery points at once, as Kafka's LogManager.truncateTo does: recovery trusts
        everything below the checkpointed recovery point without scanning it, so a stale
        checkpoint must not outlive data that was cut and written again."""
        key = (topic, partition)
        self._logs[key].truncate_to(offset)
        self._write_dir_checkpoints(self._log_dir_of[key])

    def truncate_fully_and_start_at(self, topic: str, partition: int, offset: int) -> None:
        """Empty a log and restart it at ``offset`` (a follower below its leader's log start),
        as Kafka's truncateFullyAndStartAt; the checkpoints follow at once, as above."""
        key = (topic, partition)
        self._logs[key].truncate_fully_and_start_at(offset)
        self._write_dir_checkpoints(self._log_dir_of[key])

    # ----- retention --------------------------------------------------------------------------

    def apply_retention(self, now_ms: int | None = None) -> int:
        """Delete segments by retention in every log (storage.retention); returns how many."""
        now_ms = self._clock() if now_ms is None else now_ms
        deleted = 0
        for (topic, partition), partition_log in self._online_logs():
            try:
                count = partition_log.apply_retention(now_ms)
            except (OSError, StorageError) as error:
                # One failing directory must not stop retention elsewhere (nor kill the node).
                log.error("retention of %s-%d failed: %s", topic, partition, error)
                if isinstance(error, OSError):
                    self.mark_offline(self._log_dir_of[(topic, partition)], f"retention: {error}")
                continue
            if count:
                log.info("deleted %d segments of %s-%d by retention; log start offset is now %d",
                         count, topic, partition, partition_log.log_start_offset)
            deleted += count
        return deleted

    def clean_compacted(self, now_ms: int | None = None) -> int:
        """Compact every log whose cleanup.policy includes compact and is due (storage.cleaner);
        returns how many logs were cleaned. The first dirty offsets are checkpointed at once."""
        now_ms = self._clock() if now_ms is None else now_ms
        cleaned = 0
        for key, partition_log in self._online_logs():
            if not partition_log.config.compacts:
                continue
            first_dirty = self._first_dirty_offsets.get(key, partition_log.log_start_offset)
            try:
                result = clean_log(partition_log, first_dirty, now_ms)
            except (OSError, StorageError, CorruptRecordError, InvalidRecordError) as error:
                log.error("cleaning %s-%d failed: %s", key[0], key[1], error)
                if isinstance(error, OSError):
                    self.mark_offline(self._log_dir_of[key], f"cleaning: {error}")
                continue
            if result is None:
                continue
            cleaned += 1
            self._first_dirty_offsets[key] = result.first_dirty_offset
            log.info("cleaned %s-%d up to offset %d: %d segments -> %d, %d records removed, %d -> %d bytes",
                     key[0], key[1], result.first_dirty_offset, result.segments_before, result.segments_after,
                     result.records_removed, result.bytes_before, result.bytes_after)
        if cleaned:
            self._write_cleaner_checkpoints()
        return cleaned

    def first_dirty_offset(self, topic: str, partition: int) -> int | None:
        return self._first_dirty_offsets.get((topic, partition))

    def _write_cleaner_checkpoints(self) -> None:
        for log_dir in self.log_dirs:
            offsets = {key: offset for key, offset in self._first_dirty_offsets.items()
                       if self._log_dir_of.get(key) == log_dir}
            path = os.path.join(log_dir, CLEANER_OFFSET_CHECKPOINT)
            if offsets or self._fs.exists(path):
                write_offsets(self._fs, path, offsets)

    # ----- durability -------------------------------------------------------------------------

    def flush_all(self) -> None:
        for _, partition_log in self._online_logs():
            partition_log.flush()

    def checkpoint(self) -> None:
        """Write the recovery points, log start offsets and high watermarks of every online log
        dir. A dir whose checkpoints cannot be written goes offline; StorageError then names
        it, after the other dirs were written."""
        failed = []
        for log_dir in self.log_dirs:
            try:
                self._write_dir_checkpoints(log_dir)
            except StorageError:
                failed.append(log_dir)
        if failed:
            raise StorageError(f"checkpoints not written; log directories offline: {', '.join(failed)}")

    def _write_dir_checkpoints(self, log_dir: str) -> None:
        if log_dir in self._offline_log_dirs:
            return
        logs = {key: value for key, value in self._logs.items() if self._log_dir_of[key] == log_dir}
        try:
            write_offsets(self._fs, os.path.join(log_dir, RECOVERY_POINT_CHECKPOINT),
                          {key: value.recovery_point for key, value in logs.items()})
            write_offsets(self._fs, os.path.join(log_dir, LOG_START_OFFSET_CHECKPOINT),
                          {key: value.log_start_offset for key, value in logs.items()})
            write_offsets(self._fs, os.path.join(log_dir, REPLICATION_OFFSET_CHECKPOINT),
                          {key: value.high_watermark for key, value in logs.items()})
        except OSError as error:
            self.mark_offline(log_dir, f"writing checkpoints: {error}")
            raise StorageError(f"checkpoints of {log_dir} not written: {error}") from error

    def close(self) -> None:
        """Clean shutdown: close (flushing) every log, checkpoint, mark clean, unlock. An
        offline dir gets no marker, so the next start recovers it."""
        for partition_log in self._logs.values():
            try:
                partition_log.close()
            except StorageError as error:  # its directory is offline now, and was logged
                log.error("closing %s failed: %s", partition_log.directory, error)
        try:
            self.checkpoint()
        except StorageError as error:  # the other dirs' checkpoints were written
            log.error("%s", error)
        marker = json.dumps({"version": 0, "brokerEpoch": self.broker_epoch}).encode("ascii")
        for log_dir in self.log_dirs:
            if log_dir not in self._offline_log_dirs:
                write_file_atomically(self._fs, os.path.join(log_dir, CLEAN_SHUTDOWN_FILE), marker)
        self._logs.clear()
        self._log_dir_of.clear()
        for fd in self._lock_fds:
            os.close(fd)
        self._lock_fds.clear()


def _lock(path: str, log_dir: str) -> int:
    """Hold an exclusive fcntl lock on ``.lock`` for the life of the manager. This uses the
    real OS even with a simulated file system: it guards against a second process."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(fd)
        raise StorageError(f"log directory {log_dir} is locked by another process") from error
    return fd
