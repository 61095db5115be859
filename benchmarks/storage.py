"""Append and read throughput of the log engine beside raw file I/O of the same bytes.

    python -m benchmarks.storage [--megabytes N] [--flush-every-mb M] [--json PATH] [--directory DIR]

Append rows: ``PartitionLog.append`` of one batch built once with ``protocol.records.build_batch``
(1 KiB random values; 1 MiB and 16 KiB batches), appended over and over until N MB are in the log,
timed to the end of the last ``flush()``; once with a single flush at the end and once with a
flush every M MB. The baseline of each row writes the same bytes with the same write sizes to a
plain file (``os.write``) and fsyncs at the same points, in the same run.

Read rows: the log written by the append row with a flush at the end, read from offset 0 to the
end with ``PartitionLog.read(offset, 1 MiB)`` (a consumer's default fetch size), beside
``os.pread`` of the baseline file in 1 MiB chunks. "cold" drops the files from the page cache
first (``posix_fadvise(POSIX_FADV_DONTNEED)`` after the fsync, no root needed); "hot" reads the
same files again at once. Every row is the median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocol.records import RecordInput, build_batch, read_header  # noqa: E402
from storage import LogConfig, PartitionLog  # noqa: E402

MEGABYTES_DEFAULT = 512
FLUSH_EVERY_MB_DEFAULT = 64
REPEATS_DEFAULT = 3
RECORD_BYTES = 1024
BATCH_SIZES = {"1 MiB": 1024 * 1024, "16 KiB": 16 * 1024}
READ_BYTES = 1024 * 1024  # a fetch's max.partition.fetch.bytes default


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    total_bytes: int
    kraft_s: list[float]
    baseline_s: list[float]

    @property
    def kraft_megabytes_per_s(self) -> float:
        return self.total_bytes / statistics.median(self.kraft_s) / 1e6

    @property
    def baseline_megabytes_per_s(self) -> float:
        return self.total_bytes / statistics.median(self.baseline_s) / 1e6

    @property
    def ratio(self) -> float:
        return self.kraft_megabytes_per_s / self.baseline_megabytes_per_s


def make_batch(batch_bytes: int) -> bytes:
    """One uncompressed batch of 1 KiB random values, as close to ``batch_bytes`` as fits."""
    records = []
    size = 61  # the batch header
    while size + RECORD_BYTES + 16 <= batch_bytes:
        records.append(RecordInput(key=None, value=os.urandom(RECORD_BYTES)))
        size += RECORD_BYTES + 16
    return build_batch(records, timestamp_ms=int(time.time() * 1000))


def drop_from_page_cache(paths: list[str]) -> None:
    """Ask the kernel to forget the files' cached pages (they must be clean, i.e. fsynced)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def append_engine(directory: str, batch: bytes, count: int, flush_every: int) -> float:
    """Seconds to append ``count`` copies of ``batch`` and flush (every ``flush_every`` batches
    and at the end); the log is left on disk for the read rows."""
    log = PartitionLog.open(directory, LogConfig())
    try:
        started = time.perf_counter()
        for index in range(1, count + 1):
            log.append(batch, leader_epoch=0)
            if flush_every and index % flush_every == 0:
                log.flush()
        log.flush()
        return time.perf_counter() - started
    finally:
        log.close()


def append_raw(path: str, batch: bytes, count: int, flush_every: int) -> float:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        started = time.perf_counter()
        for index in range(1, count + 1):
            view = memoryview(batch)
            while view:
                view = view[os.write(fd, view):]
            if flush_every and index % flush_every == 0:
                os.fsync(fd)
        os.fsync(fd)
        return time.perf_counter() - started
    finally:
        os.close(fd)


def read_engine(directory: str, batch_bytes: int, records_per_batch: int) -> tuple[float, int]:
    """Seconds to read the whole log fetch by fetch, and the bytes read. Every batch is the
    same, so the next fetch offset is arithmetic: the benchmark does not parse what it reads."""
    log = PartitionLog.open(directory, LogConfig(), clean_shutdown=True)
    try:
        started = time.perf_counter()
        offset, total = 0, 0
        end = log.log_end_offset
        while offset < end:
            length = log.read(offset, READ_BYTES).length
            assert length and length % batch_bytes == 0, f"a fetch at {offset} returned {length} bytes"
            total += length
            offset += length // batch_bytes * records_per_batch
        return time.perf_counter() - started, total
    finally:
        log.close(flush=False)


def read_raw(path: str) -> tuple[float, int]:
    fd = os.open(path, os.O_RDONLY)
    try:
        started = time.perf_counter()
        position = 0
        while chunk := os.pread(fd, READ_BYTES, position):
            position += len(chunk)
        return time.perf_counter() - started, position
    finally:
        os.close(fd)


