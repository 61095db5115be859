"""kafka-dump-log over a segment file built with protocol.records."""

from __future__ import annotations

from protocol.records import RecordInput, build_batch
from tools import dump_log


def _segment(tmp_path, name: str = "00000000000000000000.log"):
    first = build_batch(
        [RecordInput(b"k", b"v1", (("h1", b"x"), ("h2", None)), 1700000000000),
         RecordInput(None, b"v2", (), 1700000000001),
         RecordInput(b"k3", None, (), 1700000000002)],
        producer_id=0, producer_epoch=0, base_sequence=0, partition_leader_epoch=0,
    )
    second = build_batch([RecordInput(b"a", b"b", (), 1700000000005)], base_offset=3, compression=1,
                         partition_leader_epoch=1)
    path = tmp_path / name
    path.write_bytes(first + second + b"\x00" * 5)
    return path, len(first), len(second)


def test_shallow_dump_prints_batches_and_trailing_bytes(tmp_path, capsys) -> None:
    path, first_size, second_size = _segment(tmp_path)
    assert dump_log.main(["--files", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"Dumping {path}"
    assert lines[1] == "Log starting offset: 0"
    assert lines[2].startswith(
        "baseOffset: 0 lastOffset: 2 count: 3 baseSequence: 0 lastSequence: 2 producerId: 0 producerEpoch: 0"
        " partitionLeaderEpoch: 0 isTransactional: false isControl: false deleteHorizonMs: OptionalLong.empty"
        f" position: 0 CreateTime: 1700000000002 size: {first_size} magic: 2 compresscodec: none crc: "
    )
    assert lines[2].endswith(" isvalid: true")
    assert lines[3].startswith(
        "baseOffset: 3 lastOffset: 3 count: 1 baseSequence: -1 lastSequence: -1 producerId: -1 producerEpoch: -1"
        f" partitionLeaderEpoch: 1 isTransactional: false isControl: false deleteHorizonMs: OptionalLong.empty"
        f" position: {first_size} CreateTime: 1700000000005 size: {second_size} magic: 2 compresscodec: gzip"
    )
    assert lines[4:] == [f"Found 5 invalid bytes at the end of {path.name}"]


def test_print_data_log_prints_every_record(tmp_path, capsys) -> None:
    path, _, _ = _segment(tmp_path)
    assert dump_log.main(["--files", str(path), "--print-data-log"]) == 0
    records = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    assert records == [
        "| offset: 0 CreateTime: 1700000000000 keySize: 1 valueSize: 2 sequence: 0 headerKeys: [h1,h2] key: k payload: v1",
        "| offset: 1 CreateTime: 1700000000001 keySize: -1 valueSize: 2 sequence: 1 headerKeys: [] payload: v2",
        "| offset: 2 CreateTime: 1700000000002 keySize: 2 valueSize: -1 sequence: 2 headerKeys: [] key: k3",
        "| offset: 3 CreateTime: 1700000000005 keySize: 1 valueSize: 1 sequence: -1 headerKeys: [] key: a payload: b",
    ]


def test_deep_iteration_without_data_and_a_corrupted_crc(tmp_path, capsys) -> None:
    path, _, _ = _segment(tmp_path, "00000000000000000100.log")
    data = bytearray(path.read_bytes())
    data[data.index(b"v1")] = ord("w")  # a value byte: still decodable, but the CRC no longer matches
    path.write_bytes(bytes(data))
    dump_log.main(["--files", str(path), "--deep-iteration"])
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[1] == "Log starting offset: 100"
    assert lines[2].endswith("isvalid: false")
    assert lines[3].startswith("| offset: 0 CreateTime: 1700000000000 keySize: 1") and "payload" not in lines[3]
    assert captured.err == "", "offsets 0..3 follow each other"


def test_non_consecutive_offsets_are_listed_on_stderr(tmp_path, capsys) -> None:
    path = tmp_path / "00000000000000000000.log"
    path.write_bytes(build_batch([RecordInput(b"k", b"v")], base_offset=5))
    assert dump_log.main(["--files", str(path), "--deep-iteration"]) == 0
    assert capsys.readouterr().err == f"Non-consecutive offsets in {path}\n  -1 is followed by 5\n"


def test_missing_files_option_and_unknown_suffix(tmp_path, capsys) -> None:
    assert dump_log.main([]) == 1
    assert 'Missing required argument "[files]"' in capsys.readouterr().err
    other = tmp_path / "00000000000000000000.index"
    other.write_bytes(b"")
    assert dump_log.main(["--files", str(other)]) == 0
    assert f"Ignoring unknown file {other}" in capsys.readouterr().err
