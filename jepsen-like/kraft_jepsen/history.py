"""The history of a run: one event per line (JSON), in the order they happened.

Every operation is two events with the same ``op`` number: an ``invoke`` and its completion,
``ok`` (it happened), ``fail`` (it definitely did not) or ``info`` (nobody knows: a timeout, a
lost connection, a retriable error). A process (one client) may have many operations in flight
(a producer's sends), so completions pair with invokes by ``op``, not by process. Events carry the time since the run started, in seconds, on
the machine's monotonic clock, so events written by different threads order correctly.

Operations (``f``) and their values:

- ``send``: invoke ``{"partition": p, "value": v}``; the completion adds ``"offset"`` (an int on
  ``ok``, None otherwise). Values are unique across the run.
- ``poll``: invoke None; ``ok`` ``{"records": [[p, offset, value], ...]}`` in the order the
  client returned them.
- ``assign``: ``ok`` ``{"partitions": [p, ...]}``: the process's assignment is now exactly
  these partitions (explicit assign, or a group rebalance); reading restarts from wherever the
  client positions it.
- ``commit``: invoke ``{"group": g, "offsets": {"p": next_offset}}``; completions the same.
- ``final-read``: ``ok`` ``{"end-offsets": {"p": offset}, "complete": bool}`` after the final
  reader has polled every partition up to the end offsets it saw once every fault was healed.
- Nemesis faults (process ``nemesis``): ``invoke`` when a fault starts, ``ok`` when it ends,
  ``f`` the fault's name, value what it targets.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

Event = dict[str, Any]

INVOKE, OK, FAIL, INFO = "invoke", "ok", "fail", "info"
COMPLETIONS = (OK, FAIL, INFO)


class History:
    """Appends events to a JSON-lines file as they happen; thread-safe."""

    def __init__(self, path: Path, started_at: float | None = None) -> None:
        self.path = path
        self.started_at = time.monotonic() if started_at is None else started_at
        self._lock = threading.Lock()
        self._file: TextIO = open(path, "w", encoding="utf-8")
        self._count = 0
        self._next_op = 0

    def now(self) -> float:
        return time.monotonic() - self.started_at

    def record(self, process: str, type_: str, f: str, value: Any = None, error: str | None = None,
               op: int | None = None) -> Event:
        """Writes one event. A completion passes its invoke's ``op``; anything else gets a new one."""
        event: Event = {"process": process, "type": type_, "f": f, "value": value}
        if error is not None:
            event["error"] = error
        with self._lock:
            if op is None:
                op = self._next_op
                self._next_op += 1
            event = {"index": self._count, "op": op, "time": round(self.now(), 6), **event}
            self._count += 1
            self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
        return event

    def flush(self) -> None:
        with self._lock:
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read_history(path: Path) -> list[Event]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def pairs(events: Iterable[Event]) -> Iterator[tuple[Event, Event | None]]:
    """Each invoke with its completion (None if the run ended first), in invoke order.

    Events that complete without an invoke (``assign`` from a rebalance, ``final-read``) come as
    ``(event, event)``.
    """
    ordered: list[list[Event | None]] = []
    slot_of: dict[int, int] = {}
    for event in events:
        if event["type"] == INVOKE:
            slot_of[event["op"]] = len(ordered)
            ordered.append([event, None])
        elif event["op"] in slot_of:
            ordered[slot_of.pop(event["op"])][1] = event
        else:
            ordered.append([event, event])
    for invoke, completion in ordered:
        yield invoke, completion
