"""The Jepsen-style checker against small synthetic histories, one anomaly at a time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kraft_jepsen.checker import check, summary_text
from kraft_jepsen.history import History, read_history


class Builder:
    """Appends events in memory the way ``History.record`` writes them, on a fake clock."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.next_op = 0

    def record(self, process: str, type_: str, f: str, value: Any = None,
               op: int | None = None) -> int:
        if op is None:
            op = self.next_op
            self.next_op += 1
        self.events.append({"index": len(self.events), "op": op, "time": len(self.events) * 0.01,
                            "process": process, "type": type_, "f": f, "value": value})
        return op

    def send_invoke(self, partition: int, value: int, process: str = "producer-0") -> int:
        return self.record(process, "invoke", "send", {"partition": partition, "value": value})

    def send_complete(self, op: int, partition: int, value: int, offset: int | None,
                      type_: str = "ok", process: str = "producer-0") -> None:
        self.record(process, type_, "send",
                    {"partition": partition, "value": value, "offset": offset}, op=op)

    def send(self, partition: int, value: int, offset: int | None, type_: str = "ok",
             process: str = "producer-0") -> None:
        op = self.send_invoke(partition, value, process)
        self.send_complete(op, partition, value, offset, type_, process)

    def poll(self, process: str, records: list[list[int]], type_: str = "ok") -> None:
        op = self.record(process, "invoke", "poll")
        self.record(process, type_, "poll", {"records": records}, op=op)

    def assign(self, process: str, partitions: list[int]) -> None:
        self.record(process, "ok", "assign", {"partitions": partitions})

    def commit(self, group: str, offsets: dict[str, int], type_: str = "ok",
               process: str = "group-0") -> None:
        value = {"group": group, "offsets": offsets}
        op = self.record(process, "invoke", "commit", value)
        self.record(process, type_, "commit", value, op=op)

    def final_read(self, end_offsets: dict[str, int], complete: bool = True) -> None:
        self.record("final-reader", "ok", "final-read",
                    {"end-offsets": end_offsets, "complete": complete})

    def nemesis(self, fault: str) -> None:
        op = self.record("nemesis", "invoke", fault, {"nodes": [1]})
        self.record("nemesis", "ok", fault, {"nodes": [1]}, op=op)


def names(verdict) -> set[str]:
    return set(verdict.anomalies)


def sends_in_order(builder: Builder, partition: int, values: list[int], first_offset: int = 0,
                   process: str = "producer-0") -> list[list[int]]:
    """Acknowledges ``values`` at consecutive offsets and returns them as poll records."""
    records = []
    for offset, value in enumerate(values, start=first_offset):
        builder.send(partition, value, offset, process=process)
        records.append([partition, offset, value])
    return records


def test_clean_history_is_valid_with_exact_stats() -> None:
    builder = Builder()
    builder.assign("assign-0", [0, 1])
    first = sends_in_order(builder, 0, [10, 11, 12])
    builder.nemesis("partition")
    second = sends_in_order(builder, 1, [20, 21], process="producer-1")
    builder.poll("assign-0", first[:2] + second[:1])
    builder.poll("assign-0", first[2:] + second[1:])
    builder.poll("group-1", first)
    builder.commit("g", {"0": 2})
    builder.commit("g", {"0": 3, "1": 2})
    builder.assign("final-reader", [0, 1])
    builder.poll("final-reader", first + second)
    builder.final_read({"0": 3, "1": 2}, complete=True)
    verdict = check(builder.events)
    assert verdict.valid, f"expected valid, got {summary_text(verdict)}"
    assert verdict.anomalies == {}, f"expected no anomalies, got {set(verdict.anomalies)}"
    expected = {"acknowledged_sends": 5, "failed_sends": 0, "indeterminate_sends": 0,
                "values_read": 5, "ok_polls": 4, "partitions": 2, "final_read_complete": True}
    assert verdict.stats == expected
    assert verdict.to_json()["valid"] is True


def test_acknowledged_value_missing_below_the_bound_is_a_lost_write() -> None:
    builder = Builder()
    builder.send(0, 1, 0)
    builder.send(0, 2, 1)
    builder.send(0, 3, 2)
    builder.poll("assign-0", [[0, 0, 1]])
    builder.assign("assign-0", [0])  # a fresh position, so the gap is not also a poll-skip
    builder.poll("assign-0", [[0, 2, 3]])
    verdict = check(builder.events)
    assert names(verdict) == {"lost-write"}
    assert not verdict.valid, "a lost write must invalidate the verdict"
    example = verdict.anomalies["lost-write"].examples[0]
    assert (example["value"], example["index"], example["bound_index"]) == (2, 1, 2), example


def unseen_history(final_read: bool) -> Builder:
    builder = Builder()
    builder.send(0, 1, 0)
    builder.send(0, 2, 1)
    builder.poll("final-reader", [[0, 0, 1]])
    if final_read:
        builder.final_read({"0": 2}, complete=True)
    return builder


