"""Kafka's text form of a UUID (``Uuid.toString``): URL-safe base64 of the 16 bytes, unpadded.

Topic ids, cluster ids and log directory ids are all written this way, in files
(``meta.properties``, ``partition.metadata``, ``quorum-state``) and in tool output.
"""

from __future__ import annotations

import base64
import uuid


def uuid_to_text(value: uuid.UUID | None) -> str:
    """The text form; None is Kafka's zero UUID (``AAAAAAAAAAAAAAAAAAAAAA``)."""
    raw = value.bytes if value is not None else bytes(16)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def uuid_from_text(text: str) -> uuid.UUID:
    """The UUID a text form names; ValueError when it is not base64 of 16 bytes."""
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if len(raw) != 16:
        raise ValueError(f"{text!r} is {len(raw)} bytes, expected the 16 bytes of a UUID")
    return uuid.UUID(bytes=raw)
