"""Apache Kafka itself as the baseline: combined broker+controller nodes from Maven Central's jars.

`benchmarks/kafka/pom.xml` names the broker (kafka_2.13, 4.4.0); `build()` runs Maven there
(offline first, so a warm ~/.m2 needs no network) and leaves target/lib. A `KafkaNode` has the
interface the benchmarks use of a kraft node (`tests.support.quorum.QuorumNode`): node_id,
bootstrap, start(), stop(), kill9(), log_path, log_tail(), is_running(), process.

Each node runs as Kafka's own kafka-server-start.sh runs it: `kafka.Kafka server.properties`
with Kafka's default heap (-Xmx1G -Xms1G) and G1 flags, storage formatted first by
`kafka.tools.StorageTool format` with the cluster's static voters. Ports are chosen up front
(free ports on 127.0.0.1); a node is ready when its client port accepts, which a multi-voter
Kafka cluster does only once the quorum has formed, so the nodes start together.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.support import processes
from tests.support.kraft_node import new_cluster_id
from tests.support.quorum import accepts, free_port, stop_cluster

PROJECT_DIR = Path(__file__).resolve().parent / "kafka"
LIB_DIR = PROJECT_DIR / "target" / "lib"
BUILD_TIMEOUT_S = 900
FORMAT_TIMEOUT_S = 120
START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30
POLL_S = 0.05
# kafka-server-start.sh's KAFKA_HEAP_OPTS and kafka-run-class.sh's KAFKA_JVM_PERFORMANCE_OPTS.
KAFKA_JVM_OPTIONS = ("-Xmx1G", "-Xms1G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                     "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
                     "-XX:MaxInlineLevel=15", "-Djava.awt.headless=true")


class KafkaUnavailable(RuntimeError):
    """java or mvn is missing, or Maven could not fetch Kafka."""


def build() -> Path:
    """target/lib with Kafka's jars, built if needed (offline first, then online)."""
    if any(LIB_DIR.glob("kafka_2.13-*.jar")):
        return LIB_DIR
    mvn = shutil.which("mvn")
    if mvn is None or shutil.which("java") is None:
        raise KafkaUnavailable("Apache Kafka baseline needs java and mvn on PATH")
    for offline in (["-o"], []):
        result = subprocess.run([mvn, "-B", "-q", *offline, "package"], cwd=PROJECT_DIR, capture_output=True,
                                text=True, timeout=BUILD_TIMEOUT_S)
        if result.returncode == 0 and any(LIB_DIR.glob("kafka_2.13-*.jar")):
            return LIB_DIR
    raise KafkaUnavailable(f"mvn package in {PROJECT_DIR} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


def _java(main_class: str, *args: str, jvm_options: Sequence[str] = ()) -> list[str]:
    return [shutil.which("java") or "java", *jvm_options, "-cp", f"{LIB_DIR}/*", main_class, *args]


class KafkaNode:
    def __init__(self, directory: Path, node_id: int, cluster_id: str, client_port: int, voters: str,
                 controller_port: int, overrides: Mapping[str, str]) -> None:
        self.directory = directory
        self.node_id = node_id
        self.cluster_id = cluster_id
        self.client_port = client_port
        self.properties_path = directory / "server.properties"
        self.log_path = directory / "node.log"
        self.process: subprocess.Popen | None = None
        properties = {
            "process.roles": "broker,controller", "node.id": str(node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{client_port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{client_port}",
            "controller.listener.names": "CONTROLLER", "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(directory / "data"), "num.partitions": "1",
            "offsets.topic.replication.factor": "1", "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1", "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1", "group.initial.rebalance.delay.ms": "0",
            **overrides,
        }
        directory.mkdir(parents=True, exist_ok=True)
        self.properties_path.write_text("".join(f"{k}={v}\n" for k, v in properties.items()), encoding="utf-8")

    def __repr__(self) -> str:
        return f"KafkaNode({self.node_id}, port {self.client_port})"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    def format(self) -> None:
        result = subprocess.run(_java("kafka.tools.StorageTool", "format", "-t", self.cluster_id, "-c",
                                      str(self.properties_path)),
                                capture_output=True, text=True, timeout=FORMAT_TIMEOUT_S, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise KafkaUnavailable(f"formatting {self!r} failed:\n{result.stdout}{result.stderr}")

    def launch(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = processes.spawn(_java("kafka.Kafka", str(self.properties_path),
                                                 jvm_options=KAFKA_JVM_OPTIONS),
                                           stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while not accepts(self.client_port):
            if self.process is None or self.process.poll() is not None:
                raise KafkaUnavailable(f"{self!r} exited before its port accepted:\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                raise KafkaUnavailable(f"{self!r} did not accept within {timeout_s} s:\n{self.log_tail()}")
            time.sleep(POLL_S)

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        if self.process is not None:
            processes.kill(self.process)

    def stop(self) -> None:
        if self.process is not None:
            processes.terminate(self.process, STOP_TIMEOUT_S)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def start_cluster(directory: Path, size: int = 3, overrides: Mapping[str, str] | None = None) -> list[KafkaNode]:
    """`size` combined Kafka nodes with a static quorum, formatted and started together."""
    build()
    controller_ports = {node_id: free_port() for node_id in range(1, size + 1)}
    voters = ",".join(f"{node_id}@127.0.0.1:{port}" for node_id, port in controller_ports.items())
    cluster_id = new_cluster_id()
    nodes = [KafkaNode(directory / f"kafka-{node_id}", node_id, cluster_id, free_port(), voters,
                       controller_ports[node_id], overrides or {}) for node_id in controller_ports]
    try:
        with concurrent.futures.ThreadPoolExecutor(size) as pool:
            list(pool.map(KafkaNode.format, nodes))
        for node in nodes:
            node.launch()
        for node in nodes:
            node.wait_ready()
    except BaseException:
        stop_cluster(nodes)
        raise
    return nodes


__all__ = ["KafkaNode", "KafkaUnavailable", "build", "start_cluster"]
