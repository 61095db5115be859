"""A real kraft node in a subprocess, for interop and fault tests.

A node lives in a directory of its own: `server.properties`, `data/` (log.dirs) and `node.log`
(the server's stdout and stderr, appended to across restarts). Listeners bind port 0 and the
server reports each real port with a line `listener NAME bound to HOST:PORT`, so tests never
race each other for ports; a restart pins the listeners to the ports the node had before, so
clients that knew the old address find it again.

Rules of the life cycle:
  created --start()--> running --stop()/kill9()--> stopped --restart()/start()--> running
Storage is formatted once, by the first start. Every wait is bounded; a start that fails or
times out raises KraftNodeError with the tail of the node's log.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from tests.support import processes

REPO_ROOT = Path(__file__).resolve().parents[2]

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
FORMAT_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.05
LOG_TAIL_LINES = 60

LISTENER_BOUND = re.compile(r"listener (\w+) bound to (\S+):(\d+)")
STARTED_MARKER = "started (kraft node"


class KraftNodeError(RuntimeError):
    """The node could not be formatted, started or stopped; the message carries its log tail."""


def new_cluster_id() -> str:
    """A cluster id in Kafka's form: a random UUID as unpadded URL-safe base64 (22 characters).

    Like Kafka's Uuid.randomUuid, never one starting with '-': `-t -abc...` reads as a flag.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not text.startswith("-"):
            return text


