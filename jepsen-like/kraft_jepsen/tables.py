"""The table a repeated run prints: runs, faults, acknowledged writes and each anomaly's count."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from .checker import MEANINGS


def repeat_table(broker: str, results: Sequence, harness_errors: int = 0) -> str:
    """A Markdown table with one row: totals over the runs (valid runs, faults, acks, anomalies);
    runs the harness could not finish are counted apart and judged nothing."""
    anomalies: Counter[str] = Counter()
    acknowledged = faults = valid = 0
    for result in results:
        verdict = result.verdict
        valid += bool(result.valid)
        faults += result.faults_started
        acknowledged += verdict["stats"].get("acknowledged_sends", 0)
        for name, report in verdict["anomalies"].items():
            anomalies[name] += report["count"]
    columns = list(MEANINGS) + sorted(set(anomalies) - set(MEANINGS))
    header = ["broker", "runs", "valid", "harness errors", "faults", "acknowledged writes", *columns]
    row = [broker, str(len(results)), str(valid), str(harness_errors), str(faults), str(acknowledged),
           *(str(anomalies.get(name, 0)) for name in columns)]
    return "\n".join(("| " + " | ".join(header) + " |", "|" + "---|" * len(header), "| " + " | ".join(row) + " |"))
