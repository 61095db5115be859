"""Checks a run's history for the anomalies Jepsen's Kafka checker looks for.

``check(events)`` is a pure function of the history. It reads the events once to build each
partition's version order and the fate of every send, a second time to follow each consumer's
position through the log, and returns a ``Verdict``. A third pass runs only when some example
needs to name the events that observed it.

Rules:

- A partition's version order maps each offset to the values observed there, by polls of any
  outcome (a broker must never hand out data it has not committed, so even a poll that later
  failed saw safe data) and by ``ok`` sends that carry an offset. An ``info`` send that reports an
  offset contributes it once an ``ok`` poll has proven the value was written.
- The dense index of an offset is its rank among the partition's observed offsets, so the gaps
  that transaction markers or compaction leave are not mistaken for skipped records.
- Only ``ok`` polls count as reads for lost-write and unseen: they are the reads a client was
  told succeeded.
- A consumer's position restarts when its assignment is replaced (an ``assign`` event, ``ok``
  or ``info``), so no skip or step backwards is judged across one. Polls that did not complete
  ``ok`` are left out of the position checks, since nobody knows how far they moved the client.
- Nemesis events describe faults, not data, and are ignored.
- ``unseen`` is allowed unless a complete final read happened: without one, a value nobody read
  may only be late. Without idempotence, ``duplicate`` and ``nonmonotonic-send`` are allowed,
  because a producer's retries may write a batch twice or reorder batches.

This workload is not transactional, so Elle's cycle anomalies cannot arise from it and are not
checked; a transactional workload would add G0 and G1c, built from write-write and write-read
edges over the same version order.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .history import FAIL, INFO, INVOKE, OK, Event

EXAMPLES_MAX = 8  # examples kept per anomaly; the count still covers every instance
SKIPPED_VALUES_MAX = 8  # skipped values listed in one poll-skip example
WITNESSES_MAX = 4  # observing events listed per duplicated value or inconsistent offset
SUMMARY_EXAMPLES_MAX = 3
NEMESIS = "nemesis"

MEANINGS: dict[str, str] = {
    "lost-write": "An acknowledged value was never read although reads went past its offset.",
    "unseen": "An acknowledged value was never read, and no read went past it: lost or only late.",
    "duplicate": "One value was observed at more than one offset.",
    "inconsistent-offsets": "Two or more distinct values were observed at the same offset.",
    "G1a": "A value whose send definitely failed was read anyway.",
    "nonmonotonic-send": "A producer's later send landed at or before its earlier send.",
    "poll-skip": "A consumer's next poll started past the record after the one it last read.",
    "nonmonotonic-poll": "A consumer's next poll started at or before the record it last read.",
    "int-poll-skip": "Within one poll, consecutive records of a partition skipped over records.",
    "int-nonmonotonic-poll": "Within one poll, records of a partition went backwards or repeated.",
    "nonmonotonic-commit": "A group's committed offset for a partition went backwards.",
}


@dataclass(frozen=True, slots=True)
class AnomalyReport:
    """One kind of anomaly: how often it happened and the first few instances."""

    name: str
    count: int
    examples: tuple[dict[str, Any], ...]
    allowed: bool
    meaning: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "count": self.count, "allowed": self.allowed,
                "meaning": self.meaning, "examples": [dict(example) for example in self.examples]}


@dataclass(frozen=True, slots=True)
class Verdict:
    """The checker's answer: valid unless some anomaly that is not allowed was found."""

    valid: bool
    anomalies: dict[str, AnomalyReport]
    stats: dict[str, Any]
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"valid": self.valid, "stats": dict(self.stats), "notes": list(self.notes),
                "anomalies": {name: report.to_json() for name, report in self.anomalies.items()}}


class _Send(NamedTuple):
    """One send as the history tells it; ``outcome`` is None when it never completed."""

    value: Any
    partition: int | None
    outcome: str | None
    offset: int | None
    process: str
    op: int
    invoke_position: int
    completion_time: float | None


