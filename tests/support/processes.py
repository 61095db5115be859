"""Child processes that tests start, and the guarantee that none outlives its test.

Every helper that starts a process (a kraft node, a Java client, kcat) calls `spawn`, which puts
the child in a process group of its own and records it. The autouse fixture in tests/conftest.py
takes a `snapshot()` before each test and, after it, kills whatever was spawned since and is still
alive, so a failing or hanging test cannot leave a JVM or a broker running into the next one.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence

# How long to wait for a killed process to be reaped; SIGKILL cannot be ignored, so this only
# guards against a zombie we fail to collect.
REAP_TIMEOUT_S = 10.0

_spawned: list[subprocess.Popen] = []


def spawn(command: Sequence[str], **popen_kwargs) -> subprocess.Popen:
    """Starts `command` in a new session (its own process group) and records it."""
    popen_kwargs.setdefault("stdin", subprocess.DEVNULL)
    process = subprocess.Popen(list(command), start_new_session=True, **popen_kwargs)
    _spawned.append(process)
    return process


def signal_group(process: subprocess.Popen, signal_number: int) -> None:
    """Sends a signal to the process and every child it started; a no-op once it has exited."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal_number)
    except ProcessLookupError:
        pass


def kill(process: subprocess.Popen) -> int | None:
    """SIGKILLs the process group and reaps the process; returns its exit status."""
    signal_group(process, signal.SIGKILL)
    try:
        return process.wait(timeout=REAP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None


def terminate(process: subprocess.Popen, timeout_s: float) -> int | None:
    """SIGTERM to the process group, then SIGKILL if it has not exited within ``timeout_s``;
    returns its exit status."""
    signal_group(process, signal.SIGTERM)
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return kill(process)


def snapshot() -> int:
    """A mark to pass to `kill_spawned_since`."""
    return len(_spawned)


def kill_spawned_since(mark: int) -> list[subprocess.Popen]:
    """Kills every process spawned after `mark` that is still running; returns those it killed."""
    killed = [process for process in _spawned[mark:] if process.poll() is None]
    for process in killed:
        kill(process)
    del _spawned[mark:]
    return killed
