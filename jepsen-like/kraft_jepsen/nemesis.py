"""Faults, each with a start and an end, and the schedules that run them.

A fault is chosen by name, picks its targets when it starts (a random node, the leader of a
random partition, the active controller, a minority...), and undoes itself at its end:

- process faults: ``kill`` (kill -9, restarted at the end), ``pause`` (SIGSTOP, SIGCONT at the
  end), ``restart`` (SIGTERM, and started again as soon as it has exited);
- network faults through the proxy: ``partition-halves`` (a random majority and minority),
  ``isolate-node``, ``isolate-leader`` (the leader of a random partition of the workload's
  topic), ``isolate-controller`` (the active controller), ``bridge`` (two halves that only one
  node joins), ``one-way`` (bytes from one node to another stop, the rest flows), ``ring``
  (every node reaches only its neighbours); clients reach every node throughout, as in Jepsen;
- slow links: ``slow-network`` (latency on every node-to-node link), ``slow-clients`` (latency
  and a bandwidth cap on client links).

Network faults compose: the proxy's rules are the union of every active fault's rules, so a
schedule can hold a partition and a slow link at once. A random schedule (from the seed) waits
a quiet interval, starts one or two faults of different kinds, holds them, ends them, and so on;
``heal`` ends everything. Named scenarios are fixed schedules (SCENARIOS).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .cluster import Cluster, ClusterError
from .history import History

PROCESS_FAULTS = ("kill", "pause", "restart")
PARTITION_FAULTS = ("partition-halves", "isolate-node", "isolate-leader", "isolate-controller", "bridge",
                    "one-way", "ring")
SLOW_FAULTS = ("slow-network", "slow-clients")
ALL_FAULTS = PROCESS_FAULTS + PARTITION_FAULTS + SLOW_FAULTS
# Groups a user can name instead of listing faults.
FAULT_GROUPS = {"all": ALL_FAULTS, "process": PROCESS_FAULTS, "partition": PARTITION_FAULTS,
                "slow": SLOW_FAULTS, "none": ()}
SLOW_LATENCY_MS = (50, 400)
SLOW_CLIENT_BYTES_PER_S = (64 * 1024, 1024 * 1024)
RESTART_TIMEOUT_S = 120


@dataclass
class ActiveFault:
    name: str
    targets: list[int]
    op: int
    cut: set[tuple[str, str]] = field(default_factory=set)
    slow: list[tuple[str, str, float, float | None]] = field(default_factory=list)


def expand_faults(names: Sequence[str]) -> tuple[str, ...]:
    faults: list[str] = []
    for name in names:
        group = FAULT_GROUPS.get(name, (name,))
        for fault in group:
            if fault not in ALL_FAULTS:
                raise ValueError(f"unknown fault {fault!r}; choose from {', '.join((*FAULT_GROUPS, *ALL_FAULTS))}")
            if fault not in faults:
                faults.append(fault)
    return tuple(faults)


# The fewest nodes each network fault means something on (a ring of three is every link).
MINIMUM_NODES = {"bridge": 3, "ring": 4, **{name: 2 for name in PARTITION_FAULTS if name not in ("bridge", "ring")},
                 "slow-network": 2}


def applicable(faults: Sequence[str], node_count: int) -> tuple[str, ...]:
    """The faults that can do something to a cluster of `node_count` nodes."""
    return tuple(fault for fault in faults if node_count >= MINIMUM_NODES.get(fault, 1))


def _cut_between(left: Sequence[int], right: Sequence[int]) -> set[tuple[str, str]]:
    return {(str(a), str(b)) for a in left for b in right} | {(str(b), str(a)) for a in left for b in right}


class Nemesis:
    """Starts and ends faults on a cluster and records each in the history."""

    def __init__(self, cluster: Cluster, history: History, rng: random.Random,
                 leader_of: Callable[[int], int | None], partitions: int, *, kill_every_node: bool = True) -> None:
        self.cluster = cluster
        self.history = history
        self.rng = rng
        self.leader_of = leader_of
        self.partitions = partitions
        self.kill_every_node = kill_every_node
        self.active: list[ActiveFault] = []
        self.started_count = 0
        self._lock = threading.Lock()

    @property
    def node_ids(self) -> list[int]:
        return [node.node_id for node in self.cluster.nodes]

    def _targets(self, name: str) -> list[int]:
        """Whom a fault hits: a leader, the controller, a minority or one node, chosen now."""
        ids = self.node_ids
        choice = self.rng.random()
        if choice < 0.3:
            leader = self.leader_of(self.rng.randrange(self.partitions))
            if leader is not None:
                return [leader]
        if choice < 0.5:
            controller = self.cluster.active_controller()
            if controller is not None:
                return [controller]
        if choice < 0.7 and len(ids) >= 5 and name != "restart":
            return self.rng.sample(ids, (len(ids) - 1) // 2)
        if choice < 0.75 and name == "kill" and self.kill_every_node:
            return list(ids)  # every node at once: nothing unflushed may be lost either
        return [self.rng.choice(ids)]

    def _network(self, name: str) -> tuple[list[int], set, list]:
        ids = list(self.node_ids)
        self.rng.shuffle(ids)
        if name == "partition-halves":
            minority = ids[:max(1, (len(ids) - 1) // 2)]
            return minority, _cut_between(minority, ids[len(minority):]), []
        if name in ("isolate-node", "isolate-leader", "isolate-controller"):
            target = ids[0]
            if name == "isolate-leader":
                target = self.leader_of(self.rng.randrange(self.partitions)) or target
            elif name == "isolate-controller":
                target = self.cluster.active_controller() or target
            return [target], _cut_between([target], [i for i in ids if i != target]), []
        if name == "bridge":
            bridge, rest = ids[0], ids[1:]
            half = max(1, len(rest) // 2)
            return [bridge], _cut_between(rest[:half], rest[half:]), []
        if name == "one-way":
            return ids[:2], {(str(ids[0]), str(ids[1]))}, []
        if name == "ring":
            order = sorted(ids)
            near = {(a, b) for i, a in enumerate(order) for b in (order[i - 1], order[(i + 1) % len(order)])}
            return order, {(str(a), str(b)) for a in order for b in order if a != b and (a, b) not in near}, []
        if name == "slow-network":
            latency = self.rng.uniform(*SLOW_LATENCY_MS)
            return ids, set(), [(str(a), str(b), latency, None) for a in ids for b in ids if a != b]
        assert name == "slow-clients", name
        latency = self.rng.uniform(*SLOW_LATENCY_MS)
        rate = self.rng.uniform(*SLOW_CLIENT_BYTES_PER_S)
        rules = [(direction[0], direction[1], latency, rate) for i in ids
                 for direction in (("client", str(i)), (str(i), "client"))]
        return ids, set(), rules

    def start(self, name: str) -> ActiveFault:
        if name in PROCESS_FAULTS:
            targets, cut, slow = self._targets(name), set(), []
        else:
            targets, cut, slow = self._network(name)
        invoke = self.history.record("nemesis", "invoke", name, {"targets": targets})
        fault = ActiveFault(name, targets, invoke["op"], cut, slow)
        with self._lock:
            self.active.append(fault)
            self.started_count += 1
        for node_id in targets if name in PROCESS_FAULTS else ():
            node = self.cluster.node(node_id)
            {"kill": node.kill9, "pause": node.pause, "restart": node.stop}[name]()
        if name == "restart":
            self._start_nodes(targets)
        self._apply_rules()
        return fault

    def end(self, fault: ActiveFault) -> None:
        with self._lock:
            self.active.remove(fault)
        if fault.name == "kill":
            self._start_nodes(fault.targets)
        elif fault.name == "pause":
            for node_id in fault.targets:
                self.cluster.node(node_id).resume()
        self._apply_rules()
        self.history.record("nemesis", "ok", fault.name, {"targets": fault.targets}, op=fault.op)

    def _start_nodes(self, node_ids: Sequence[int], *, wait_ready: bool = False) -> None:
        """Launches the nodes; the schedule goes on while they start (a JVM takes its time),
        and only healing waits until they accept connections."""
        nodes = [self.cluster.node(node_id) for node_id in node_ids]
        for node in nodes:
            if not node.is_running():
                node.launch()
        for node in nodes if wait_ready else ():
            try:
                node.wait_ready(RESTART_TIMEOUT_S)
            except ClusterError as error:
                self.history.record("nemesis", "info", "start-failed", {"node": node.node_id, "error": str(error)})

    def _apply_rules(self) -> None:
        with self._lock:
            cut = set().union(*(fault.cut for fault in self.active)) if self.active else set()
            slow = [rule for fault in self.active for rule in fault.slow]
        self.cluster.proxy.rules(cut=sorted(cut), slow=slow)

    def heal(self) -> None:
        """Ends every active fault, newest first, and makes sure every node runs."""
        for fault in reversed(list(self.active)):
            self.end(fault)
        self._start_nodes([node.node_id for node in self.cluster.nodes], wait_ready=True)


@dataclass(frozen=True, slots=True)
class Step:
    """One fault of a schedule: start `at_s` into the run, hold `hold_s`."""

    at_s: float
    faults: tuple[str, ...]
    hold_s: float


def random_schedule(rng: random.Random, faults: Sequence[str], time_s: float, *, quiet_s=(2.0, 8.0),
                    hold_s=(3.0, 15.0), mix_p: float = 0.3) -> list[Step]:
    """Alternating quiet intervals and fault windows, drawn from the seed before the run starts."""
    steps: list[Step] = []
    at = rng.uniform(*quiet_s)
    while faults and at < time_s:
        first = rng.choice(list(faults))
        chosen = [first]
        others = [f for f in faults if _kind(f) != _kind(first)]
        if others and rng.random() < mix_p:
            chosen.append(rng.choice(others))
        hold = min(rng.uniform(*hold_s), max(0.5, time_s - at))
        steps.append(Step(round(at, 3), tuple(chosen), round(hold, 3)))
        at += hold + rng.uniform(*quiet_s)
    return steps


def _kind(fault: str) -> str:
    return "process" if fault in PROCESS_FAULTS else "slow" if fault in SLOW_FAULTS else "partition"


# Fixed schedules a user names with --scenario; times are seconds into the run.
SCENARIOS: dict[str, Callable[[float], list[Step]]] = {
    # The replication issue's scenario: kill -9, restart and SIGSTOP of random nodes, back to back.
    "crash-restart-pause": lambda time_s: [Step(at, (("kill", "restart", "pause")[i % 3],), 6.0)
                                          for i, at in enumerate(range(5, int(time_s) - 5, 10))],
    # The canary: a leader cut off from the other nodes while clients still reach it.
    "isolate-leader": lambda time_s: [Step(5.0, ("isolate-leader",), max(1.0, min(25.0, time_s - 10)))],
    "majority-minority": lambda time_s: [Step(at, ("partition-halves",), 10.0) for at in range(5, int(time_s) - 10, 20)],
    "rolling-restart": lambda time_s: [Step(at, ("restart",), 1.0) for at in range(5, int(time_s) - 5, 8)],
}


def run_schedule(nemesis: Nemesis, steps: Sequence[Step], started_at: float, stop: threading.Event) -> None:
    """Runs the steps on time until they end or `stop` is set; whatever is active is left to heal."""
    for step in steps:
        if stop.wait(max(0.0, started_at + step.at_s - time.monotonic())):
            return
        active = [nemesis.start(name) for name in step.faults]
        stop.wait(step.hold_s)
        for fault in reversed(active):
            nemesis.end(fault)
        if stop.is_set():
            return