class _Read(NamedTuple):
    """Where a consumer stood in a partition after reading one record."""

    index: int
    offset: int
    op: int
    time: float | None


class _Log:
    """Every partition's version order, filled while the history is read, then sealed.

    Only the first value seen at an offset and the first place seen for a value live in the
    main maps; disagreements go to side maps, so a clean history of millions of records costs
    one entry per offset and one per value.
    """

    __slots__ = ("first_value", "conflicts", "place", "extra_places", "offsets")

    def __init__(self) -> None:
        self.first_value: dict[int, dict[int, Any]] = {}
        self.conflicts: dict[tuple[int, int], set[Any]] = {}
        self.place: dict[Any, tuple[int, int]] = {}
        self.extra_places: dict[Any, set[tuple[int, int]]] = {}
        self.offsets: dict[int, list[int]] = {}

    def observe(self, partition: int, offset: int, value: Any) -> None:
        first = self.first_value.setdefault(partition, {}).setdefault(offset, value)
        if first != value:
            self.conflicts.setdefault((partition, offset), {first}).add(value)
        here = (partition, offset)
        known = self.place.setdefault(value, here)
        if known != here:
            self.extra_places.setdefault(value, {known}).add(here)

    def seal(self) -> None:
        """Sorts each partition's offsets once, so an index is a binary search."""
        self.offsets = {partition: sorted(values) for partition, values in self.first_value.items()}

    def index(self, partition: int, offset: int) -> int:
        return bisect.bisect_left(self.offsets[partition], offset)

    def indexes(self, value: Any, partition: int | None) -> list[int]:
        """The dense indexes at which ``value`` was observed in ``partition``, maybe none."""
        places = self.extra_places.get(value)
        if places is None:
            places = (self.place[value],) if value in self.place else ()
        return [self.index(where, offset) for where, offset in places if where == partition]

    def values_between(self, partition: int, first_index: int, end_index: int) -> list[Any]:
        values = self.first_value[partition]
        return [values[offset] for offset in self.offsets[partition][first_index:end_index]]


class _Findings:
    """Counts every instance of each anomaly and keeps the first few as examples.

    Examples are built by a callable only while there is room, so an anomaly with a million
    instances costs a million increments, not a million dictionaries.
    """

    __slots__ = ("counts", "examples")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.examples: dict[str, list[dict[str, Any]]] = {}

    def add(self, name: str, example: Callable[[], dict[str, Any]]) -> None:
        count = self.counts.get(name, 0)
        self.counts[name] = count + 1
        if count < EXAMPLES_MAX:
            self.examples.setdefault(name, []).append(example())


class _Scan:
    """What the first pass learns besides the version order."""

    __slots__ = ("sends", "read_ok", "read_any", "ok_polls", "final_complete")

    def __init__(self) -> None:
        self.sends: dict[Any, _Send] = {}
        self.read_ok: set[Any] = set()
        self.read_any: set[Any] = set()
        self.ok_polls = 0
        self.final_complete = False


def check(events: Iterable[Event], *, idempotent: bool = True) -> Verdict:
    """Judges a whole history; ``idempotent`` says whether the producers ran with idempotence."""
    if not isinstance(events, Sequence):
        events = list(events)
    log, findings = _Log(), _Findings()
    scan = _first_pass(events, log, findings)
    for send in scan.sends.values():
        if send.outcome == INFO and send.offset is not None and send.value in scan.read_ok:
            log.observe(send.partition, send.offset, send.value)
    log.seal()
    _check_log(log, findings)
    _check_sends(scan, findings)
    bounds = _check_consumers(events, log, findings)
    _check_reads(scan, log, bounds, findings)
    _attach_witnesses(events, findings)
    return _verdict(findings, _stats(scan, log), idempotent=idempotent,
                    final_complete=scan.final_complete)


