"""``kafka-server-stop``: send SIGTERM to every kraft node process on this machine."""

from __future__ import annotations

import os
import signal
import sys

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


def main(argv: list[str] | None = None) -> int:
    pids = _node_processes()
    if not pids:
        print("No kafka server to stop", file=sys.stderr)
        return 1
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
