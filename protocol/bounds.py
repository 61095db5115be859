"""Array counts checked against the bytes that remain, before kio's native reader runs.

Why this exists: kio's reader reserves room for an array's declared element count before
it reads any element, so a request of a dozen bytes that declares 2**32 elements makes the
allocator abort the whole process, which no ``except`` can catch (found by the bad-input
fuzz test: a CreateTopics v5 frame with a compact array length of 0xffffffff). Every
element takes at least one byte on the wire, so a count larger than the bytes left (or,
for fixed-width elements, count times width) is a lie, and the frame is refused with
``ValueError`` before kio allocates anything.

Rules: the walk reads lengths only, in schema order, with the same encodings kio uses
(legacy int16/int32 lengths in classic versions, unsigned varints plus one in flexible
ones, tagged fields as tag, size, value). Each step moves forward by at least one byte or
stops, so the walk costs time linear in the frame. It never builds values; bytes it
cannot make sense of are left for kio to reject with its own message.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
from typing import Any

from kio.serial._introspect import (
    EntityField, EntityTupleField, PrimitiveTupleField, classify_field, is_optional,
)

FIXED_WIDTHS = {
    "bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "error_code": 2,
    "int32": 4, "uint32": 4, "timedelta_i32": 4, "int64": 8, "uint64": 8,
    "timedelta_i64": 8, "datetime_i64": 8, "float64": 8, "uuid": 16,
}
VARIABLE_KINDS = {"string": 2, "bytes": 4, "records": 4}  # legacy length prefix width
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")


class ArrayCountTooLarge(ValueError):
    """An array declares more elements than the remaining bytes could hold."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Step:
    kind: str  # "fixed", "variable" or "entity"
    width: int  # fixed: bytes; variable: legacy length prefix bytes
    entity: type | None
    is_array: bool
    presence_byte: bool = False  # a nullable struct: int8 -1 for null, 1 for present


@functools.cache
def _plan(cls: type) -> tuple[tuple[_Step, ...], dict[int, _Step]]:
    """The ordered steps of an entity's body and its tagged fields by tag."""
    ordered, tagged = [], {}
    for field in dataclasses.fields(cls):
        shape = classify_field(field)
        is_array = isinstance(shape, (EntityTupleField, PrimitiveTupleField))
        if isinstance(shape, (EntityField, EntityTupleField)):
            step = _Step("entity", 0, shape.type_, is_array,
                         presence_byte=not is_array and is_optional(field))
        else:
            kafka_type = field.metadata["kafka_type"]
            if kafka_type in FIXED_WIDTHS:
                step = _Step("fixed", FIXED_WIDTHS[kafka_type], None, is_array)
            elif kafka_type in VARIABLE_KINDS:
                step = _Step("variable", VARIABLE_KINDS[kafka_type], None, is_array)
            else:
                raise LookupError(f"{cls.__name__}.{field.name}: unknown kafka_type {kafka_type!r}")
        if "tag" in field.metadata:
            tagged[field.metadata["tag"]] = step
        else:
            ordered.append(step)
    return tuple(ordered), tagged


def check_array_counts(cls: type, data: Any, position: int) -> None:
    """Raise ArrayCountTooLarge if an array in the ``cls`` body at ``position`` lies."""
    _Walk(data, cls.__flexible__).entity(cls, position, len(data))


class _Walk:
    __slots__ = ("data", "flexible")

    def __init__(self, data: Any, flexible: bool) -> None:
        self.data = data
        self.flexible = flexible

    def uvarint(self, position: int, end: int) -> tuple[int, int]:
        value = shift = 0
        while position < end and shift < 35:
            byte = self.data[position]
            position += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value, position
            shift += 7
        raise EOFError

    def length(self, legacy_width: int, position: int, end: int) -> tuple[int, int]:
        """(length or -1 for null, position after the prefix)."""
        if self.flexible:
            value, position = self.uvarint(position, end)
            return value - 1, position
        if position + legacy_width > end:
            raise EOFError
        codec = _INT16 if legacy_width == 2 else _INT32
        return codec.unpack_from(self.data, position)[0], position + legacy_width

    def entity(self, cls: type, position: int, end: int) -> int:
        ordered, tagged = _plan(cls)
        try:
            for step in ordered:
                position = self.field(step, position, end)
            if self.flexible:
                position = self.tagged(tagged, position, end)
        except EOFError:
            return end  # truncated: kio reports it
        return position

    def tagged(self, tagged: dict[int, _Step], position: int, end: int) -> int:
        count, position = self.uvarint(position, end)
        if count > end - position:
            raise ArrayCountTooLarge(f"{count} tagged fields in {end - position} bytes")
        for _ in range(count):
            tag, position = self.uvarint(position, end)
            size, position = self.uvarint(position, end)
            if size > end - position:
                raise EOFError
            if tag in tagged:
                self.field(tagged[tag], position, position + size)
            position += size
        return position

    def field(self, step: _Step, position: int, end: int) -> int:
        if not step.is_array:
            return self.value(step, position, end)
        count, position = self.length(4, position, end)
        if count < 0:
            return position
        element_bytes_min = step.width if step.kind == "fixed" else 1
        if count * element_bytes_min > end - position:
            raise ArrayCountTooLarge(
                f"array of {count} elements in {end - position} remaining bytes")
        if step.kind == "fixed":
            return position + count * step.width
        for _ in range(count):
            position = self.value(step, position, end)
        return position

    def value(self, step: _Step, position: int, end: int) -> int:
        if step.kind == "fixed":
            return position + step.width
        if step.kind == "entity":
            if step.presence_byte:
                if position >= end:
                    raise EOFError
                if self.data[position] == 0xFF:
                    return position + 1
                position += 1
            return self.entity(step.entity, position, end)
        size, position = self.length(step.width, position, end)
        return position + max(size, 0)