def _first_pass(events: Sequence[Event], log: _Log, findings: _Findings) -> _Scan:
    """Reads sends, polls, commits and the final read, pairing completions with invokes by op."""
    scan = _Scan()
    pending: dict[int, tuple[int, Event]] = {}
    committed: dict[tuple[Any, int], int] = {}
    for position, event in enumerate(events):
        if event.get("process") == NEMESIS:
            continue
        kind = event["type"]
        if kind == INVOKE:
            pending[event["op"]] = (position, event)
            continue
        invoke_position, invoke = pending.pop(event["op"], (position, event))
        f = event.get("f")
        if f == "send":
            _record_send(scan, log, invoke_position, invoke, event)
        elif f == "poll":
            _record_poll(scan, log, event)
        elif f == "commit" and kind == OK:
            _check_commit(committed, invoke, event, findings)
        elif f == "final-read" and kind == OK and (event.get("value") or {}).get("complete"):
            scan.final_complete = True
    for invoke_position, invoke in pending.values():
        if invoke.get("f") == "send":
            _record_send(scan, log, invoke_position, invoke, None)
    return scan


def _record_send(scan: _Scan, log: _Log, invoke_position: int, invoke: Event,
                 completion: Event | None) -> None:
    sent = invoke.get("value") or {}
    result = (completion.get("value") if completion else None) or sent
    value = result.get("value", sent.get("value"))
    partition = result.get("partition", sent.get("partition"))
    offset = result.get("offset")
    outcome = completion["type"] if completion else None
    scan.sends[value] = _Send(value, partition, outcome, offset, invoke["process"], invoke["op"],
                              invoke_position, completion.get("time") if completion else None)
    if outcome == OK and offset is not None:
        log.observe(partition, offset, value)


def _records(event: Event) -> Sequence[Sequence[Any]]:
    value = event.get("value")
    return (value.get("records") or ()) if isinstance(value, dict) else ()


def _record_poll(scan: _Scan, log: _Log, event: Event) -> None:
    ok = event["type"] == OK
    scan.ok_polls += ok
    for partition, offset, value in _records(event):
        log.observe(partition, offset, value)
        scan.read_any.add(value)
        if ok:
            scan.read_ok.add(value)


def _check_commit(committed: dict[tuple[Any, int], int], invoke: Event, completion: Event,
                  findings: _Findings) -> None:
    """Kafka fences a zombie member's commits, so a group's offset may only move forwards."""
    request = completion.get("value") or invoke.get("value") or {}
    group = request.get("group")
    for key, offset in (request.get("offsets") or {}).items():
        partition = int(key)
        highest = committed.get((group, partition))
        if highest is None or offset >= highest:
            committed[(group, partition)] = offset
            continue
        findings.add("nonmonotonic-commit", lambda: {
            "group": group, "partition": partition, "offset": offset, "highest_before": highest,
            "process": completion.get("process"), "op": completion.get("op"),
            "time": completion.get("time")})


def _check_log(log: _Log, findings: _Findings) -> None:
    for value, places in log.extra_places.items():
        findings.add("duplicate", lambda: {
            "value": value, "positions": [list(place) for place in sorted(places)]})
    for (partition, offset), values in log.conflicts.items():
        findings.add("inconsistent-offsets", lambda: {
            "partition": partition, "offset": offset, "values": sorted(values)})


def _send_example(send: _Send) -> dict[str, Any]:
    return {"partition": send.partition, "value": send.value, "offset": send.offset,
            "process": send.process, "op": send.op, "time": send.completion_time}


