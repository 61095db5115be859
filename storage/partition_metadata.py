"""``partition.metadata``: the topic id a partition directory belongs to, so a directory left
from a deleted topic of the same name is never mistaken for the new one."""

from __future__ import annotations

import base64
import os
import uuid

from storage.fs import FileSystem, read_whole_file, write_file_atomically

PARTITION_METADATA_FILE = "partition.metadata"
PARTITION_METADATA_VERSION = 0
PARTITION_METADATA_BYTES_MAX = 1024


def encode_topic_id(topic_id: uuid.UUID) -> str:
    """Kafka's Uuid.toString: URL-safe base64 of the 16 bytes, without padding."""
    return base64.urlsafe_b64encode(topic_id.bytes).decode("ascii").rstrip("=")


def decode_topic_id(text: str) -> uuid.UUID:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if len(raw) != 16:
        raise ValueError(f"topic id {text!r} is {len(raw)} bytes, expected 16")
    return uuid.UUID(bytes=raw)


def write_partition_metadata(fs: FileSystem, directory: str, topic_id: uuid.UUID) -> None:
    text = f"version: {PARTITION_METADATA_VERSION}\ntopic_id: {encode_topic_id(topic_id)}"
    write_file_atomically(fs, os.path.join(directory, PARTITION_METADATA_FILE), text.encode("ascii"))


def read_partition_metadata(fs: FileSystem, directory: str) -> uuid.UUID | None:
    """The topic id, or None when the file is missing or unreadable."""
    path = os.path.join(directory, PARTITION_METADATA_FILE)
    if not fs.exists(path):
        return None
    try:
        data = read_whole_file(fs, path)
        if len(data) > PARTITION_METADATA_BYTES_MAX:
            return None
        fields = dict(line.split(": ", 1) for line in data.decode("ascii").splitlines() if line)
        if fields.get("version") != str(PARTITION_METADATA_VERSION):
            return None
        return decode_topic_id(fields["topic_id"])
    except (OSError, ValueError, KeyError):
        return None