def test_unseen_after_a_complete_final_read_is_invalid() -> None:
    verdict = check(unseen_history(final_read=True).events)
    assert names(verdict) == {"unseen"}
    report = verdict.anomalies["unseen"]
    assert (report.count, report.allowed, verdict.valid) == (1, False, False)
    assert report.examples[0]["value"] == 2


def test_unseen_without_a_complete_final_read_is_allowed() -> None:
    verdict = check(unseen_history(final_read=False).events)
    assert names(verdict) == {"unseen"}
    assert verdict.anomalies["unseen"].allowed, "unseen must be allowed without a final read"
    assert verdict.valid, f"expected valid, got {summary_text(verdict)}"
    assert any("final read" in note for note in verdict.notes), verdict.notes


def duplicate_history() -> Builder:
    builder = Builder()
    builder.send(0, 1, 0)
    builder.poll("assign-0", [[0, 0, 1], [0, 1, 1]])
    return builder


def test_duplicate_is_invalid_with_idempotence() -> None:
    verdict = check(duplicate_history().events)
    assert names(verdict) == {"duplicate"}
    assert not verdict.valid
    example = verdict.anomalies["duplicate"].examples[0]
    assert example["positions"] == [[0, 0], [0, 1]], example
    seen = [(witness["f"], witness["offset"]) for witness in example["seen_by"]]
    assert seen == [("send", 0), ("poll", 0), ("poll", 1)], example


def test_duplicate_is_allowed_without_idempotence() -> None:
    verdict = check(duplicate_history().events, idempotent=False)
    assert names(verdict) == {"duplicate"}
    assert verdict.valid and verdict.anomalies["duplicate"].allowed


def test_inconsistent_offsets_from_an_ack_and_a_read() -> None:
    """The acknowledged value is missing where the ack put it, so it is also a lost write."""
    builder = Builder()
    builder.send(0, 1, 0)
    builder.send(0, 2, None, type_="info")
    builder.poll("assign-0", [[0, 0, 2]])
    verdict = check(builder.events)
    assert names(verdict) == {"inconsistent-offsets", "lost-write"}
    example = verdict.anomalies["inconsistent-offsets"].examples[0]
    assert (example["offset"], example["values"]) == (0, [1, 2]), example
    assert {witness["f"] for witness in example["seen_by"]} == {"send", "poll"}, example


def test_inconsistent_offsets_from_two_readers() -> None:
    builder = Builder()
    builder.send(0, 1, 0)
    builder.send(0, 2, None, type_="info")
    builder.poll("assign-0", [[0, 0, 1]])
    builder.poll("assign-1", [[0, 0, 2]])
    verdict = check(builder.events)
    assert names(verdict) == {"inconsistent-offsets"}
    assert verdict.anomalies["inconsistent-offsets"].count == 1


def test_failed_send_that_was_read_is_g1a() -> None:
    builder = Builder()
    builder.send(0, 1, 0)
    builder.send(0, 2, None, type_="fail")
    builder.poll("assign-0", [[0, 0, 1], [0, 1, 2]])
    verdict = check(builder.events)
    assert names(verdict) == {"G1a"}
    example = verdict.anomalies["G1a"].examples[0]
    assert example["value"] == 2 and example["seen_by"][0]["process"] == "assign-0", example
    assert verdict.stats["failed_sends"] == 1


def reordered_sends() -> Builder:
    builder = Builder()
    first = builder.send_invoke(0, 1)
    second = builder.send_invoke(0, 2)
    builder.send_complete(second, 0, 2, 0)
    builder.send_complete(first, 0, 1, 1)
    builder.poll("assign-0", [[0, 0, 2], [0, 1, 1]])
    return builder


def test_later_send_landing_earlier_is_nonmonotonic_send() -> None:
    verdict = check(reordered_sends().events)
    assert names(verdict) == {"nonmonotonic-send"}
    example = verdict.anomalies["nonmonotonic-send"].examples[0]
    assert (example["earlier"]["value"], example["later"]["value"]) == (1, 2), example


def test_nonmonotonic_send_is_allowed_without_idempotence() -> None:
    verdict = check(reordered_sends().events, idempotent=False)
    assert names(verdict) == {"nonmonotonic-send"} and verdict.valid


def four_values() -> tuple[Builder, list[list[int]]]:
    builder = Builder()
    records = sends_in_order(builder, 0, [1, 2, 3, 4])
    builder.poll("final-reader", records)
    return builder, records


def test_next_poll_starting_past_the_next_record_is_poll_skip() -> None:
    builder, records = four_values()
    builder.poll("assign-0", records[:2])
    builder.poll("assign-0", records[3:])
    verdict = check(builder.events)
    assert names(verdict) == {"poll-skip"}
    example = verdict.anomalies["poll-skip"].examples[0]
    assert (example["delta"], example["skipped"]) == (2, [3]), example


def test_next_poll_starting_at_or_before_the_last_record_is_nonmonotonic_poll() -> None:
    builder, records = four_values()
    builder.poll("assign-0", records[:2])
    builder.poll("assign-0", records[1:])
    verdict = check(builder.events)
    assert names(verdict) == {"nonmonotonic-poll"}
    assert verdict.anomalies["nonmonotonic-poll"].examples[0]["delta"] == 0


