"""Text in, records out and back: Kafka's LineMessageReader and DefaultMessageFormatter.

Both are pure and follow Apache Kafka 4.x behaviour property by property, because scripts
written against Kafka's console tools parse our output and feed us their input.

LineMessageReader (console producer ``--property``):
    parse.key / key.separator (tab), parse.headers / headers.delimiter (tab) /
    headers.separator (``,``, a regular expression as in Java) / headers.key.separator (``:``),
    ignore.error, null.marker. A line reads ``h1:v1,h2:v2<TAB>key<TAB>value``.

DefaultMessageFormatter (console consumer ``--property``/``--formatter-property``):
    prints, in this order and separated by key.separator, ``CreateTime:<ms>``,
    ``Partition:<p>``, ``Offset:<o>``, headers as ``k:v`` joined by headers.separator
    (``NO_HEADERS`` when there are none), the key, then the value and line.separator. A null
    key, value or header value prints null.literal (``null``).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any, BinaryIO

from tools.common import ToolError, parse_bool

Headers = tuple[tuple[str, bytes | None], ...]

TIMESTAMP_TYPE_NAMES = {0: "CreateTime", 1: "LogAppendTime"}


class MessageFormatError(ToolError):
    """A line the reader cannot parse, or reader properties that contradict each other."""


@dataclass(frozen=True, slots=True)
class LineRecord:
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


class LineMessageReader:
    """Turns input lines into records the way Kafka's console producer does."""

    def __init__(self, properties: dict[str, str] | None = None) -> None:
        properties = properties or {}
        self.parse_key = parse_bool(properties.get("parse.key", "false"))
        self.key_separator = properties.get("key.separator", "\t")
        self.parse_headers = parse_bool(properties.get("parse.headers", "false"))
        self.headers_delimiter = properties.get("headers.delimiter", "\t")
        self.headers_separator = properties.get("headers.separator", ",")
        self.headers_key_separator = properties.get("headers.key.separator", ":")
        self.ignore_error = parse_bool(properties.get("ignore.error", "false"))
        self.null_marker = properties.get("null.marker")
        self._check_separators()
        try:
            self._headers_pattern = re.compile(self.headers_separator)
        except re.error as error:
            raise MessageFormatError(f"invalid headers.separator {self.headers_separator!r}: {error}")
        self.line_number = 0

    def _check_separators(self) -> None:
        distinct = [
            ("headers.delimiter", self.headers_delimiter, "headers.separator", self.headers_separator),
            ("headers.delimiter", self.headers_delimiter, "headers.key.separator", self.headers_key_separator),
            ("headers.separator", self.headers_separator, "headers.key.separator", self.headers_key_separator),
            ("null.marker", self.null_marker, "key.separator", self.key_separator),
            ("null.marker", self.null_marker, "headers.separator", self.headers_separator),
            ("null.marker", self.null_marker, "headers.delimiter", self.headers_delimiter),
            ("null.marker", self.null_marker, "headers.key.separator", self.headers_key_separator),
        ]
        for first_name, first, second_name, second in distinct:
            if first is not None and first == second:
                raise MessageFormatError(f"{first_name} and {second_name} may not be equal")

    def read(self, line: str) -> LineRecord:
        """Parse one line (without its line terminator)."""
        self.line_number += 1
        headers = self._cut(self.parse_headers, line, 0, self.headers_delimiter, "headers delimiter")
        header_end = 0 if headers is None else len(headers) + len(self.headers_delimiter)
        key = self._cut(self.parse_key, line, header_end, self.key_separator, "key separator")
        key_end = 0 if key is None else len(key) + len(self.key_separator)
        value = line[header_end + key_end :]
        parsed_headers: Headers = ()
        if headers is not None and headers != self.null_marker:
            parsed_headers = self._split_headers(headers)
        return LineRecord(self._encode(key), self._encode(value), parsed_headers)

    def _encode(self, text: str | None) -> bytes | None:
        if text is None or text == self.null_marker:
            return None
        return text.encode("utf-8")

    def _cut(self, enabled: bool, line: str, start: int, separator: str, name: str) -> str | None:
        if not enabled:
            return None
        index = line.find(separator, start)
        if index == -1:
            if self.ignore_error:
                return None
            raise MessageFormatError(f"No {name} found on line number {self.line_number}: '{line}'")
        return line[start:index]

    def _split_headers(self, headers: str) -> Headers:
        result = []
        for pair in _java_split(self._headers_pattern, headers):
            index = pair.find(self.headers_key_separator)
            if index == -1:
                if self.ignore_error:
                    result.append((pair, None))
                    continue
                raise MessageFormatError(
                    f"No header key separator found in pair '{pair}' on line number {self.line_number}"
                )
            name = pair[:index]
            if name == self.null_marker:
                raise MessageFormatError(
                    f"Header keys should not be equal to the null marker '{self.null_marker}'"
                    " as they can't be null"
                )
            value = pair[index + len(self.headers_key_separator) :]
            result.append((name, None if value == self.null_marker else value.encode("utf-8")))
        return tuple(result)