def base_properties(node_id: int, data_dir: Path) -> dict[str, str]:
    """A single combined broker+controller node on loopback; every listener binds port 0."""
    return {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.bootstrap.servers": "127.0.0.1:0",
        "listeners": "PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }


def write_properties(path: Path, properties: Mapping[str, str]) -> None:
    lines = [f"{key}={value}" for key, value in properties.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def pin_ports(properties: Mapping[str, str], ports: Mapping[str, int]) -> dict[str, str]:
    """The properties with each listener on port 0 moved to the port it was bound to before.

    The controller quorum bootstrap address follows the controller listener, so a restarted
    single-node quorum still names itself.
    """
    pinned = dict(properties)
    listeners = []
    for listener in properties["listeners"].split(","):
        name, _, address = listener.strip().partition("://")
        host, _, port = address.rpartition(":")
        if port == "0" and name in ports:
            port = str(ports[name])
        listeners.append(f"{name}://{host}:{port}")
    pinned["listeners"] = ",".join(listeners)
    controller_name = properties.get("controller.listener.names", "CONTROLLER").split(",")[0]
    bootstrap = properties.get("controller.quorum.bootstrap.servers")
    if bootstrap and bootstrap.endswith(":0") and "," not in bootstrap and controller_name in ports:
        pinned["controller.quorum.bootstrap.servers"] = f"{bootstrap[:-2]}:{ports[controller_name]}"
    return pinned


class KraftNode:
    """One kraft process (broker and controller) with its own directory, log and ports."""

    def __init__(
        self,
        directory: Path,
        *,
        overrides: Mapping[str, str | None] | None = None,
        node_id: int = 1,
        cluster_id: str | None = None,
        client_listener: str = "PLAINTEXT",
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        self.directory = Path(directory)
        self.data_dir = self.directory / "data"
        self.properties_path = self.directory / "server.properties"
        self.log_path = self.directory / "node.log"
        self.node_id = node_id
        self.cluster_id = cluster_id or new_cluster_id()
        self.client_listener = client_listener
        self.start_timeout_s = start_timeout_s
        properties = base_properties(node_id, self.data_dir)
        for key, value in (overrides or {}).items():
            if value is None:
                properties.pop(key, None)
            else:
                properties[key] = str(value)
        self.properties = properties
        # Listener name -> bound port, from the latest start's log lines.
        self.ports: dict[str, int] = {}
        self.host: str | None = None
        self.process: subprocess.Popen | None = None
        self.formatted = False

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"KraftNode(node_id={self.node_id}, directory={str(self.directory)!r}, {state}, ports={self.ports})"

    @property
    def bootstrap(self) -> str:
        """host:port of the client listener, as a Kafka client's bootstrap.servers wants it."""
        if self.host is None or self.client_listener not in self.ports:
            raise KraftNodeError(f"{self!r} has not started, so it has no bootstrap address")
        return f"{self.host}:{self.ports[self.client_listener]}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, wait_ready: bool = True) -> None:
        """Formats storage on the first start, launches the server and (unless told not to)
        waits until it is ready."""
        if self.is_running():
            raise KraftNodeError(f"{self!r} is already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.ports:
            self.properties = pin_ports(self.properties, self.ports)
        write_properties(self.properties_path, self.properties)
        if not self.formatted:
            self._format()
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = processes.spawn(
                self.server_command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                env=_child_environment(),
            )
        if wait_ready:
            self._wait_until_ready(log_offset)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, then SIGKILL if the node has not exited within `timeout_s`; returns its status."""
        if self.process is None:
            return None
        return processes.terminate(self.process, timeout_s)

    def kill9(self) -> int | None:
        """Kills the node at once, as a crash would; nothing gets to flush or clean up."""
        if self.process is None:
            return None
        return processes.kill(self.process)

    def restart(self) -> None:
        """Stops the node if it runs, then starts it again on the same ports and data."""
        self.stop()
        self.start()

    def log_text(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def format_command(self) -> list[str]:
        return [
            sys.executable, "-m", "tools.storage_tool", "format",
            "-t", self.cluster_id, "-c", str(self.properties_path), "--standalone",
        ]

    def server_command(self) -> list[str]:
        return [sys.executable, "-m", "tools.server_start", str(self.properties_path)]

    def _format(self) -> None:
        command = self.format_command()
        try:
            result = subprocess.run(
                command, cwd=REPO_ROOT, env=_child_environment(), stdin=subprocess.DEVNULL,
                capture_output=True, text=True, timeout=FORMAT_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as timeout:
            raise KraftNodeError(f"formatting storage took over {FORMAT_TIMEOUT_S} s: {command}") from timeout
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            raise KraftNodeError(
                f"formatting storage failed: expected exit 0, got {result.returncode}\n"
                f"command: {command}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        self.formatted = True

    def _wait_until_ready(self, log_offset: int) -> None:
        """Waits for the client listener's port and the started line, both from this start."""
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            text = self._log_since(log_offset)
            ports, host = _bound_listeners(text)
            if self.client_listener in ports and STARTED_MARKER in text:
                self.ports = ports
                self.host = host[self.client_listener]
                return
            status = self.process.poll()
            if status is not None:
                raise KraftNodeError(
                    f"kraft node exited with status {status} before it was ready "
                    f"(expected a '{STARTED_MARKER}' line)\n--- {self.log_path} (tail) ---\n{self.log_tail()}"
                )
            if time.monotonic() >= deadline:
                processes.kill(self.process)
                raise KraftNodeError(
                    f"kraft node was not ready within {self.start_timeout_s} s: expected a line "
                    f"'listener {self.client_listener} bound to HOST:PORT' and a '{STARTED_MARKER}' "
                    f"line; found ports {ports}\n--- {self.log_path} (tail) ---\n{self.log_tail()}"
                )
            time.sleep(POLL_INTERVAL_S)

    def _log_since(self, offset: int) -> str:
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", errors="replace")


def _bound_listeners(text: str) -> tuple[dict[str, int], dict[str, str]]:
    ports: dict[str, int] = {}
    hosts: dict[str, str] = {}
    for match in LISTENER_BOUND.finditer(text):
        name, host, port = match.groups()
        ports[name] = int(port)
        hosts[name] = host
    return ports, hosts


def _child_environment() -> dict[str, str]:
    """Unbuffered output, so readiness lines reach the log at once; the repository importable."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONFAULTHANDLER"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env