def test_skip_within_one_poll_is_int_poll_skip() -> None:
    builder, records = four_values()
    builder.poll("assign-0", [records[0], records[2]])
    verdict = check(builder.events)
    assert names(verdict) == {"int-poll-skip"}
    assert verdict.anomalies["int-poll-skip"].examples[0]["skipped"] == [2]


def test_step_back_within_one_poll_is_int_nonmonotonic_poll() -> None:
    builder, records = four_values()
    builder.poll("assign-0", [records[0], records[1], records[0]])
    verdict = check(builder.events)
    assert names(verdict) == {"int-nonmonotonic-poll"}
    assert verdict.anomalies["int-nonmonotonic-poll"].examples[0]["delta"] == -1


def test_an_assign_restarts_the_position() -> None:
    builder, records = four_values()
    builder.poll("assign-0", records[:2])
    builder.assign("assign-0", [0])
    builder.poll("assign-0", records[:1])
    builder.assign("assign-0", [0])
    builder.poll("assign-0", records[3:])
    verdict = check(builder.events)
    assert names(verdict) == set(), summary_text(verdict)


def test_offset_gaps_nobody_observed_are_not_skips() -> None:
    builder = Builder()
    records = sends_in_order(builder, 0, [1, 2]) + sends_in_order(builder, 0, [3, 4], 5)
    builder.poll("assign-0", records[:2])
    builder.poll("assign-0", records[2:])
    builder.poll("final-reader", records)
    builder.final_read({"0": 7})
    verdict = check(builder.events)
    assert names(verdict) == set(), summary_text(verdict)


def test_committed_offset_going_backwards_is_nonmonotonic_commit() -> None:
    builder = Builder()
    builder.commit("g", {"0": 5, "1": 2})
    builder.commit("g", {"0": 1}, type_="fail")  # a failed commit changed nothing
    builder.commit("h", {"0": 1})  # another group has its own offsets
    builder.commit("g", {"0": 3, "1": 2})
    verdict = check(builder.events)
    assert names(verdict) == {"nonmonotonic-commit"}
    report = verdict.anomalies["nonmonotonic-commit"]
    assert report.count == 1, report
    example = report.examples[0]
    assert (example["group"], example["partition"], example["offset"],
            example["highest_before"]) == ("g", 0, 3, 5), example


def test_indeterminate_sends_never_read_are_not_lost() -> None:
    builder = Builder()
    builder.send(0, 1, 0)
    builder.send(0, 2, None, type_="info")
    builder.send_invoke(0, 3)  # never completes
    builder.poll("final-reader", [[0, 0, 1]])
    builder.final_read({"0": 1})
    verdict = check(builder.events)
    assert names(verdict) == set(), summary_text(verdict)
    assert verdict.stats["indeterminate_sends"] == 2, verdict.stats


def test_indeterminate_send_that_was_read_counts_as_read() -> None:
    builder = Builder()
    builder.send(0, 1, 0)
    builder.send(0, 2, None, type_="info")
    builder.poll("final-reader", [[0, 0, 1], [0, 1, 2]])
    builder.final_read({"0": 2})
    verdict = check(builder.events)
    assert names(verdict) == set(), summary_text(verdict)
    assert verdict.stats["values_read"] == 2, verdict.stats


def test_history_file_round_trip(tmp_path: Path) -> None:
    history = History(tmp_path / "history.jsonl")
    for offset, value in enumerate([7, 8]):
        op = history.record("producer-0", "invoke", "send", {"partition": 0, "value": value})["op"]
        history.record("producer-0", "ok", "send",
                       {"partition": 0, "value": value, "offset": offset}, op=op)
    history.record("nemesis", "invoke", "kill", {"nodes": [2]})
    op = history.record("final-reader", "invoke", "poll")["op"]
    history.record("final-reader", "ok", "poll", {"records": [[0, 0, 7], [0, 1, 8]]}, op=op)
    history.record("final-reader", "ok", "final-read", {"end-offsets": {"0": 2}, "complete": True})
    history.close()
    verdict = check(read_history(tmp_path / "history.jsonl"))
    assert verdict.valid and names(verdict) == set(), summary_text(verdict)
    assert (verdict.stats["acknowledged_sends"], verdict.stats["values_read"]) == (2, 2)


def test_summary_first_line() -> None:
    valid = check(duplicate_history().events, idempotent=False)
    assert summary_text(valid).splitlines()[0] == "valid"
    builder = duplicate_history()
    builder.send(0, 2, 2)
    builder.send(0, 3, 3)
    builder.poll("assign-1", [[0, 3, 3]])
    builder.final_read({"0": 4})
    invalid = check(builder.events)
    assert names(invalid) == {"lost-write", "duplicate"}, set(invalid.anomalies)
    text = summary_text(invalid)
    assert text.splitlines()[0] == "INVALID: lost-write, duplicate", text
    assert "lost-write: 1" in text, text
    round_trip = json.loads(json.dumps(invalid.to_json()))
    assert round_trip["anomalies"]["duplicate"]["count"] == 1, round_trip