def _check_sends(scan: _Scan, findings: _Findings) -> None:
    """G1a over failed sends; nonmonotonic-send over each producer's ok sends in invoke order."""
    chains: dict[tuple[str, Any], list[_Send]] = {}
    for send in scan.sends.values():
        if send.outcome == FAIL and send.value in scan.read_any:
            findings.add("G1a", lambda: _send_example(send))
        elif send.outcome == OK and send.offset is not None:
            chains.setdefault((send.process, send.partition), []).append(send)
    for chain in chains.values():
        chain.sort(key=lambda send: send.invoke_position)
        for earlier, later in itertools.pairwise(chain):
            if later.offset <= earlier.offset:
                findings.add("nonmonotonic-send", lambda: {
                    "process": later.process, "partition": later.partition,
                    "earlier": _send_example(earlier), "later": _send_example(later)})


def _check_consumers(events: Sequence[Event], log: _Log,
                     findings: _Findings) -> dict[int, tuple[int, Any]]:
    """Follows each consumer's position per partition through its ok polls, in completion order.

    Returns, per partition, the lost-write bound: the highest earliest index of any value an ok
    poll read, with that value.
    """
    bounds: dict[int, tuple[int, Any]] = {}
    last_read: dict[str, dict[int, _Read]] = {}
    for event in events:
        kind = event["type"]
        if kind == INVOKE or event.get("process") == NEMESIS:
            continue
        f = event.get("f")
        if f == "assign" and kind in (OK, INFO):
            last_read.pop(event["process"], None)
        elif f == "poll" and kind == OK:
            _check_poll(event, log, last_read.setdefault(event["process"], {}), bounds, findings)
    return bounds


def _check_poll(event: Event, log: _Log, last_read: dict[int, _Read],
                bounds: dict[int, tuple[int, Any]], findings: _Findings) -> None:
    process, op, time = event["process"], event["op"], event.get("time")
    in_poll: dict[int, _Read] = {}
    for partition, offset, value in _records(event):
        read = _Read(log.index(partition, offset), offset, op, time)
        _raise_bound(bounds, log, partition, read.index, value)
        earlier = in_poll.get(partition)
        if earlier is not None:
            _check_step(findings, log, ("int-poll-skip", "int-nonmonotonic-poll"),
                        process, partition, earlier, read)
        elif partition in last_read:
            _check_step(findings, log, ("poll-skip", "nonmonotonic-poll"),
                        process, partition, last_read[partition], read)
        in_poll[partition] = read
    last_read.update(in_poll)


def _raise_bound(bounds: dict[int, tuple[int, Any]], log: _Log, partition: int, index: int,
                 value: Any) -> None:
    """A value seen at several offsets counts at its earliest, as Jepsen's conservative rule."""
    if value in log.extra_places:
        index = min(log.indexes(value, partition), default=index)
    bound = bounds.get(partition)
    if bound is None or index > bound[0]:
        bounds[partition] = (index, value)


def _check_step(findings: _Findings, log: _Log, names: tuple[str, str], process: str,
                partition: int, earlier: _Read, later: _Read) -> None:
    """The next record a consumer reads must sit at exactly the next index."""
    delta = later.index - earlier.index
    if delta == 1:
        return
    skip_name, backward_name = names
    findings.add(skip_name if delta > 1 else backward_name, lambda: {
        "process": process, "partition": partition, "delta": delta,
        "from_offset": earlier.offset, "to_offset": later.offset,
        "from_op": earlier.op, "to_op": later.op, "time": later.time,
        "skipped": log.values_between(partition, earlier.index + 1,
                                      min(later.index, earlier.index + 1 + SKIPPED_VALUES_MAX))})


def _check_reads(scan: _Scan, log: _Log, bounds: dict[int, tuple[int, Any]],
                 findings: _Findings) -> None:
    """Every acknowledged value nobody read is a lost write below the bound, unseen above it."""
    for send in scan.sends.values():
        if send.outcome != OK or send.value in scan.read_ok:
            continue
        indexes = log.indexes(send.value, send.partition)
        bound = bounds.get(send.partition)
        if indexes and bound is not None and max(indexes) <= bound[0]:
            findings.add("lost-write", lambda: {
                **_send_example(send), "index": max(indexes), "bound_index": bound[0],
                "bound_value": bound[1]})
        else:
            findings.add("unseen", lambda: _send_example(send))


