"""A simulation run: parameters, a fault schedule, safety then liveness, and a replay line.

A run is fully determined by ``SimParams`` (seed, cluster shape, snapshot cadence and the
fault schedule), and ``SimParams.command()`` prints the one line that replays it:

    python -m kraft.sim --seed 7 --voters 3 --observers 1 --snapshot-every 20 \
        --schedule '400:crash:leader,900:split,1500:heal,200:restart:all'

Schedule steps are ``<delay_ms>:<fault>[:<argument>]``, each delay counted from the step
before. Faults: ``crash:<node>|leader``, ``restart:<node>|all``, ``shutdown:<node>|leader``
(graceful: the leader resigns), ``isolate:<node>|leader``, ``split`` (two random halves) or
``split:0.1|2.3.4``, ``oneway:<from>.<to>``, ``heal`` (links only), and
``net:<drop>/<duplicate>/<delay_max_ms>`` for lossy, duplicating, reordering links, and
``chaos:<mean_interval_ms>/<downtime_max_ms>``: from then on a random node crashes every
so often and restarts after a random downtime (``chaos:0/0`` stops it); and
``crashpoint:<MessageType>/<probability>/<downtime_max_ms>``: a node that has just sent
such a message crashes with that probability and restarts after a random downtime
(probability 0 removes the crash point).

After the schedule the network heals and every crashed node restarts; a leader must then
be elected and every log converge within ``liveness_ms`` of virtual time.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from kraft.raft.ready import RaftConfig

from .cluster import Cluster
from .invariants import InvariantViolation
from .network import NetworkConditions

FAULT_KINDS = ("crash", "restart", "shutdown", "isolate", "split", "oneway", "heal", "net", "chaos",
               "crashpoint")
CRASH_POINT_MESSAGES = ("VoteResponse", "VoteRequest", "BeginQuorumEpochRequest", "FetchRequest",
                        "FetchResponse", "EndQuorumEpochRequest")
SETTLE_MS = 1000
LIVENESS_MS = 30_000
APPEND_INTERVAL_MS = 37


@dataclass(frozen=True, slots=True)
class Fault:
    delay_ms: int
    kind: str
    argument: str = ""

    def __str__(self) -> str:
        return f"{self.delay_ms}:{self.kind}" + (f":{self.argument}" if self.argument else "")

    @classmethod
    def parse(cls, text: str) -> "Fault":
        delay, kind, *rest = text.strip().split(":", 2)
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r} in {text!r}; known: {', '.join(FAULT_KINDS)}")
        return cls(int(delay), kind, rest[0] if rest else "")


def parse_schedule(text: str) -> tuple[Fault, ...]:
    return tuple(Fault.parse(step) for step in text.split(",") if step.strip())


@dataclass(frozen=True, slots=True)
class SimParams:
    seed: int
    voters: int = 3
    observers: int = 0
    snapshot_every: int = 0
    schedule: tuple[Fault, ...] = ()
    election_timeout_ms: int = 1000
    liveness_ms: int = LIVENESS_MS

    def command(self) -> str:
        schedule = ",".join(map(str, self.schedule))
        return (f"python -m kraft.sim --seed {self.seed} --voters {self.voters} "
                f"--observers {self.observers} --snapshot-every {self.snapshot_every} "
                f"--election-timeout-ms {self.election_timeout_ms} "
                f"--schedule {shlex.quote(schedule)}")


@dataclass(slots=True)
class SimResult:
    params: SimParams
    virtual_ms: int = 0
    events: int = 0
    committed: int = 0
    appended: int = 0
    leader_epoch: int = 0

    def summary(self) -> str:
        return (f"seed {self.params.seed}: {self.events} events, {self.virtual_ms} ms virtual, "
                f"{self.appended} appended, {self.committed} committed, final epoch {self.leader_epoch}")


class SimulationFailure(AssertionError):
    def __init__(self, params: SimParams, cause: BaseException, at_ms: int) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}\n  at virtual time {at_ms} ms, seed "
                         f"{params.seed}\n  replay: {params.command()}")
        self.params = params
        self.cause = cause


def sim_config(election_timeout_ms: int = 1000) -> RaftConfig:
    """Kafka's default timeouts (the fetch timeout twice the election timeout, the others
    scaled with it when it is shorter, so elections are more often contested); small fetch
    and snapshot chunks so paging is exercised."""
    scale = min(1.0, election_timeout_ms / 1000)
    return RaftConfig(election_timeout_ms=election_timeout_ms, fetch_timeout_ms=2 * election_timeout_ms,
                      election_backoff_max_ms=max(20, int(1000 * scale)), request_timeout_ms=2 * election_timeout_ms,
                      fetch_max_wait_ms=max(10, int(500 * scale)), fetch_max_entries=3, snapshot_chunk_bytes=512)


def run(params: SimParams) -> SimResult:
    cluster = Cluster(params.seed, params.voters, params.observers, sim_config(params.election_timeout_ms),
                      params.snapshot_every)
    try:
        return _run(cluster, params)
    except (InvariantViolation, AssertionError) as failure:
        raise SimulationFailure(params, failure, cluster.now_ms) from failure


def _run(cluster: Cluster, params: SimParams) -> SimResult:
    result = SimResult(params)
    _schedule_appends(cluster)
    at_ms = SETTLE_MS
    for fault in params.schedule:
        at_ms += fault.delay_ms
        cluster.schedule(at_ms, _apply_fault, cluster, fault)
    heal_ms = at_ms + SETTLE_MS
    cluster.run_until(heal_ms)
    cluster.chaos_generation = -1
    cluster.crash_points.clear()
    cluster.network.heal()
    for node_id in cluster.node_ids:
        cluster.start(node_id)
    cluster.appending = False
    converged = cluster.run_until(heal_ms + params.liveness_ms, done=lambda: _converged(cluster))
    if not converged:
        raise SimulationFailure(params, InvariantViolation(
            "Liveness", f"no converged leader {params.liveness_ms} ms after healing: {_describe(cluster)}"),
            cluster.now_ms)
    _check_final_logs(cluster)
    leader = cluster.leader()
    result.virtual_ms, result.events = cluster.now_ms, cluster.events
    result.committed, result.appended = len(cluster.checker.committed), cluster.appended
    result.leader_epoch = leader.core.epoch
    return result


def _schedule_appends(cluster: Cluster) -> None:
    cluster.appending = True

    def append() -> None:
        if not cluster.appending:
            return
        cluster.client_request()
        cluster.schedule(cluster.now_ms + cluster.rng.randint(1, 2 * APPEND_INTERVAL_MS), append)

    cluster.schedule(0, append)


def _target(cluster: Cluster, argument: str) -> list[int]:
    if argument == "leader":
        leader = cluster.leader()
        return [leader.node_id] if leader else []
    if argument == "all":
        return list(cluster.node_ids)
    node_id = int(argument)
    return [node_id] if node_id in cluster.nodes else []


def _apply_fault(cluster: Cluster, fault: Fault) -> None:
    kind, argument, network = fault.kind, fault.argument, cluster.network
    if kind == "crash":
        for node_id in _target(cluster, argument):
            cluster.crash(node_id)
    elif kind == "restart":
        for node_id in _target(cluster, argument or "all"):
            cluster.start(node_id)
    elif kind == "shutdown":
        for node_id in _target(cluster, argument):
            cluster.shutdown(node_id)
    elif kind == "isolate":
        for node_id in _target(cluster, argument):
            network.isolate(node_id, cluster.node_ids)
    elif kind == "split":
        network.split(_split_groups(cluster, argument))
    elif kind == "oneway":
        source, destination = (int(part) for part in argument.split("."))
        network.block_one_way(source, destination)
    elif kind == "heal":
        network.blocked.clear()
    elif kind == "chaos":
        interval_ms, downtime_max_ms = (int(part) for part in argument.split("/"))
        cluster.chaos_generation += 1
        if interval_ms > 0:
            _chaos(cluster, cluster.chaos_generation, interval_ms, downtime_max_ms)
    elif kind == "crashpoint":
        message_type, probability, downtime_max_ms = argument.split("/")
        assert message_type in CRASH_POINT_MESSAGES, f"unknown crash point {message_type}"
        cluster.crash_points[message_type] = (float(probability), int(downtime_max_ms))
    elif kind == "net":
        drop, duplicate, delay_max_ms = argument.split("/")
        network.conditions = NetworkConditions(float(drop), float(duplicate), 1, max(1, int(delay_max_ms)))


def _chaos(cluster: Cluster, generation: int, interval_ms: int, downtime_max_ms: int) -> None:
    """Crash a random running node now, restart it later, and come back for the next one."""
    if cluster.chaos_generation != generation:
        return
    running = [n for n in cluster.node_ids if cluster.nodes[n].running]
    if running:
        victim = cluster.rng.choice(running)
        cluster.crash(victim)
        cluster.schedule(cluster.now_ms + cluster.rng.randint(0, downtime_max_ms), cluster.start, victim)
    cluster.schedule(cluster.now_ms + cluster.rng.randint(1, 2 * interval_ms), _chaos, cluster, generation,
                     interval_ms, downtime_max_ms)


def _split_groups(cluster: Cluster, argument: str) -> list[list[int]]:
    if argument:
        return [[int(n) for n in group.split(".") if n] for group in argument.split("|")]
    shuffled = list(cluster.node_ids)
    cluster.rng.shuffle(shuffled)
    cut = cluster.rng.randint(1, max(1, len(shuffled) - 1))
    return [shuffled[:cut], shuffled[cut:]]


def _converged(cluster: Cluster) -> bool:
    leader = cluster.leader()
    if leader is None:
        return False
    core = leader.core
    if core.high_watermark != core.log.end_offset:
        return False
    for node in cluster.nodes.values():
        other = node.core
        if not node.running or node.in_flight is not None or other.epoch != core.epoch \
                or other.leader_id != leader.node_id or other.log.end_offset != core.log.end_offset \
                or other.high_watermark != core.high_watermark \
                or node.loader.applied_offset + 1 != core.high_watermark:
            return False
    return True


def _check_final_logs(cluster: Cluster) -> None:
    """Converged logs are identical entry by entry (ConsistentCommittedData, final pass), and
    so are the images (ConsistentImages)."""
    committed = cluster.checker.committed
    for node in cluster.nodes.values():
        log = node.core.log
        if log.entries != committed[log.start_offset:log.end_offset]:
            raise InvariantViolation("ConsistentCommittedData", f"node {node.node_id} log differs after convergence")
        if committed and node.loader.image.offset != len(committed) - 1:
            raise InvariantViolation("ConsistentImages", f"node {node.node_id} converged with an image at offset "
                                     f"{node.loader.image.offset}, not {len(committed) - 1}")
        cluster.checker.check_image(node.node_id, node.loader.image, "converged with")


def _describe(cluster: Cluster) -> str:
    return "; ".join(repr(node.core) if node.running else f"node {node.node_id} down"
                     for node in cluster.nodes.values())
