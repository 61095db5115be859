"""kafka-dump-log: print the batches (and records) of ``.log`` segment files, offline.

Output follows Apache Kafka 4.x's DumpLogSegments for RecordBatch v2: ``Dumping <file>``,
``Log starting offset: <base offset from the file name>``, one line per batch and, with
``--deep-iteration`` (implied by ``--print-data-log``), one ``| offset: ...`` line per record,
with ``key: ... payload: ...`` when printing data. Bytes after the last whole batch are
reported as ``Found N invalid bytes at the end of <name>``; offsets that do not follow each
other are listed on stderr. Index, time-index and snapshot files are not read yet.
"""

from __future__ import annotations

import os
import struct
import sys
from argparse import Namespace
from collections.abc import Callable
from typing import TYPE_CHECKING

from tools.common import KafkaArgumentParser, PlainError, ToolError, run_command

if TYPE_CHECKING:
    from protocol.records import BatchHeader, Record

COMPRESSION_CODEC_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
TIMESTAMP_TYPE_NAMES = {0: "CreateTime", 1: "LogAppendTime"}
CONTROL_TYPE_NAMES = {0: "ABORT", 1: "COMMIT", 2: "LEADER_CHANGE", 3: "SNAPSHOT_HEADER",
                      4: "SNAPSHOT_FOOTER", 5: "KRAFT_VERSION", 6: "KRAFT_VOTERS"}
SEQUENCE_MODULUS = 1 << 31


def build_parser() -> KafkaArgumentParser:
    parser = KafkaArgumentParser("kafka-dump-log", "This tool helps to parse a log file and dump its contents to "
                                 "the console, useful for debugging a seemingly corrupt log segment.")
    parser.add_argument("--files", help="REQUIRED: The comma separated list of data and index log files to be dumped.")
    parser.add_argument("--print-data-log", action="store_true",
                        help="If set, printing the messages content when dumping data logs.")
    parser.add_argument("--deep-iteration", action="store_true",
                        help="If set, uses deep instead of shallow iteration. Automatically set if print-data-log "
                        "is enabled.")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), execute, argv)


def execute(args: Namespace) -> int:
    if not args.files:
        raise PlainError('Missing required argument "[files]"')
    deep = args.deep_iteration or args.print_data_log
    gaps: dict[str, list[tuple[int, int]]] = {}
    for path in args.files.split(","):
        if not os.path.exists(path):
            raise ToolError(f"{path} (No such file or directory)")
        print(f"Dumping {path}")
        if path.endswith(".log"):
            dump_segment(path, deep, args.print_data_log, print, gaps)
        else:
            print(f"Ignoring unknown file {path}", file=sys.stderr)
    for path, pairs in gaps.items():
        print(f"Non-consecutive offsets in {path}", file=sys.stderr)
        for previous, following in pairs:
            print(f"  {previous} is followed by {following}", file=sys.stderr)
    return 0


def dump_segment(path: str, deep: bool, print_data: bool, emit: Callable[[str], object],
                 gaps: dict[str, list[tuple[int, int]]]) -> None:
    """Print one segment file; ``gaps`` collects non-consecutive offsets by absolute path."""
    from protocol.records import CorruptRecordError, InvalidRecordError, crc_is_valid, decode_batch, iter_batches

    name = os.path.basename(path)
    try:
        base_offset = int(name.split(".")[0])
    except ValueError:
        raise ToolError(f'For input string: "{name.split(".")[0]}"') from None
    emit(f"Log starting offset: {base_offset}")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise ToolError(f"{path} ({error.strerror})") from None
    valid_bytes = 0
    last_offset = -1
    try:
        for position, header in iter_batches(data):
            emit(batch_line(header, position, crc_is_valid(data, position, header)))
            if deep:
                _, records = decode_batch(data, position, verify_crc=False)
                for record in records:
                    if record.offset != last_offset + 1:
                        gaps.setdefault(os.path.abspath(path), []).append((last_offset, record.offset))
                    last_offset = record.offset
                    emit(record_line(header, record, print_data))
            valid_bytes = position + header.size_bytes
    except (CorruptRecordError, InvalidRecordError) as error:
        raise ToolError(f"{error} in file {path}.") from None
    trailing = len(data) - valid_bytes
    if trailing > 0:
        emit(f"Found {trailing} invalid bytes at the end of {name}")


def batch_line(header: BatchHeader, position: int, is_valid: bool) -> str:
    h = header
    delete_horizon = f"OptionalLong[{h.base_timestamp}]" if h.has_delete_horizon else "OptionalLong.empty"
    return (
        f"baseOffset: {h.base_offset} lastOffset: {h.last_offset} count: {h.records_count}"
        f" baseSequence: {h.base_sequence} lastSequence: {h.last_sequence}"
        f" producerId: {h.producer_id} producerEpoch: {h.producer_epoch}"
        f" partitionLeaderEpoch: {h.partition_leader_epoch}"
        f" isTransactional: {_java_bool(h.is_transactional)} isControl: {_java_bool(h.is_control)}"
        f" deleteHorizonMs: {delete_horizon}"
        f" position: {position} {TIMESTAMP_TYPE_NAMES[h.timestamp_type]}: {h.max_timestamp}"
        f" size: {h.size_bytes} magic: {h.magic}"
        f" compresscodec: {COMPRESSION_CODEC_NAMES.get(h.compression, h.compression)}"
        f" crc: {h.crc} isvalid: {_java_bool(is_valid)}"
    )


def record_line(header: BatchHeader, record: Record, print_data: bool) -> str:
    h, r = header, record
    sequence = -1
    if h.base_sequence >= 0:
        sequence = (h.base_sequence + r.offset - h.base_offset) % SEQUENCE_MODULUS
    line = (
        f"| offset: {r.offset} {TIMESTAMP_TYPE_NAMES[h.timestamp_type]}: {r.timestamp}"
        f" keySize: {_size(r.key)} valueSize: {_size(r.value)}"
        f" sequence: {sequence} headerKeys: [{','.join(name for name, _ in r.headers)}]"
    )
    if h.is_control:
        line += control_text(r)
    elif print_data:
        if r.key is not None:
            line += f" key: {_text(r.key)}"
        if r.value is not None:
            line += f" payload: {_text(r.value)}"
    return line


def control_text(record: Record) -> str:
    key = record.key or b""
    if len(key) < 4:
        return " controlType: UNKNOWN(-1)"
    _, type_id = struct.unpack_from(">hh", key)
    name = CONTROL_TYPE_NAMES.get(type_id, "UNKNOWN")
    value = record.value or b""
    if type_id in (0, 1) and len(value) >= 6:
        _, coordinator_epoch = struct.unpack_from(">hi", value)
        return f" endTxnMarker: {name} coordinatorEpoch: {coordinator_epoch}"
    return f" controlType: {name}({type_id})"


def _size(data: bytes | None) -> int:
    return -1 if data is None else len(data)


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _java_bool(value: bool) -> str:
    return "true" if value else "false"


if __name__ == "__main__":
    sys.exit(main())
