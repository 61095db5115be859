"""``kafka-server-stop``: send SIGTERM to every kraft node process on this machine."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from tools.common import KafkaArgumentParser, PlainError, run_command

MARKERS = ("tools.server_start", "kafka-server-start", "-m kraft")


def _node_processes() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "python" in command and any(marker in command for marker in MARKERS):
            found.append(int(entry))
    return found


def _parser() -> KafkaArgumentParser:
    return KafkaArgumentParser("kafka-server-stop", "Stop every kraft node running on this machine (SIGTERM).")


def _execute(args: argparse.Namespace) -> int:
    pids = _node_processes()
    if not pids:
        raise PlainError("No kafka server to stop")
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(_parser(), _execute, argv)


if __name__ == "__main__":
    sys.exit(main())
