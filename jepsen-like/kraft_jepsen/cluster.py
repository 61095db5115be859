"""A cluster of real processes on loopback, kraft or Apache Kafka, every link behind the proxy.

Each node has a directory of its own (``server.properties``, ``data/``, ``node.log``) and two
real ports: its data listener (clients and replication) and, for controllers, its controller
listener. Neither is ever given to anybody: the node advertises the proxy's port for its data
listener, and every node's ``controller.quorum.voters`` names the proxy's controller ports, so
every byte between clients, brokers and controllers crosses the proxy, which can cut or slow it.

Roles are Kafka's: ``combined`` runs N broker+controller nodes (ids 1..N); ``split`` runs N
brokers (ids 1..N) beside ``controllers`` controller-only nodes (ids 101..). Both brokers are
driven the same way, through their command-line tools: kraft's ``kafka-storage`` and
``kafka-server-start`` (installed beside this package), or Kafka's ``StorageTool`` and
``kafka.Kafka`` from Maven Central's jars (`kafka_lib`).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30
FORMAT_TIMEOUT_S = 120
TOOL_TIMEOUT_S = 15
POLL_S = 0.1
CONTROLLER_ID_BASE = 100
LEADER_ID = re.compile(r"^LeaderId:\s+(\d+)", re.M)
# kafka-server-start.sh's heap and kafka-run-class.sh's G1 flags, as a Kafka user runs it.
KAFKA_JVM_OPTIONS = ("-Xmx1G", "-Xms1G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                     "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
                     "-XX:MaxInlineLevel=15", "-Djava.awt.headless=true")
KAFKA_POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"


class ClusterError(RuntimeError):
    """A node could not be formatted, started or stopped; the message says which and why."""


class PortReservation:
    """Ports taken from the kernel and held until the nodes bind them, so that nothing else
    (the proxy's own listeners, above all) is handed the same port in between."""

    def __init__(self) -> None:
        self._sockets: list[socket.socket] = []

    def take(self) -> int:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._sockets.append(sock)
        return sock.getsockname()[1]

    def release(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def new_cluster_id() -> str:
    """Kafka's form: a random UUID as unpadded URL-safe base64, never starting with '-'."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not text.startswith("-"):
            return text


def kafka_lib(version: str, cache: Path | None = None) -> Path:
    """A directory of Apache Kafka `version`'s jars from Maven Central, built once and cached."""
    cache = cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kraft-jepsen"
    project = cache / f"kafka-{version}"
    lib = project / "target" / "lib"
    if any(lib.glob("kafka_2.13-*.jar")):
        return lib
    mvn = shutil.which("mvn")
    if mvn is None or shutil.which("java") is None:
        raise ClusterError("--broker kafka needs java and mvn on PATH")
    project.mkdir(parents=True, exist_ok=True)
    shutil.copy(KAFKA_POM, project / "pom.xml")
    result = None
    for offline in (["-o"], []):
        result = subprocess.run([mvn, "-B", "-q", *offline, f"-Dkafka.version={version}", "package"], cwd=project,
                                capture_output=True, text=True, timeout=900)
        if result.returncode == 0 and any(lib.glob("kafka_2.13-*.jar")):
            return lib
    raise ClusterError(f"mvn could not fetch Apache Kafka {version}: {(result.stdout + result.stderr)[-300:]}")


class Node:
    """One broker, controller or combined process."""

    def __init__(self, cluster: "Cluster", node_id: int, roles: str) -> None:
        self.cluster = cluster
        self.node_id = node_id
        self.roles = roles
        self.directory = cluster.directory / f"node-{node_id}"
        self.properties_path = self.directory / "server.properties"
        self.log_path = self.directory / "node.log"
        self.data_port = cluster.ports.take() if "broker" in roles else None
        self.controller_port = cluster.ports.take() if "controller" in roles else None
        self.process: subprocess.Popen | None = None
        self.paused = False

    def __repr__(self) -> str:
        return f"node {self.node_id} ({self.roles})"

    @property
    def is_broker(self) -> bool:
        return "broker" in self.roles

    @property
    def is_controller(self) -> bool:
        return "controller" in self.roles

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.is_running() else None

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def properties(self) -> dict[str, str]:
        cluster = self.cluster
        listeners, protocols = [], []
        if self.is_broker:
            listeners.append(f"PLAINTEXT://127.0.0.1:{self.data_port}")
            protocols.append("PLAINTEXT:PLAINTEXT")
        if self.is_controller:
            listeners.append(f"CONTROLLER://127.0.0.1:{self.controller_port}")
            protocols.append("CONTROLLER:PLAINTEXT")
        properties = {
            "process.roles": self.roles, "node.id": str(self.node_id),
            "controller.quorum.voters": cluster.voters, "controller.listener.names": "CONTROLLER",
            "listeners": ",".join(listeners), "listener.security.protocol.map": ",".join(protocols),
            "log.dirs": str(self.directory / "data"),
        }
        if self.is_broker:
            replication = str(min(3, len(cluster.brokers)))
            properties.update({
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{cluster.proxy_ports[f'data-{self.node_id}']}",
                "inter.broker.listener.name": "PLAINTEXT", "num.partitions": "1",
                "offsets.topic.replication.factor": replication,
                "transaction.state.log.replication.factor": replication,
                "transaction.state.log.min.isr": str(min(2, int(replication))),
                "share.coordinator.state.topic.replication.factor": replication,
                "share.coordinator.state.topic.min.isr": str(min(2, int(replication))),
                "group.initial.rebalance.delay.ms": "0", "auto.create.topics.enable": "false",
            })
        properties.update(cluster.overrides)
        return properties

    def format(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.properties_path.write_text("".join(f"{k}={v}\n" for k, v in self.properties().items()), encoding="utf-8")
        command = self.cluster.command("format", "-t", self.cluster.cluster_id, "-c", str(self.properties_path))
        result = subprocess.run(command, capture_output=True, text=True, timeout=FORMAT_TIMEOUT_S,
                                stdin=subprocess.DEVNULL)
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            raise ClusterError(f"formatting {self!r} failed: {(result.stdout + result.stderr).strip()[-300:]}")

    def launch(self) -> None:
        assert not self.is_running(), self
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.cluster.command("start", str(self.properties_path)), stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        self.paused = False
        self.cluster.publish_pids()

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Until the node's own port accepts (a broker's only once the quorum has formed)."""
        port = self.data_port if self.is_broker else self.controller_port
        deadline = time.monotonic() + timeout_s
        while not (accepts(port) and self.is_running()):
            if not self.is_running():
                raise ClusterError(f"{self!r} exited during start: {self.log_tail(3)}")
            if time.monotonic() >= deadline:
                raise ClusterError(f"{self!r} did not accept on port {port} within {timeout_s} s")
            time.sleep(POLL_S)

    def kill9(self) -> None:
        if self.is_running():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(STOP_TIMEOUT_S)
        self.paused = False

    def stop(self) -> None:
        """SIGTERM (a paused node is resumed first so it can act on it); SIGKILL after the timeout."""
        if not self.is_running():
            return
        self.resume()
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill9()

    def pause(self) -> None:
        if self.is_running():
            os.killpg(self.process.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.is_running() and self.paused:
            os.killpg(self.process.pid, signal.SIGCONT)
        self.paused = False

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return " | ".join(text.splitlines()[-lines:])


class Cluster:
    """N nodes of one broker kind, formatted and started together, stopped whatever happened."""

    def __init__(self, directory: Path, proxy, *, broker: str = "kraft", nodes: int = 3, roles: str = "combined",
                 controllers: int = 3, overrides: Mapping[str, str] | None = None,
                 kafka_version: str = "4.4.0") -> None:
        assert broker in ("kraft", "kafka") and roles in ("combined", "split"), (broker, roles)
        self.directory = directory
        self.proxy = proxy
        self.broker = broker
        self.overrides = dict(overrides or {})
        self.cluster_id = new_cluster_id()
        self.lib = kafka_lib(kafka_version) if broker == "kafka" else None
        self.ports = PortReservation()
        if roles == "combined":
            self.nodes = [Node(self, node_id, "broker,controller") for node_id in range(1, nodes + 1)]
        else:
            self.nodes = ([Node(self, node_id, "broker") for node_id in range(1, nodes + 1)]
                          + [Node(self, CONTROLLER_ID_BASE + i, "controller") for i in range(1, controllers + 1)])
        listen = [[f"data-{n.node_id}", n.node_id, n.data_port] for n in self.nodes if n.is_broker]
        listen += [[f"controller-{n.node_id}", n.node_id, n.controller_port] for n in self.nodes if n.is_controller]
        self.proxy_ports: dict[str, int] = proxy.listen(listen)
        self.voters = ",".join(f"{n.node_id}@127.0.0.1:{self.proxy_ports[f'controller-{n.node_id}']}"
                               for n in self.nodes if n.is_controller)

    @property
    def brokers(self) -> list[Node]:
        return [node for node in self.nodes if node.is_broker]

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.proxy_ports[f'data-{n.node_id}']}" for n in self.brokers)

    def node(self, node_id: int) -> Node:
        return next(node for node in self.nodes if node.node_id == node_id)

    def command(self, action: str, *args: str) -> list[str]:
        """The broker's own command for `action` (format, start, quorum) with `args`."""
        if self.broker == "kraft":
            tool = {"format": ["kafka-storage", "format"], "start": ["kafka-server-start"],
                    "quorum": ["kafka-metadata-quorum"]}[action]
            return [_beside_interpreter(tool[0]), *tool[1:], *args]
        main = {"format": ["kafka.tools.StorageTool", "format"], "start": ["kafka.Kafka"],
                "quorum": ["org.apache.kafka.tools.MetadataQuorumCommand"]}[action]
        options = list(KAFKA_JVM_OPTIONS) if action == "start" else ["-Xmx256m"]
        return [shutil.which("java") or "java", *options, "-cp", f"{self.lib}/*", *main, *args]

    def start(self) -> None:
        try:
            for node in self.nodes:
                node.format()
            self.ports.release()
            for node in self.nodes:
                node.launch()
            for node in self.nodes:
                node.wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.ports.release()
        for node in self.nodes:
            node.stop()

    def publish_pids(self) -> None:
        """Tells the proxy which process is which node, so it can tell links apart."""
        self.proxy.pids({str(node.node_id): node.pid for node in self.nodes})

    def active_controller(self) -> int | None:
        """The quorum leader's id from the cluster's own describe --status tool, or None."""
        try:
            result = subprocess.run(self.command("quorum", "--bootstrap-server", self.bootstrap, "describe", "--status"),
                                    capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return None
        match = LEADER_ID.search(result.stdout)
        return int(match[1]) if match else None

    def describe(self) -> dict:
        return {"broker": self.broker, "cluster_id": self.cluster_id, "voters": self.voters,
                "nodes": {n.node_id: {"roles": n.roles, "data_port": n.data_port, "controller_port": n.controller_port}
                          for n in self.nodes}, "proxy_ports": self.proxy_ports}


def _beside_interpreter(tool: str) -> str:
    """A console script of this environment (where kraft is installed with the harness)."""
    candidate = Path(sys.executable).parent / tool
    found = str(candidate) if candidate.exists() else shutil.which(tool)
    if found is None:
        raise ClusterError(f"--broker kraft needs kraft's {tool} (pip install kraft beside kraft-jepsen)")
    return found


class ProxyProcess:
    """The proxy as a child process, driven by JSON lines (see kraft_jepsen.proxy)."""

    def __init__(self, log_path: Path) -> None:
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "kraft_jepsen.proxy"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self._log, start_new_session=True)

    def _command(self, command: dict) -> dict:
        if self.process.poll() is not None:
            raise ClusterError(f"the proxy exited with {self.process.returncode}")
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise ClusterError("the proxy closed its control pipe")
        answer = json.loads(line)
        if "error" in answer:
            raise ClusterError(f"proxy: {answer['error']}")
        return answer

    def listen(self, listen: list) -> dict[str, int]:
        return self._command({"listen": listen})["ports"]

    def pids(self, pids: Mapping[str, int | None]) -> None:
        self._command({"pids": dict(pids)})

    def rules(self, cut=(), slow=()) -> None:
        self._command({"cut": [list(pair) for pair in cut], "slow": [list(rule) for rule in slow]})

    def stats(self) -> dict:
        return self._command({"stats": True})

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