def _observations(event: Event) -> Iterable[Sequence[Any]]:
    """The (partition, offset, value) triples one completion event tells about."""
    f = event.get("f")
    if f == "poll":
        return _records(event)
    value = event.get("value")
    if f == "send" and isinstance(value, dict) and value.get("offset") is not None:
        return ((value.get("partition"), value["offset"], value.get("value")),)
    return ()


def _attach_witnesses(events: Sequence[Event], findings: _Findings) -> None:
    """Names the events that observed each example's value or offset, so it can be traced."""
    wanted: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for name in ("duplicate", "G1a"):
        for example in findings.examples.get(name, ()):
            example["seen_by"] = wanted.setdefault(("value", example["value"]), [])
    for example in findings.examples.get("inconsistent-offsets", ()):
        key = ("offset", example["partition"], example["offset"])
        example["seen_by"] = wanted.setdefault(key, [])
    if not wanted:
        return
    for event in events:
        if event["type"] == INVOKE or event.get("process") == NEMESIS:
            continue
        for partition, offset, value in _observations(event):
            for key in (("value", value), ("offset", partition, offset)):
                seen = wanted.get(key)
                if seen is not None and len(seen) < WITNESSES_MAX:
                    seen.append({"process": event.get("process"), "op": event.get("op"),
                                 "f": event.get("f"), "type": event["type"],
                                 "partition": partition, "offset": offset, "value": value})


def _stats(scan: _Scan, log: _Log) -> dict[str, Any]:
    outcomes = Counter(send.outcome for send in scan.sends.values())
    partitions = set(log.offsets)
    partitions.update(send.partition for send in scan.sends.values() if send.partition is not None)
    return {"acknowledged_sends": outcomes[OK], "failed_sends": outcomes[FAIL],
            "indeterminate_sends": outcomes[INFO] + outcomes[None],
            "values_read": len(scan.read_ok), "ok_polls": scan.ok_polls,
            "partitions": len(partitions), "final_read_complete": scan.final_complete}


def _verdict(findings: _Findings, stats: dict[str, Any], *, idempotent: bool,
             final_complete: bool) -> Verdict:
    allowed: set[str] = set()
    notes: list[str] = []
    if final_complete:
        notes.append("The final read was complete, so every unseen value counts as lost.")
    else:
        allowed.add("unseen")
        notes.append("No complete final read: unseen values may only be late, so they are "
                     "reported but allowed.")
    if not idempotent:
        allowed.update(("duplicate", "nonmonotonic-send"))
        notes.append("Idempotence was off: retries may duplicate and reorder sends, so duplicate "
                     "and nonmonotonic-send are reported but allowed.")
    anomalies = {
        name: AnomalyReport(name, findings.counts[name], tuple(findings.examples.get(name, ())),
                            name in allowed, meaning)
        for name, meaning in MEANINGS.items() if name in findings.counts}
    valid = all(report.allowed for report in anomalies.values())
    return Verdict(valid, anomalies, stats, tuple(notes))


def summary_text(verdict: Verdict) -> str:
    """A few lines for a person: the verdict, the stats, then each anomaly with examples."""
    failing = [name for name, report in verdict.anomalies.items() if not report.allowed]
    lines = ["valid" if verdict.valid else "INVALID: " + ", ".join(failing)]
    lines.append(", ".join(f"{key.replace('_', ' ')}: {_stat_text(value)}"
                           for key, value in verdict.stats.items()))
    for report in verdict.anomalies.values():
        allowed = " (allowed)" if report.allowed else ""
        examples = json.dumps(list(report.examples[:SUMMARY_EXAMPLES_MAX]),
                              separators=(",", ":"), default=str)
        lines.append(f"{report.name}: {report.count}{allowed}, e.g. {examples}")
    lines.extend(f"note: {note}" for note in verdict.notes)
    return "\n".join(lines)


def _stat_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