def _java_split(pattern: re.Pattern[str], text: str) -> list[str]:
    """``Pattern.split(text)``: like re.split, but trailing empty strings are dropped and a
    zero-width match at the start yields no leading empty string."""
    if pattern.search(text) is None:
        return [text]
    parts = []
    position = 0
    for match in pattern.finditer(text):
        if match.end() == 0:
            continue
        parts.append(text[position : match.start()])
        position = match.end()
    parts.append(text[position:])
    while parts and parts[-1] == "":
        parts.pop()
    return parts


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    partition: int
    offset: int
    timestamp: int
    timestamp_type: int | None
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


class DefaultMessageFormatter:
    """Formats consumed records byte for byte as Kafka's DefaultMessageFormatter."""

    def __init__(self, properties: dict[str, str] | None = None) -> None:
        properties = properties or {}

        def flag(name: str, default: bool) -> bool:
            return parse_bool(properties[name]) if name in properties else default

        def text(name: str, default: str) -> bytes:
            return properties.get(name, default).encode("utf-8")

        self.print_timestamp = flag("print.timestamp", False)
        self.print_key = flag("print.key", False)
        self.print_value = flag("print.value", True)
        self.print_partition = flag("print.partition", False)
        self.print_offset = flag("print.offset", False)
        self.print_headers = flag("print.headers", False)
        self.key_separator = text("key.separator", "\t")
        self.line_separator = text("line.separator", "\n")
        self.headers_separator = text("headers.separator", ",")
        self.null_literal = text("null.literal", "null")

    def format(self, record: ConsumedRecord) -> bytes:
        """The output for one record. Fields are joined by key.separator; the last printed
        field is followed by line.separator (so printing no value still ends the line)."""
        fields: list[bytes] = []
        if self.print_timestamp:
            if record.timestamp_type in TIMESTAMP_TYPE_NAMES:
                fields.append(f"{TIMESTAMP_TYPE_NAMES[record.timestamp_type]}:{record.timestamp}".encode())
            else:
                fields.append(b"NO_TIMESTAMP")
        if self.print_partition:
            fields.append(b"Partition:%d" % record.partition)
        if self.print_offset:
            fields.append(b"Offset:%d" % record.offset)
        if self.print_headers:
            fields.append(self._headers(record.headers))
        if self.print_key:
            fields.append(self._nullable(record.key))
        if self.print_value:
            fields.append(self._nullable(record.value))
        if not fields:
            return b""
        return self.key_separator.join(fields) + self.line_separator

    def _nullable(self, data: bytes | None) -> bytes:
        return self.null_literal if data is None else bytes(data)

    def _headers(self, headers: Headers) -> bytes:
        if not headers:
            return b"NO_HEADERS"
        return self.headers_separator.join(
            name.encode("utf-8") + b":" + self._nullable(value) for name, value in headers
        )


# --- what the console consumers share -------------------------------------------------------

ISOLATION_LEVELS = {"read_uncommitted": 0, "read_committed": 1}


def write_records(records: list[Any], formatter: Any, output: BinaryIO, counter: list[int], limit: int | None) -> bool:
    """Print records up to the limit; False when stdout is gone (Kafka's checkError)."""
    try:
        for record in records:
            if limit is not None and counter[0] >= limit:
                break
            counter[0] += 1
            output.write(formatter.format(record))
        output.flush()
    except BrokenPipeError:
        print("Unable to write to standard out, closing consumer.", file=sys.stderr)
        return False
    return True
