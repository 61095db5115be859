"""Building kio response values for whichever version a client asked for.

Each Kafka API has one kio class per version, and versions differ only in which
fields exist. Handlers describe a response once with every field they know; ``make``
keeps the fields the chosen version has and converts plain numbers to the kinds kio
writes (``ErrorCode`` members, ``timedelta`` durations, UUIDs, datetimes).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import sys
import uuid
from typing import Any

from kio.schema.errors import ErrorCode

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


@functools.cache
def _fields(cls: type) -> dict[str, str]:
    return {f.name: f.metadata.get("kafka_type", "") for f in dataclasses.fields(cls)}


def _convert(kafka_type: str, value: Any) -> Any:
    if kafka_type == "error_code" and not isinstance(value, ErrorCode):
        return ErrorCode(value)
    if kafka_type.startswith("timedelta") and isinstance(value, int):
        return datetime.timedelta(milliseconds=value)
    if kafka_type == "datetime_i64" and isinstance(value, int):
        return None if value < 0 else EPOCH + datetime.timedelta(milliseconds=value)
    if kafka_type == "uuid" and isinstance(value, str):
        return uuid.UUID(value)
    return value


def make(cls: type, **values: Any) -> Any:
    """An instance of ``cls`` from whichever of ``values`` it has fields for."""
    fields = _fields(cls)
    kwargs = {
        name: _convert(fields[name], value) for name, value in values.items() if name in fields
    }
    return cls(**kwargs)


def nested(cls: type, name: str) -> type | None:
    """The nested class ``name`` defined beside the message class ``cls``, if this
    version has it (older versions lack some nested entities)."""
    return getattr(sys.modules[cls.__module__], name, None)


def has_field(cls: type, name: str) -> bool:
    return name in _fields(cls)


def to_millis(value: datetime.timedelta | int | None) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime.timedelta):
        return int(value.total_seconds() * 1000)
    return int(value)