def segment_paths(directory: str) -> list[str]:
    return [os.path.join(directory, name) for name in sorted(os.listdir(directory))
            if name.endswith((".log", ".index", ".timeindex"))]


def measure(root: str, megabytes: int, flush_every_mb: int, repeats: int) -> list[Row]:
    rows: list[Row] = []
    for label, batch_bytes in BATCH_SIZES.items():
        batch = make_batch(batch_bytes)
        count = max(1, megabytes * 1_000_000 // len(batch))
        total = count * len(batch)
        log_dir, raw_path = os.path.join(root, "log"), os.path.join(root, "raw")
        for flush_every_batches, flush_label in ((0, "flush at end"),
                                                 (max(1, flush_every_mb * 1_000_000 // len(batch)),
                                                  f"flush every {flush_every_mb} MB")):
            engine_s, raw_s = [], []
            for _ in range(repeats):
                shutil.rmtree(log_dir, ignore_errors=True)
                os.makedirs(log_dir)
                # Start each run with no dirty pages from the one before (the kernel would
                # otherwise write them back during the next run's fsync).
                os.sync()
                raw_s.append(append_raw(raw_path, batch, count, flush_every_batches))
                os.sync()
                engine_s.append(append_engine(log_dir, batch, count, flush_every_batches))
            rows.append(Row(f"append {label} batches, {flush_label}", total, engine_s, raw_s))
        records_per_batch = read_header(batch).last_offset_delta + 1
        rows += measure_reads(label, log_dir, raw_path, repeats, len(batch), records_per_batch)
        shutil.rmtree(log_dir, ignore_errors=True)
        os.remove(raw_path)
    return rows


def measure_reads(label: str, log_dir: str, raw_path: str, repeats: int, batch_bytes: int,
                  records_per_batch: int) -> list[Row]:
    rows = []
    for temperature in ("cold", "hot"):
        engine_s, raw_s, total = [], [], 0
        for _ in range(repeats):
            readers = ((engine_s, lambda: read_engine(log_dir, batch_bytes, records_per_batch), segment_paths(log_dir)),
                       (raw_s, lambda: read_raw(raw_path), [raw_path]))
            for runs, reader, paths in readers:
                if temperature == "cold":
                    drop_from_page_cache(paths)
                else:
                    reader()  # warm the cache
                elapsed_s, total = reader()
                runs.append(elapsed_s)
        rows.append(Row(f"read {label} batches, {temperature}", total, engine_s, raw_s))
    return rows


def print_table(rows: list[Row], megabytes: int, repeats: int) -> None:
    print(f"kraft storage engine vs raw file I/O of the same bytes: about {megabytes:,} MB per row, "
          f"{RECORD_BYTES:,} B random values, median of {repeats} runs (1 MB = 10^6 bytes)")
    print(f"{'row':<44}{'kraft MB/s':>12}{'raw MB/s':>12}{'ratio':>8}   runs kraft / raw (s)")
    for row in rows:
        runs = (", ".join(f"{s:.2f}" for s in row.kraft_s) + " / "
                + ", ".join(f"{s:.2f}" for s in row.baseline_s))
        print(f"{row.name:<44}{row.kraft_megabytes_per_s:>12,.0f}{row.baseline_megabytes_per_s:>12,.0f}"
              f"{row.ratio:>8.2f}   {runs}")


def write_json(path: Path, rows: list[Row], args: argparse.Namespace) -> None:
    document = {
        "config": {"megabytes": args.megabytes, "flush_every_mb": args.flush_every_mb, "repeats": args.repeats,
                   "record_bytes": RECORD_BYTES, "read_bytes": READ_BYTES},
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "rows": [{**asdict(row), "kraft_megabytes_per_s": row.kraft_megabytes_per_s,
                  "baseline_megabytes_per_s": row.baseline_megabytes_per_s, "ratio": row.ratio}
                 for row in rows],
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.storage", description=__doc__.split("\n")[0])
    parser.add_argument("--megabytes", type=int, default=MEGABYTES_DEFAULT,
                        help=f"bytes per row, in MB ({MEGABYTES_DEFAULT})")
    parser.add_argument("--flush-every-mb", type=int, default=FLUSH_EVERY_MB_DEFAULT,
                        help=f"flush interval of the periodic-flush rows, in MB ({FLUSH_EVERY_MB_DEFAULT})")
    parser.add_argument("--repeats", type=int, default=REPEATS_DEFAULT, help=f"runs per row ({REPEATS_DEFAULT})")
    parser.add_argument("--directory", type=Path, help="where to write (a temporary directory under it)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    for name in ("megabytes", "flush_every_mb", "repeats"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    with tempfile.TemporaryDirectory(prefix="kraft-bench-storage-", dir=args.directory) as root:
        rows = measure(root, args.megabytes, args.flush_every_mb, args.repeats)
    print_table(rows, args.megabytes, args.repeats)
    if args.json:
        write_json(args.json, rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
