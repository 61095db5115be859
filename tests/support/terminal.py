"""A command in a real pseudo-terminal, driven as a person at a keyboard would drive it.

The command runs in a session of its own whose controlling terminal is the pty, so a Ctrl-C
typed into it (``ctrl_c``) reaches the foreground process as SIGINT through the terminal
driver, and the program sees ttys on stdin and stdout (Kafka's console producer prompts only
then). Everything the terminal shows (output and the echo of what was typed) accumulates in
``screen``, with ``\\r\\n`` as ``\\n``. Every wait is bounded and a timeout names what was
expected and shows the screen. The process is recorded with ``tests.support.processes``, so
the autouse fixture kills it if the test does not.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Mapping
from pathlib import Path

from tests.support import processes

READ_BYTES = 65536
ROWS, COLUMNS = 50, 200


class TerminalTimeout(AssertionError):
    """What was expected did not appear on the screen in time."""


def _take_terminal() -> None:
    """In the child, after setsid: the pty on stdin becomes the controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    def __init__(self, command_line: str, *, cwd: Path, env: Mapping[str, str]) -> None:
        self.command_line = command_line
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        try:
            self.process = processes.spawn(
                ["bash", "--norc", "--noprofile", "-c", command_line],
                stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=dict(env),
                preexec_fn=_take_terminal,
            )
        finally:
            os.close(slave)
        self._master = master
        self._raw = b""

    def __repr__(self) -> str:
        return f"Terminal({self.command_line!r})"

    @property
    def screen(self) -> str:
        return self._raw.decode("utf-8", errors="replace").replace("\r\n", "\n")

    def _pump(self, timeout_s: float) -> bool:
        """Read what the terminal shows within ``timeout_s``; False once the pty is closed."""
        ready, _, _ = select.select([self._master], [], [], max(timeout_s, 0))
        if not ready:
            return True
        try:
            data = os.read(self._master, READ_BYTES)
        except OSError:  # EIO: every process holding the pty has exited
            return False
        self._raw += data
        return bool(data)

    def expect(self, text: str, timeout_s: float = 20.0, *, after: int = 0) -> int:
        """Wait until ``text`` shows at or past screen position ``after``; return the position
        just past it."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.screen.find(text, after)
            if found >= 0:
                return found + len(text)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (not self._pump(min(remaining, 0.1)) and self.screen.find(text, after) < 0
                                  and self.process.poll() is not None):
                raise TerminalTimeout(
                    f"{self!r}: expected {text!r} on the screen within {timeout_s} s"
                    f" (exit status {self.process.poll()}); the screen shows:\n{self.screen}")

    def type(self, line: str) -> None:
        """Type ``line`` and press Enter."""
        os.write(self._master, line.encode("utf-8") + b"\r")

    def ctrl_c(self) -> None:
        os.write(self._master, b"\x03")

    def wait_exit(self, timeout_s: float = 30.0) -> int:
        """Wait for the command to exit, reading the screen meanwhile; return its status."""
        deadline = time.monotonic() + timeout_s
        while self.process.poll() is None:
            if time.monotonic() >= deadline:
                raise TerminalTimeout(f"{self!r} did not exit within {timeout_s} s; the screen shows:\n{self.screen}")
            self._pump(0.05)
        while self._pump(0.05) and select.select([self._master], [], [], 0)[0]:
            pass
        status = self.process.returncode
        return 128 - status if status < 0 else status  # -SIGINT reads as the shell's 130

    def close(self) -> None:
        if self.process.poll() is None:
            processes.signal_group(self.process, signal.SIGKILL)
            try:
                self.process.wait(timeout=processes.REAP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
        os.close(self._master)
