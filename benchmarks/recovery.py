"""Start-up time of the log engine after a clean and an unclean shutdown, over logs of growing size.

    python -m benchmarks.recovery [--sizes 0.25,1] [--tail-mb 16] [--repeats 3] [--batch-kib 1024]
                                  [--json PATH] [--directory DIR]

For each size (GB, 10^9 bytes; ascending, one log grown from one size to the next) the benchmark:
  1. appends 1 MiB batches (``--batch-kib``; 1 KiB random values) to one partition through ``LogManager`` until
     the log holds that many bytes, then closes it cleanly (flush, checkpoints, clean-shutdown
     marker);
  2. times start-up, ``LogManager(...)`` + ``load_all()``, in a fresh process: "cold" after
     dropping every file of the log directory from the page cache
     (``posix_fadvise(POSIX_FADV_DONTNEED)``), then "warm" right after;
  3. crashes: a child process opens the log, appends ``--tail-mb`` MB more without a flush,
     writes the checkpoints (so the recovery point stays where the last flush put it, as the
     node's checkpoint loop would) and kills itself with SIGKILL;
  4. times start-up again, cold and warm, each in a fresh process that recovers the unflushed
     tail and exits without closing, so every run recovers the same tail.

The baseline is the same start-up over the smallest log, measured in the same run: the ratio
largest/smallest should stay near 1 when start-up depends on the unflushed tail and not on the
total size. "scan MB" is what recovery after the crash has to read: from the recovery point
(or, for an engine that rescans whole segments, from the start of the segment holding it) to
the log end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocol.records import RecordInput, build_batch  # noqa: E402
from storage import LogConfig, LogManager  # noqa: E402
from storage.checkpoint import RECOVERY_POINT_CHECKPOINT, read_offsets  # noqa: E402
from storage.fs import REAL_FILE_SYSTEM  # noqa: E402

SIZES_DEFAULT = "0.25,1"
TAIL_MB_DEFAULT = 16
REPEATS_DEFAULT = 3
RECORD_BYTES = 1024
BATCH_KIB_DEFAULT = 1024
FLUSH_EVERY_BYTES = 256 * 1024 * 1024  # keeps the kernel's dirty backlog small while writing
TOPIC = "recovery-bench"
CHILD_TIMEOUT_S = 600


@dataclass(frozen=True, slots=True)
class Row:
    size_gb: float
    log_bytes: int
    segments: int
    shutdown: str  # clean | unclean
    tail_bytes: int  # unflushed bytes at the crash (0 after a clean shutdown)
    active_segment_bytes: int
    cold_s: list[float]
    warm_s: list[float]

    @property
    def cold_median_s(self) -> float:
        return statistics.median(self.cold_s)

    @property
    def warm_median_s(self) -> float:
        return statistics.median(self.warm_s)


def make_batch(batch_bytes: int) -> bytes:
    count = max(1, (batch_bytes - 61) // (RECORD_BYTES + 16))
    return build_batch([RecordInput(key=None, value=os.urandom(RECORD_BYTES)) for _ in range(count)],
                       timestamp_ms=int(time.time() * 1000))


def open_manager(log_dir: str) -> LogManager:
    manager = LogManager([log_dir], LogConfig())
    manager.load_all()
    return manager


def grow(log_dir: str, target_bytes: int, batch: bytes) -> None:
    """Append until the log holds ``target_bytes``, then shut down cleanly."""
    manager = open_manager(log_dir)
    log = manager.get_or_create(TOPIC, 0)
    unflushed = 0
    while log.size_bytes < target_bytes:
        log.append(batch, leader_epoch=0)
        unflushed += len(batch)
        if unflushed >= FLUSH_EVERY_BYTES:
            log.flush()
            unflushed = 0
    manager.close()


def drop_from_page_cache(log_dir: str) -> None:
    """Forget the cached pages of every file (dirty pages stay: the kernel only starts writing)."""
    for directory, _, names in os.walk(log_dir):
        for name in names:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def run_child(*arguments: str) -> dict:
    completed = subprocess.run([sys.executable, "-m", "benchmarks.recovery", *arguments],
                               capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
                               cwd=Path(__file__).resolve().parents[1])
    if arguments[0] == "--child-crash":
        if completed.returncode != -signal.SIGKILL:
            raise RuntimeError(f"the crashing child should die of SIGKILL, got {completed.returncode}: "
                               f"{completed.stderr}")
        return {}
    if completed.returncode != 0:
        raise RuntimeError(f"child {arguments} failed with {completed.returncode}: {completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def child_open(log_dir: str, shutdown: str) -> None:
    """Time start-up in this fresh process; a clean start closes cleanly again so the next run
    also starts clean, an unclean one exits without closing so the next recovers the same tail."""
    log_dir_path = os.path.abspath(log_dir)
    recovery_points = read_offsets(REAL_FILE_SYSTEM, os.path.join(log_dir_path, RECOVERY_POINT_CHECKPOINT))
    started = time.perf_counter()
    manager = open_manager(log_dir)
    elapsed_s = time.perf_counter() - started
    log = manager.get(TOPIC, 0)
    segments = log.segments
    holding = [segment for segment in segments if segment.base_offset <= recovery_points.get((TOPIC, 0), 0)]
    recovery_position = _position_of(holding[-1], recovery_points.get((TOPIC, 0), 0)) if holding else 0
    report = {"elapsed_s": elapsed_s, "log_bytes": log.size_bytes, "segments": len(segments),
              "active_segment_bytes": segments[-1].size_bytes,
              "tail_bytes": sum(s.size_bytes for s in segments[len(holding):])
              + (holding[-1].size_bytes - recovery_position if holding else 0)}
    print(json.dumps(report), flush=True)
    if shutdown == "clean":
        manager.close()
    else:
        os._exit(0)


def _position_of(segment, offset: int) -> int:
    location = segment.find_batch(offset)
    return segment.size_bytes if location is None else location.position


def child_crash(log_dir: str, tail_bytes: int, batch_bytes: int) -> None:
    """Append an unflushed tail, checkpoint the recovery point of the last flush, die."""
    manager = open_manager(log_dir)
    log = manager.get(TOPIC, 0)
    log.flush()
    batch = make_batch(batch_bytes)
    written = 0
    while written < tail_bytes:
        log.append(batch, leader_epoch=0)
        written += len(batch)
    manager.checkpoint()
    os.kill(os.getpid(), signal.SIGKILL)


def measure_start(log_dir: str, shutdown: str, repeats: int) -> tuple[dict, list[float], list[float]]:
    cold_s, warm_s, report = [], [], {}
    for _ in range(repeats):
        drop_from_page_cache(log_dir)
        report = run_child("--child-open", log_dir, shutdown)
        cold_s.append(report["elapsed_s"])
        warm_s.append(run_child("--child-open", log_dir, shutdown)["elapsed_s"])
    return report, cold_s, warm_s


def measure(root: str, sizes_gb: list[float], tail_mb: int, repeats: int, batch_bytes: int) -> list[Row]:
    log_dir = os.path.join(root, "logs")
    batch = make_batch(batch_bytes)
    rows = []
    for size_gb in sizes_gb:
        started = time.perf_counter()
        grow(log_dir, int(size_gb * 1e9), batch)
        print(f"wrote {size_gb:g} GB in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        report, cold_s, warm_s = measure_start(log_dir, "clean", repeats)
        rows.append(_row(size_gb, "clean", report, cold_s, warm_s, tail_bytes=0))
        run_child("--child-crash", log_dir, str(tail_mb * 1_000_000), str(batch_bytes))
        report, cold_s, warm_s = measure_start(log_dir, "unclean", repeats)
        rows.append(_row(size_gb, "unclean", report, cold_s, warm_s, tail_bytes=report["tail_bytes"]))
    return rows


def _row(size_gb: float, shutdown: str, report: dict, cold_s: list[float], warm_s: list[float], *,
         tail_bytes: int) -> Row:
    return Row(size_gb, report["log_bytes"], report["segments"], shutdown, tail_bytes,
               report["active_segment_bytes"], cold_s, warm_s)


def ratios(rows: list[Row]) -> dict[str, dict[str, float]]:
    """Start-up of the largest log over the smallest, per shutdown kind."""
    result = {}
    for shutdown in ("clean", "unclean"):
        same = sorted((row for row in rows if row.shutdown == shutdown), key=lambda row: row.size_gb)
        if len(same) >= 2:
            result[shutdown] = {"largest_gb": same[-1].size_gb, "smallest_gb": same[0].size_gb,
                                "cold": same[-1].cold_median_s / same[0].cold_median_s,
                                "warm": same[-1].warm_median_s / same[0].warm_median_s}
    return result


def print_table(rows: list[Row], tail_mb: int, repeats: int, batch_kib: int) -> None:
    print(f"kraft log start-up (LogManager + load_all) after a clean shutdown and after SIGKILL with "
          f"{tail_mb} MB unflushed; {batch_kib} KiB batches, segment.bytes 1 GiB, median of {repeats} runs")
    print(f"{'size GB':>8}{'segments':>10}{'shutdown':>10}{'active seg MB':>15}{'tail MB':>9}"
          f"{'cold ms':>10}{'warm ms':>10}   runs cold / warm (ms)")
    for row in rows:
        runs = (", ".join(f"{s * 1e3:.0f}" for s in row.cold_s) + " / "
                + ", ".join(f"{s * 1e3:.0f}" for s in row.warm_s))
        print(f"{row.size_gb:>8g}{row.segments:>10}{row.shutdown:>10}{row.active_segment_bytes / 1e6:>15,.0f}"
              f"{row.tail_bytes / 1e6:>9,.0f}{row.cold_median_s * 1e3:>10,.1f}{row.warm_median_s * 1e3:>10,.1f}"
              f"   {runs}")
    for shutdown, ratio in ratios(rows).items():
        print(f"{shutdown} start-up, {ratio['largest_gb']:g} GB / {ratio['smallest_gb']:g} GB: "
              f"cold {ratio['cold']:.2f} x, warm {ratio['warm']:.2f} x")


def write_json(path: Path, rows: list[Row], args: argparse.Namespace) -> None:
    document = {
        "config": {"sizes_gb": args.sizes, "tail_mb": args.tail_mb, "repeats": args.repeats,
                   "batch_kib": args.batch_kib, "record_bytes": RECORD_BYTES},
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "rows": [{**asdict(row), "cold_median_s": row.cold_median_s, "warm_median_s": row.warm_median_s}
                 for row in rows],
        "ratio_largest_to_smallest": ratios(rows),
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recovery", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=SIZES_DEFAULT, help=f"log sizes in GB, comma-separated ({SIZES_DEFAULT})")
    parser.add_argument("--tail-mb", type=int, default=TAIL_MB_DEFAULT,
                        help=f"unflushed MB at the crash ({TAIL_MB_DEFAULT})")
    parser.add_argument("--repeats", type=int, default=REPEATS_DEFAULT, help=f"runs per row ({REPEATS_DEFAULT})")
    parser.add_argument("--batch-kib", type=int, default=BATCH_KIB_DEFAULT,
                        help=f"batch size in KiB ({BATCH_KIB_DEFAULT}); small batches mean many index entries")
    parser.add_argument("--directory", type=Path, help="where to write (a temporary directory under it)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--child-open", nargs=2, metavar=("DIR", "SHUTDOWN"), help=argparse.SUPPRESS)
    parser.add_argument("--child-crash", nargs=3, metavar=("DIR", "BYTES", "BATCH_BYTES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted(float(size) for size in args.sizes.split(",") if size.strip())
    except ValueError:
        parser.error(f"--sizes must be numbers of GB separated by commas, got {args.sizes!r}")
    if not args.sizes or min(args.sizes) <= 0:
        parser.error(f"--sizes must be positive, got {args.sizes}")
    if args.tail_mb <= 0 or args.repeats <= 0 or args.batch_kib <= 0:
        parser.error("--tail-mb, --repeats and --batch-kib must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.child_open:
        child_open(*args.child_open)
        return 0
    if args.child_crash:
        child_crash(args.child_crash[0], int(args.child_crash[1]), int(args.child_crash[2]))
        return 0
    with tempfile.TemporaryDirectory(prefix="kraft-bench-recovery-", dir=args.directory) as root:
        rows = measure(root, args.sizes, args.tail_mb, args.repeats, args.batch_kib * 1024)
    print_table(rows, args.tail_mb, args.repeats, args.batch_kib)
    if args.json:
        write_json(args.json, rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
