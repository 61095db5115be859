"""A Raft quorum of one voter over ``__cluster_metadata-0``.

Rules:
- On start the voter reads ``quorum-state``, takes the next epoch and persists it
  (write-temp, fsync, rename) before appending anything in that epoch, so an epoch is
  never reused after a crash.
- ``append`` writes one record batch stamped with the epoch and fsyncs it before
  returning: with one voter, durable on this node is committed.
- ``replay`` yields every committed batch's records in offset order; a batch whose
  records do not decode stops start-up with an error naming the offset, because a
  silently skipped fact would give this node a different image from its peers.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Iterator, Sequence

from protocol.records import RecordInput, build_batch, decode_batch, iter_batches
from storage.config import LogConfig
from storage.fs import REAL_FILE_SYSTEM, write_file_atomically
from storage.log import PartitionLog

from ..metadata import MetadataRecordError, decode_record, encode_record

logger = logging.getLogger(__name__)
METADATA_PARTITION = "__cluster_metadata-0"
QUORUM_STATE_FILE = "quorum-state"
REPLAY_READ_BYTES = 1 << 20


class MetadataLogError(Exception):
    """The metadata log or quorum state cannot be used; the node must not start."""


class SingleVoterRaft:
    def __init__(self, metadata_dir: str, node_id: int, segment_bytes: int) -> None:
        self.node_id = node_id
        self.directory = os.path.join(metadata_dir, METADATA_PARTITION)
        os.makedirs(self.directory, exist_ok=True)
        self._state_path = os.path.join(self.directory, QUORUM_STATE_FILE)
        self.epoch = self._read_epoch()
        self.log = PartitionLog.open(self.directory, LogConfig(segment_bytes=segment_bytes),
                                     REAL_FILE_SYSTEM)
        self.log.high_watermark = self.log.log_end_offset

    def _read_epoch(self) -> int:
        if not os.path.exists(self._state_path):
            return 0
        try:
            with open(self._state_path, encoding="utf-8") as handle:
                return int(json.load(handle)["leaderEpoch"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise MetadataLogError(f"unreadable {self._state_path}: {error}") from error

    def become_leader(self) -> int:
        """Start the next epoch with this node as leader; persisted before use."""
        self.epoch += 1
        state = {"leaderId": self.node_id, "leaderEpoch": self.epoch, "votedId": self.node_id,
                 "votedDirectoryId": None, "data_version": 1}
        write_file_atomically(REAL_FILE_SYSTEM, self._state_path, json.dumps(state).encode())
        logger.info("[node %d] metadata quorum leader in epoch %d", self.node_id, self.epoch)
        return self.epoch

    @property
    def high_watermark(self) -> int:
        return self.log.high_watermark

    def append(self, records: Sequence) -> tuple[int, int]:
        """Append and commit ``records`` as one batch; returns (first, last) offsets."""
        assert records, "an empty metadata append is a controller bug"
        batch = build_batch([RecordInput(value=encode_record(r)) for r in records],
                            partition_leader_epoch=self.epoch)
        result = self.log.append(bytearray(batch), leader_epoch=self.epoch)
        self.log.flush()
        self.log.high_watermark = self.log.log_end_offset
        return result.first_offset, result.last_offset

    def replay(self, start_offset: int = 0) -> Iterator[tuple[int, list]]:
        """(last offset, records) of every committed batch from ``start_offset``."""
        offset = max(start_offset, self.log.log_start_offset)
        while offset < self.log.high_watermark:
            data = self.log.read(offset, REPLAY_READ_BYTES, max_offset=self.log.high_watermark).records
            if not data:
                return
            for position, header in iter_batches(data):
                try:
                    _, entries = decode_batch(data, position)
                    records = [decode_record(entry.value) for entry in entries]
                except (MetadataRecordError, ValueError) as error:
                    raise MetadataLogError(
                        f"metadata batch at offset {header.base_offset} is unreadable: {error}") from error
                yield header.last_offset, records
                offset = header.next_offset

    def close(self) -> None:
        self.log.close()
