"""How the core's ``Entry`` values travel (Fetch) and rest (the ``__cluster_metadata-0`` log)
as Kafka record batches (RecordBatch v2).

Rules:
- One record per entry: offset = the entry's offset, value = its payload, no key, no
  headers. The batch's ``partitionLeaderEpoch`` is the entry's epoch, as Kafka stamps
  every batch with the epoch of the leader that appended it, so the leader-epoch cache
  of ``storage`` and the core's epoch history agree.
- Consecutive data entries of one epoch share a batch, up to ``BATCH_ENTRIES_MAX``; a
  new epoch or a control entry starts a new batch, so a batch never spans two epochs.
- A control entry (the core's LeaderChange) is alone in a control batch (attributes bit
  5), its record key Kafka's control key (version 0, type LEADER_CHANGE = 2). Its value is
  the core's payload verbatim, not Kafka's LeaderChangeMessage schema: the core owns that
  encoding, and a Kafka controller reading our log would have to be taught it.
- Timestamps are 0: an entry carries no time, and a batch re-encoded anywhere (leader,
  follower, recovery) is then the same bytes.
- Decoding checks what encoding promises: CRCs, one epoch per batch, dense offsets. A
  broken batch is the sender's (or the disk's) fault and raises ``ValueError``.
"""

from __future__ import annotations

import struct
from typing import Iterable, Iterator

from protocol.records import (RecordInput, build_batch, decode_batch, iter_batches)

from .log import Entry

BATCH_ENTRIES_MAX = 1000
CONTROL_TYPE_LEADER_CHANGE = 2
LEADER_CHANGE_KEY = struct.pack(">hh", 0, CONTROL_TYPE_LEADER_CHANGE)


def group_entries(entries: Iterable[Entry]) -> Iterator[list[Entry]]:
    """Runs of entries that go into one batch each (rules above)."""
    group: list[Entry] = []
    for entry in entries:
        if group and (entry.control or group[0].control or entry.epoch != group[0].epoch
                      or len(group) >= BATCH_ENTRIES_MAX):
            yield group
            group = []
        if group:
            assert entry.offset == group[-1].offset + 1, f"entries not dense at {entry.offset}"
        group.append(entry)
    if group:
        yield group


def encode_batch(group: list[Entry]) -> bytes:
    first = group[0]
    if first.control:
        records = [RecordInput(key=LEADER_CHANGE_KEY, value=first.payload)]
    else:
        records = [RecordInput(value=entry.payload) for entry in group]
    return build_batch(records, base_offset=first.offset, partition_leader_epoch=first.epoch,
                       timestamp_ms=0, is_control=first.control)


def encode_entries(entries: Iterable[Entry]) -> bytes:
    """The entries as consecutive record batches (b"" for none)."""
    return b"".join(encode_batch(group) for group in group_entries(entries))


def decode_entries(data: bytes | bytearray | memoryview, *, expected_offset: int | None = None
                   ) -> list[Entry]:
    """Entries of every complete batch in ``data`` (a partial last batch, as a Fetch cut at
    its byte limit may end with, is left out). Offsets must be dense, from
    ``expected_offset`` when given."""
    entries: list[Entry] = []
    next_offset = expected_offset
    for position, header in iter_batches(data):
        _, records = decode_batch(data, position)
        if header.is_control and len(records) != 1:
            raise ValueError(f"control batch at offset {header.base_offset} holds {len(records)} records")
        for record in records:
            if next_offset is not None and record.offset != next_offset:
                raise ValueError(f"record at offset {record.offset}, expected {next_offset}")
            entries.append(Entry(record.offset, header.partition_leader_epoch,
                                 bytes(record.value or b""), control=header.is_control))
            next_offset = record.offset + 1
    return entries
