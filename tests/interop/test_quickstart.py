"""Kafka's quickstart, word for word, typed into real terminals, as a new user does it.

The commands are the ones Apache Kafka's quickstart page gives (with kraft's tool names), on
localhost:9092 exactly, against ``python -m kraft`` and against
``kafka-server-start config/server.properties`` after ``kafka-storage format``. Each runs in
its own pseudo-terminal: the producer prompts with ``>``, takes one event per line and is
ended with Ctrl-C right after the last line (which must still arrive); the consumer, with no
``--partition``, prints the events, keeps printing new ones until Ctrl-C, then prints
``Processed a total of N messages``; Ctrl-C stops the server cleanly. The test skips when
something else holds port 9092 or 9093, since the point is the quickstart's own address.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kraft_node import REPO_ROOT
from tests.support.terminal import Terminal

pytestmark = pytest.mark.interop

TOPIC = "quickstart-events"
BOOTSTRAP = "--bootstrap-server localhost:9092"
CREATE = f"kafka-topics --create --topic {TOPIC} {BOOTSTRAP}"
DESCRIBE = f"kafka-topics --describe --topic {TOPIC} {BOOTSTRAP}"
PRODUCE = f"kafka-console-producer --topic {TOPIC} {BOOTSTRAP}"
CONSUME = f"kafka-console-consumer --topic {TOPIC} --from-beginning {BOOTSTRAP}"
EVENTS = ("This is my first event", "This is my second event")
SERVER_START_S = 60.0
COMMAND_TIMEOUT_S = 60


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError:
            return False
    return True


@pytest.fixture
def quickstart_dir(tmp_path: Path) -> Path:
    """A directory like Kafka's unpacked release: config/server.properties, with log.dirs
    moved from /tmp/kraft-combined-logs into the test's own directory."""
    if not (_port_is_free(9092) and _port_is_free(9093)):
        pytest.skip("port 9092 or 9093 is in use; the quickstart needs exactly localhost:9092")
    (tmp_path / "config").mkdir()
    text = (REPO_ROOT / "config" / "server.properties").read_text(encoding="utf-8")
    assert "log.dirs=/tmp/kraft-combined-logs" in text
    text = text.replace("log.dirs=/tmp/kraft-combined-logs", f"log.dirs={tmp_path / 'kraft-combined-logs'}")
    (tmp_path / "config" / "server.properties").write_text(text, encoding="utf-8")
    return tmp_path


def _environment(directory: Path) -> dict[str, str]:
    """The user's shell after installing kraft: its console scripts first on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["KRAFT_DATA_DIR"] = str(directory / ".kraft-data")
    env.pop("KRAFT_LOG_LEVEL", None)
    env["TERM"] = "xterm"
    return env


class Session:
    """The terminals of one quickstart; every one is closed at the end, also on failure."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.env = _environment(directory)
        self.terminals: list[Terminal] = []

    def open(self, command_line: str) -> Terminal:
        terminal = Terminal(command_line, cwd=self.directory, env=self.env)
        self.terminals.append(terminal)
        return terminal

    def run(self, command_line: str) -> subprocess.CompletedProcess[str]:
        """A command whose output is read once it exits (no typing needed)."""
        return subprocess.run(["bash", "--norc", "-c", command_line], cwd=self.directory, env=self.env,
                              capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, stdin=subprocess.DEVNULL)

    def close(self) -> None:
        for terminal in self.terminals:
            terminal.close()


@pytest.fixture
def session(quickstart_dir: Path) -> Iterator[Session]:
    opened = Session(quickstart_dir)
    try:
        yield opened
    finally:
        opened.close()


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (f"expected exit 0 from {result.args[-1]!r}, got {result.returncode}\n"
                                    f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result.stdout


def walk_through_the_quickstart(session: Session, server: Terminal) -> None:
    server.expect("Kafka Server started", SERVER_START_S)

    assert ok(session.run(CREATE)) == f"Created topic {TOPIC}.\n"
    lines = ok(session.run(DESCRIBE)).splitlines()
    assert lines[0].startswith(f"Topic: {TOPIC}\tTopicId: ") and "\tPartitionCount: 1\tReplicationFactor: 1" in lines[0]
    assert lines[1].startswith(f"\tTopic: {TOPIC}\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1"), lines

    producer = session.open(PRODUCE)
    position = producer.expect(">")
    for event in EVENTS:
        producer.type(event)
        position = producer.expect(f"{event}\n>", after=position)
    producer.ctrl_c()  # at once: the lines still lingering in the producer must be sent first
    assert producer.wait_exit() == 130, producer.screen

    consumer = session.open(CONSUME)
    position = consumer.expect(f"{EVENTS[0]}\n{EVENTS[1]}\n")

    more = session.open(PRODUCE)
    more.expect(">")
    more.type("This is a third event, read as it comes")
    consumer.expect("This is a third event, read as it comes\n", after=position)
    more.ctrl_c()
    assert more.wait_exit() == 130, more.screen

    consumer.ctrl_c()
    consumer.expect("Processed a total of 3 messages")
    assert consumer.wait_exit() == 130, consumer.screen
    assert "Traceback" not in producer.screen + more.screen + consumer.screen

    server.ctrl_c()
    assert server.wait_exit() in (0, 130), server.screen
    assert "shut down cleanly" in server.screen and "Traceback" not in server.screen, server.screen


def test_quickstart_against_python_m_kraft(session: Session) -> None:
    server = session.open("python -m kraft")
    walk_through_the_quickstart(session, server)


def test_quickstart_against_kafka_server_start(session: Session) -> None:
    cluster_id = ok(session.run("kafka-storage random-uuid")).strip()
    assert len(cluster_id) == 22, cluster_id
    formatted = ok(session.run(f"kafka-storage format --standalone -t {cluster_id} -c config/server.properties"))
    assert "Formatting" in formatted
    server = session.open("kafka-server-start config/server.properties")
    walk_through_the_quickstart(session, server)
    assert shutil.which("kafka-server-start", path=session.env["PATH"])
