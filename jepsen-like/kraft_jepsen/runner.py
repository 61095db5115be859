"""One run: a cluster, the workload under a fault schedule, healing, the final read, the verdict.

The run's folder holds everything a reader needs afterwards: ``run.json`` (the options, the
seed, the schedule drawn from it, the cluster's ports), ``history.jsonl``, ``verdict.json`` and
``summary.txt``, ``nodes/<id>.log`` for every node, ``clients.log`` (librdkafka's own lines),
``proxy.log`` and the plots. Node data lives in a scratch directory that is removed at the end,
unless the run is invalid or ``keep_data`` is set: then it moves to the run's ``data/``. Every process the run starts is stopped before it returns, also
when it fails.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import workload
from .checker import check, summary_text
from .cluster import Cluster, ProxyProcess
from .history import History, read_history
from .nemesis import SCENARIOS, Nemesis, applicable, expand_faults, random_schedule, run_schedule

SETTLE_S = 5.0
CLIENT_STOP_TIMEOUT_S = 60


@dataclass(frozen=True)
class RunOptions:
    broker: str = "kraft"
    nodes: int = 3
    roles: str = "combined"
    controllers: int = 3
    time_s: float = 60.0
    seed: int = 0
    nemesis: tuple[str, ...] = ("all",)
    scenario: str | None = None
    heal_s: float = 10.0
    kafka_version: str = "4.4.0"
    overrides: dict[str, str] = field(default_factory=dict)
    workload: workload.WorkloadOptions = workload.WorkloadOptions()
    # Killing every node at once makes librdkafka's idempotent producer bump its epoch and send
    # again what it had written (duplicates under a new epoch, Apache Kafka's too); off, kills
    # hit at most the targets a single fault picks otherwise.
    kill_every_node: bool = True
    keep_data: bool = False
    plots: bool = True


@dataclass(frozen=True)
class RunResult:
    directory: Path
    valid: bool
    verdict: dict
    faults_started: int


def schedule_for(options: RunOptions, rng: random.Random):
    if options.scenario is not None:
        if options.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {options.scenario!r}; choose from {', '.join(SCENARIOS)}")
        return SCENARIOS[options.scenario](options.time_s)
    node_count = options.nodes + (options.controllers if options.roles == "split" else 0)
    return random_schedule(rng, applicable(expand_faults(options.nemesis), node_count), options.time_s)


def run(options: RunOptions, results: Path) -> RunResult:
    rng = random.Random(options.seed)
    schedule = schedule_for(options, rng)
    directory = results / f"{time.strftime('%Y%m%d-%H%M%S')}-{options.broker}-seed{options.seed}"
    directory.mkdir(parents=True, exist_ok=False)
    scratch = Path(tempfile.mkdtemp(prefix="kraft-jepsen-"))
    proxy = ProxyProcess(directory / "proxy.log")
    cluster = None
    finished = False
    try:
        cluster = Cluster(scratch, proxy, broker=options.broker, nodes=options.nodes, roles=options.roles,
                          controllers=options.controllers, overrides=options.overrides,
                          kafka_version=options.kafka_version)
        (directory / "run.json").write_text(json.dumps({
            "options": _jsonable(options), "schedule": [asdict(step) for step in schedule],
            "cluster": cluster.describe(),
        }, indent=2), encoding="utf-8")
        cluster.start()
        faults_started = _drive(options, cluster, schedule, rng, directory)
        finished = True
    finally:
        if cluster is not None:
            cluster.stop()
            _collect_logs(cluster, directory)
        proxy.close()
        if not finished and not options.keep_data:
            shutil.rmtree(scratch, ignore_errors=True)
    result = _judge(options, directory, faults_started)
    if result.valid and not options.keep_data:
        shutil.rmtree(scratch, ignore_errors=True)
    else:  # the logs as the nodes left them, to see what the anomaly did (kafka-dump-log)
        shutil.move(scratch, directory / "data")
    return result


def _drive(options: RunOptions, cluster: Cluster, schedule, rng: random.Random, directory: Path) -> int:
    """Creates the topic, runs the clients and the schedule, heals, reads everything back."""
    logger = workload.client_logger(directory / "clients.log")
    settings = options.workload
    workload.create_topic(cluster.bootstrap, settings, logger)
    history = History(directory / "history.jsonl")
    stop_clients, stop_nemesis = threading.Event(), threading.Event()
    leaders = workload.Leaders(cluster.bootstrap, logger)
    nemesis = Nemesis(cluster, history, random.Random(rng.random()), leaders.leader_of, settings.partitions,
                      kill_every_node=options.kill_every_node)
    clients = _client_threads(cluster.bootstrap, settings, history, rng, stop_clients, logger)
    nemesis_thread = threading.Thread(target=run_schedule, name="nemesis",
                                      args=(nemesis, schedule, time.monotonic(), stop_nemesis))
    try:
        for thread in clients:
            thread.start()
        nemesis_thread.start()
        stop_nemesis.wait(options.time_s)
    finally:
        stop_nemesis.set()
        nemesis_thread.join()
        nemesis.heal()
        # Clients keep working through the healing phase: what was stuck gets its retry.
        time.sleep(options.heal_s)
        stop_clients.set()
        for thread in clients:
            thread.join(CLIENT_STOP_TIMEOUT_S)
    failed = [f"{thread.name}: {type(thread.error).__name__}: {thread.error}" for thread in clients if thread.error]
    if failed:
        history.close()
        raise RuntimeError(f"a client failed, so the history is incomplete: {'; '.join(failed)}")
    time.sleep(SETTLE_S)
    workload.final_read(cluster.bootstrap, settings, history, logger)
    history.close()
    return nemesis.started_count


class ClientThread(threading.Thread):
    """A client's thread; what kills it is kept, so the run fails instead of judging a
    history with a silent hole in it."""

    def __init__(self, target, name: str, args: tuple) -> None:
        super().__init__(name=name, daemon=True)
        self._client, self._arguments = target, args
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._client(*self._arguments)
        except Exception as error:  # noqa: BLE001 - reported by _drive after the join
            self.error = error


def _client_threads(bootstrap, settings, history, rng, stop, logger) -> list[ClientThread]:
    threads = []
    for kind, count, target in (("producer", settings.producers, workload.run_producer),
                                ("assign", settings.assign_consumers, workload.run_assign_consumer),
                                ("group", settings.group_consumers, workload.run_group_consumer)):
        for index in range(count):
            client_rng = random.Random(rng.random())
            threads.append(ClientThread(target, f"{kind}-{index}",
                                        (index, bootstrap, settings, history, client_rng, stop, logger)))
    return threads


def _collect_logs(cluster: Cluster, directory: Path) -> None:
    nodes = directory / "nodes"
    nodes.mkdir(exist_ok=True)
    for node in cluster.nodes:
        if node.log_path.exists():
            shutil.copy(node.log_path, nodes / f"{node.node_id}.log")


def _judge(options: RunOptions, directory: Path, faults_started: int) -> RunResult:
    events = read_history(directory / "history.jsonl")
    verdict = check(events, idempotent=options.workload.idempotent)
    report = verdict.to_json()
    report["faults_started"] = faults_started
    (directory / "verdict.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (directory / "summary.txt").write_text(summary_text(verdict) + "\n", encoding="utf-8")
    if options.plots:
        from .plots import plot_run
        plot_run(events, directory)
    return RunResult(directory, verdict.valid, report, faults_started)


def _jsonable(options: RunOptions) -> dict:
    data = asdict(options)
    data["nemesis"] = list(options.nemesis)
    return data
