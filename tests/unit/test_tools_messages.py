"""LineMessageReader and DefaultMessageFormatter, property by property as in Kafka 4.x."""

from __future__ import annotations

import pytest

from tools.messages import (
    ConsumedRecord,
    DefaultMessageFormatter,
    LineMessageReader,
    LineRecord,
    MessageFormatError,
)


def test_plain_lines_are_values() -> None:
    reader = LineMessageReader({"topic": "t"})
    assert reader.read("hello\tworld") == LineRecord(None, b"hello\tworld", ())
    assert reader.read("") == LineRecord(None, b"", ())


def test_key_and_headers_are_parsed_in_kafka_order() -> None:
    reader = LineMessageReader({"parse.key": "true", "parse.headers": "true"})
    assert reader.read("h1:v1,h2:v2\tkey\tvalue\twith tab") == LineRecord(
        b"key", b"value\twith tab", (("h1", b"v1"), ("h2", b"v2"))
    )
    assert reader.read("h:a:b\tk\tv").headers == (("h", b"a:b"),)


def test_custom_separators_and_null_marker() -> None:
    reader = LineMessageReader({
        "parse.key": "TRUE ", "key.separator": ":", "parse.headers": "true", "headers.delimiter": "|",
        "headers.separator": ";", "headers.key.separator": "=", "null.marker": "NULL",
    })
    assert reader.read("a=1;b=NULL|NULL:NULL") == LineRecord(None, None, (("a", b"1"), ("b", None)))
    assert reader.read("NULL|k:v") == LineRecord(b"k", b"v", ())


def test_headers_separator_is_a_java_regex_split() -> None:
    reader = LineMessageReader({"parse.headers": "true", "headers.separator": "[,;]"})
    assert reader.read("a:1;b:2,c:3,,\tv").headers == (("a", b"1"), ("b", b"2"), ("c", b"3"))


def test_missing_separators_fail_with_kafkas_messages() -> None:
    reader = LineMessageReader({"parse.key": "true"})
    reader.read("k\tv")
    with pytest.raises(MessageFormatError, match=r"^No key separator found on line number 2: 'novalue'$"):
        reader.read("novalue")
    headers = LineMessageReader({"parse.headers": "true"})
    with pytest.raises(MessageFormatError, match="No header key separator found in pair 'broken' on line number 1"):
        headers.read("broken\tvalue")
    lenient = LineMessageReader({"parse.key": "true", "parse.headers": "true", "ignore.error": "true"})
    assert lenient.read("broken\tvalue") == LineRecord(None, b"value", (("broken", None),))


def test_conflicting_separators_are_refused() -> None:
    with pytest.raises(MessageFormatError, match="headers.delimiter and headers.separator may not be equal"):
        LineMessageReader({"headers.separator": "\t"})
    with pytest.raises(MessageFormatError, match="null.marker and key.separator may not be equal"):
        LineMessageReader({"null.marker": "\t"})


RECORD = ConsumedRecord(partition=2, offset=7, timestamp=1700000000000, timestamp_type=0,
                        key=b"key", value=b"value", headers=(("h1", b"v1"), ("h2", None)))


def test_default_formatter_prints_only_values() -> None:
    assert DefaultMessageFormatter().format(RECORD) == b"value\n"


def test_every_field_in_kafkas_order() -> None:
    formatter = DefaultMessageFormatter({
        "print.timestamp": "true", "print.partition": "true", "print.offset": "true",
        "print.headers": "true", "print.key": "true",
    })
    assert formatter.format(RECORD) == b"CreateTime:1700000000000\tPartition:2\tOffset:7\th1:v1,h2:null\tkey\tvalue\n"


def test_nulls_no_headers_custom_separators_and_log_append_time() -> None:
    formatter = DefaultMessageFormatter({
        "print.timestamp": "true", "print.headers": "true", "print.key": "true", "key.separator": " | ",
        "line.separator": "\r\n", "headers.separator": ";", "null.literal": "<nil>",
    })
    record = ConsumedRecord(0, 0, 5, 1, None, None, ())
    assert formatter.format(record) == b"LogAppendTime:5 | NO_HEADERS | <nil> | <nil>\r\n"


def test_without_value_the_last_field_ends_the_line() -> None:
    formatter = DefaultMessageFormatter({"print.key": "true", "print.value": "false"})
    assert formatter.format(RECORD) == b"key\n"
    assert DefaultMessageFormatter({"print.value": "false"}).format(RECORD) == b""
