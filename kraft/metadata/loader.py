"""The metadata image built from the committed metadata log: one implementation for a
running node and for the simulation (after Kafka's MetadataLoader).

Rules:
- Committed entries arrive in offset order, each one controller write (one or more
  records, ``encode_records``), applied as a whole; control
  entries (leader changes) carry no record and only move the applied offset.
- ``image.offset`` is always the applied offset, so two loaders that have applied the same
  log prefix, or one of them from a snapshot of it, hold equal images (the simulation
  checks exactly that after every event).
- A snapshot replaces the image by the one it encodes (``encode_snapshot``).
This module is pure: bytes in, images out.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from .image import ImageDelta, MetadataImage
from .records import MetadataRecordError, decode_records
from .snapshot import decode_snapshot


class MetadataLoader:
    def __init__(self) -> None:
        self.image = MetadataImage()
        self.applied_offset = -1
        self.bytes_since_snapshot = 0

    def apply_entries(self, entries: Sequence) -> ImageDelta | None:
        """Apply committed entries (any already applied are skipped); the delta of what their records changed, or None when
        they held none (the image then differs from the last one by its offset alone)."""
        entries = [entry for entry in entries if entry.offset > self.applied_offset]
        if not entries:
            return None
        records = []
        for entry in entries:
            self.bytes_since_snapshot += len(entry.payload)
            if entry.control:
                continue
            try:
                records.extend(decode_records(entry.payload))
            except MetadataRecordError as error:
                raise MetadataRecordError(f"metadata entry at offset {entry.offset}: {error}") from None
        last_offset = entries[-1].offset
        self.applied_offset = last_offset
        if not records:
            self.image = replace(self.image, offset=last_offset)
            return None
        self.image, delta = self.image.apply_delta(records, last_offset)
        return delta

    def load_snapshot(self, data: bytes, end_offset: int) -> MetadataImage:
        """Replace the image by a snapshot's; ``end_offset`` is the snapshot's (exclusive) end."""
        self.image = decode_snapshot(data, end_offset - 1)
        self.applied_offset = end_offset - 1
        self.bytes_since_snapshot = 0
        return self.image
