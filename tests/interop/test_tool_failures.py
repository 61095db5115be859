"""Every installed console script fails loudly and briefly: a non-zero exit status and one line
that says what went wrong, for a bad flag, an unreachable bootstrap server, an unknown topic,
a missing file and a bug; a traceback only with ``KRAFT_LOG_LEVEL=DEBUG``.

The scripts run as a user runs them, from the environment's bin/ (the console scripts pip
installed from pyproject.toml), not through ``python -m``. A bug is injected with a
``sitecustomize`` module on PYTHONPATH that makes every tool's work function raise, so the
path a real bug takes is the one tested.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.support.kraft_node import REPO_ROOT

pytestmark = pytest.mark.interop

SCRIPTS = sorted(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"])
BIN = Path(sys.executable).parent
TOOL_TIMEOUT_S = 60
# An unreachable server must be reported well before a user gives up waiting.
UNREACHABLE_REPORT_S = 20

INJECTED_BUG = '''
import tools.common as common

_run_command = common.run_command


def run_command(parser, execute, argv, **options):
    def broken(args):
        raise RuntimeError("injected bug for the test")
    return _run_command(parser, broken, argv, **options)


common.run_command = run_command
'''


def run(script: str, *args: str, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    path = BIN / script
    assert path.exists(), f"expected the console script {script} in {BIN} (pip install -e . puts it there)"
    environment = dict(os.environ)
    environment.pop("KRAFT_LOG_LEVEL", None)
    environment.update(env or {})
    return subprocess.run([str(path), *args], capture_output=True, text=True, timeout=TOOL_TIMEOUT_S,
                          stdin=subprocess.DEVNULL, env=environment, cwd=cwd or REPO_ROOT)


def one_line_failure(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    """Exit status not 0, exactly one non-empty line of output, naming each ``expected``."""
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if line.strip()]
    command = " ".join(Path(result.args[0]).name for _ in [0]) + " " + " ".join(result.args[1:])
    assert result.returncode != 0, f"{command}: expected a non-zero exit, got 0; output:\n{output}"
    assert "Traceback" not in output, f"{command}: expected no traceback; output:\n{output}"
    assert len(lines) == 1, f"{command}: expected one line of output, got {len(lines)}:\n{output}"
    for text in expected:
        assert text in lines[0], f"{command}: expected {text!r} in the message, got {lines[0]!r}"
    return lines[0]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_every_console_script_is_installed() -> None:
    missing = [script for script in SCRIPTS if not (BIN / script).exists()]
    assert not missing, f"expected every script of pyproject.toml in {BIN}; missing {missing}"


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_bad_flag_is_one_line(script: str) -> None:
    one_line_failure(run(script, "--no-such-flag"), "--no-such-flag")


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_bug_is_one_line_and_its_traceback_needs_the_debug_switch(script: str, tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(INJECTED_BUG, encoding="utf-8")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)])}
    args = {"kafka-storage": ("info", "-c", "x"), "kafka-server-start": ("x",),
            "kafka-metadata-quorum": ("--bootstrap-server", "localhost:1", "describe", "--status"),
            "kafka-dump-log": ("--files", "x.log"), "kafka-server-stop": (),
            }.get(script, ("--bootstrap-server", "localhost:1"))
    one_line_failure(run(script, *args, env=env), "unexpected error RuntimeError: injected bug for the test",
                     "KRAFT_LOG_LEVEL=DEBUG")
    debug = run(script, *args, env={**env, "KRAFT_LOG_LEVEL": "DEBUG"})
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr, debug.stderr


UNREACHABLE = [
    ("kafka-topics", "--list"),
    ("kafka-topics", "--describe", "--topic", "t"),
    ("kafka-topics", "--create", "--topic", "t"),
    ("kafka-console-producer", "--topic", "t"),
    ("kafka-console-consumer", "--topic", "t"),
    ("kafka-console-consumer", "--topic", "t", "--group", "g"),
    ("kafka-get-offsets", "--topic", "t"),
    ("kafka-consumer-groups", "--list"),
    ("kafka-metadata-quorum", "describe", "--status"),
    ("kafka-delete-records", "--offset-json-file", "{offsets}"),
    ("kafka-leader-election", "--election-type", "preferred", "--all-topic-partitions"),
]


@pytest.mark.parametrize("command", UNREACHABLE, ids=" ".join)
def test_an_unreachable_bootstrap_server_is_one_line_and_quick(command: tuple[str, ...], tmp_path: Path) -> None:
    offsets = tmp_path / "offsets.json"
    offsets.write_text('{"partitions": [{"topic": "t", "partition": 0, "offset": 1}], "version": 1}')
    address = f"127.0.0.1:{closed_port()}"
    script, *args = command
    args = [str(offsets) if arg == "{offsets}" else arg for arg in args]
    if script == "kafka-metadata-quorum":
        args = ["--bootstrap-server", address, *args]
    else:
        args = [*args, "--bootstrap-server", address]
    started = time.monotonic()
    result = run(script, *args)
    elapsed_s = time.monotonic() - started
    one_line_failure(result, address)
    assert elapsed_s < UNREACHABLE_REPORT_S, f"expected the failure within {UNREACHABLE_REPORT_S} s, took {elapsed_s:.1f} s"


def test_unknown_topics_are_one_line(kraft_node) -> None:
    bootstrap = ("--bootstrap-server", kraft_node.bootstrap)
    missing = "Topic 'no-such-topic' does not exist as expected"
    for action in (("--describe",), ("--delete",), ("--alter", "--partitions", "3")):
        one_line_failure(run("kafka-topics", *bootstrap, *action, "--topic", "no-such-topic"), missing)
    one_line_failure(run("kafka-get-offsets", *bootstrap, "--topic", "no-such-topic"),
                     "Could not match any topic-partitions with the specified filters")
    one_line_failure(run("kafka-topics", *bootstrap, "--create", "--topic", "t", "--config", "segment.bytes=65536"),
                     "Invalid value 65536 for configuration segment.bytes: Value must be at least 1048576")


def test_missing_files_are_one_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.properties")
    one_line_failure(run("kafka-server-start", missing), missing)
    one_line_failure(run("kafka-storage", "format", "-t", "x" * 22, "-c", missing), missing)
    one_line_failure(run("kafka-storage", "info", "-c", missing), missing)
    one_line_failure(run("kafka-dump-log", "--files", str(tmp_path / "00000000000000000000.log")), "No such file")
    one_line_failure(run("kafka-dump-log", "--files", str(tmp_path / "nothing")), "No such file")
    one_line_failure(run("kafka-delete-records", "--bootstrap-server", "localhost:1", "--offset-json-file",
                         str(tmp_path / "none.json")), "none.json")


def test_python_m_kraft_refuses_a_bad_config_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "kraft", "num.partitions=abc"], capture_output=True, text=True,
                            timeout=TOOL_TIMEOUT_S, stdin=subprocess.DEVNULL, cwd=tmp_path,
                            env={**os.environ, "KRAFT_DATA_DIR": str(tmp_path / "data"),
                                 "PYTHONPATH": str(REPO_ROOT)})
    one_line_failure(result, "Invalid value abc for configuration num.partitions: Not a number of type INT")
