"""The run's plots (matplotlib, PNG): what the clients saw over time, with the faults shaded.

``latency.png``: acknowledged sends per second and each send's latency (ok, info and fail in
their own colours) over time; ``offsets.png``: the offset every acknowledged send got, per
partition, over time. Each fault window is a shaded band labelled with the fault's name.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from .history import FAIL, INFO, OK, Event, pairs

FAULT_COLOURS = ("#f4cccc", "#d9ead3", "#cfe2f3", "#fff2cc", "#ead1dc", "#d0e0e3")


def _fault_windows(events: list[Event]) -> list[tuple[float, float, str]]:
    end_time = events[-1]["time"] if events else 0.0
    windows = []
    for invoke, completion in pairs(e for e in events if e["process"] == "nemesis"):
        if invoke["type"] == "invoke":
            windows.append((invoke["time"], completion["time"] if completion else end_time, invoke["f"]))
    return windows


def _shade(axes, windows) -> None:
    names = sorted({name for _, _, name in windows})
    previous_start, stacked = None, 0
    for start, end, name in sorted(windows):
        colour = FAULT_COLOURS[names.index(name) % len(FAULT_COLOURS)]
        for axis in axes:
            axis.axvspan(start, end, color=colour, alpha=0.45, lw=0)
        # Faults that start together get their labels one above the other.
        stacked = stacked + 1 if previous_start is not None and start - previous_start < 1.0 else 0
        previous_start = start
        axes[0].text(start, 1.01 + 0.07 * stacked, name, transform=axes[0].get_xaxis_transform(), fontsize=6,
                     va="bottom")


def plot_run(events: list[Event], directory: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    sends = [(invoke, completion) for invoke, completion in pairs(events)
             if invoke["f"] == "send" and invoke["type"] == "invoke" and completion is not None]
    windows = _fault_windows(events)
    figure, (throughput, latency) = pyplot.subplots(2, 1, sharex=True, figsize=(11, 6))
    per_second = Counter(int(c["time"]) for _, c in sends if c["type"] == OK)
    seconds = range(0, int(max((c["time"] for _, c in sends), default=0)) + 1)
    throughput.plot(list(seconds), [per_second.get(s, 0) for s in seconds], color="black", lw=1)
    throughput.set_ylabel("acknowledged sends / s")
    for outcome, colour in ((OK, "tab:blue"), (INFO, "tab:orange"), (FAIL, "tab:red")):
        chosen = [(i["time"], (c["time"] - i["time"]) * 1000) for i, c in sends if c["type"] == outcome]
        if chosen:
            latency.scatter(*zip(*chosen), s=1, color=colour, label=f"{outcome} ({len(chosen)})", rasterized=True)
    latency.set_yscale("log")
    latency.set_ylabel("send latency (ms)")
    latency.set_xlabel("time since the run started (s)")
    latency.legend(loc="upper right", fontsize=7, markerscale=6)
    _shade((throughput, latency), windows)
    figure.tight_layout()
    figure.savefig(directory / "latency.png", dpi=110)
    pyplot.close(figure)

    figure, axis = pyplot.subplots(figsize=(11, 4))
    by_partition: dict[int, list[tuple[float, int]]] = {}
    for _, completion in sends:
        if completion["type"] == OK and completion["value"].get("offset") is not None:
            by_partition.setdefault(completion["value"]["partition"], []).append(
                (completion["time"], completion["value"]["offset"]))
    for partition, points in sorted(by_partition.items()):
        axis.scatter(*zip(*points), s=1, label=f"partition {partition}", rasterized=True)
    axis.set_ylabel("acknowledged offset")
    axis.set_xlabel("time since the run started (s)")
    if by_partition:
        axis.legend(loc="upper left", fontsize=7, markerscale=6)
    _shade((axis,), windows)
    figure.tight_layout()
    figure.savefig(directory / "offsets.png", dpi=110)
    pyplot.close(figure)
