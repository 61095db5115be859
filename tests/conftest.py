"""Fixtures and markers shared by every kind of test.

Each test is marked by the folder it lives in (unit, property, sim, interop, fault), so
`pytest -m "unit or property"` runs the fast part while iterating. Every child process a test
starts is killed when the test ends, whatever happened; kraft nodes are stopped first, gently,
and their log tails are printed when the test failed.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import sys
import threading
from pathlib import Path

import pytest

from tests.support import java, processes
from tests.support.kraft_node import KraftNode

TESTS_DIR = Path(__file__).resolve().parent
FOLDER_MARKERS = {
    "unit": "pure logic, fast",
    "property": "hypothesis property tests (codecs, storage model)",
    "sim": "deterministic cluster simulation on virtual time",
    "interop": "real clients against real kraft processes (slow)",
    "fault": "process-level faults against real kraft processes (slow)",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, meaning in FOLDER_MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {meaning}")
    # A SIGTERM (a CI deadline, a developer's kill) unwinds like Ctrl-C, so fixtures still stop
    # the nodes and clients they started instead of leaving them running.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signal_number, frame):
    raise KeyboardInterrupt(f"signal {signal_number}")


def pytest_unconfigure(config: pytest.Config) -> None:
    """The last safety net: nothing the test run started outlives it."""
    processes.kill_spawned_since(0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(item.path).resolve()
        if path.is_relative_to(TESTS_DIR):
            folder = path.relative_to(TESTS_DIR).parts[0]
            if folder in FOLDER_MARKERS:
                item.add_marker(folder)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keeps each phase's report on the item, so teardown can tell whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _test_failed(request: pytest.FixtureRequest) -> bool:
    return any(
        getattr(getattr(request.node, f"report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )


@pytest.fixture(autouse=True)
def _kill_test_processes():
    """Kills every process spawned during the test that is still alive when it ends."""
    mark = processes.snapshot()
    yield
    killed = processes.kill_spawned_since(mark)
    if killed:
        print(f"killed {len(killed)} leftover process(es): {[p.args for p in killed]}", file=sys.stderr)


@pytest.fixture
def kraft_node_factory(tmp_path: Path, request: pytest.FixtureRequest):
    """Starts kraft nodes: `kraft_node_factory(overrides={...})`; all are stopped at teardown."""
    nodes: list[KraftNode] = []

    def start(overrides: dict[str, str | None] | None = None, **kwargs) -> KraftNode:
        node = KraftNode(tmp_path / f"node-{len(nodes) + 1}", overrides=overrides, **kwargs)
        nodes.append(node)
        node.start()
        return node

    try:
        yield start
    finally:
        # ExitStack stops every node even when stopping one of them raises.
        with contextlib.ExitStack() as stack:
            for node in nodes:
                stack.callback(node.stop)
        if _test_failed(request):
            for node in nodes:
                print(f"--- {node!r}: {node.log_path} (tail) ---\n{node.log_tail()}", file=sys.stderr)


@pytest.fixture
def kraft_node(kraft_node_factory) -> KraftNode:
    """One started single-node kraft cluster (broker and controller); `.bootstrap` for clients."""
    return kraft_node_factory()


@pytest.fixture(scope="session")
def java_client() -> java.JavaClient:
    """The Java clients and Kafka tools, built if needed; skips when java or mvn is missing."""
    try:
        java_path, _ = java.tool_paths()
        java.build()
    except java.JavaUnavailable as missing:
        pytest.skip(str(missing))
    return java.JavaClient(java_path)


@pytest.fixture(scope="session")
def kcat() -> str:
    """Path of kcat (librdkafka's CLI); skips when it is not installed."""
    path = shutil.which("kcat")
    if path is None:
        pytest.skip("kcat is not installed (tests/run installs it with apt-get when run as root)")
    return path
