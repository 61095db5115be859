"""The harness's proxy on real sockets: it forwards, tells a node's process from a client by
the connecting socket's owner, stalls a cut direction until it heals (nothing is lost), delays
and caps a slow one, and keeps serving when a peer resets its connection."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("kraft_jepsen", reason="the harness (jepsen-like/) is not installed; tools/venv --test installs it")

from kraft_jepsen.cluster import ProxyProcess  # noqa: E402

pytestmark = pytest.mark.fault
# A child process that connects through the proxy and echoes what comes back, as node 7 would.
CHILD = """
import socket, sys
sys.stdin.readline()  # connect only once the proxy knows this process is node 7
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sock.sendall(b"from-child")
sys.stdout.write(sock.recv(100).decode()); sys.stdout.flush()
"""


@pytest.fixture
def echo_port():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=lambda c=connection: [c.sendall(d) for d in iter(lambda: c.recv(65536), b"")],
                             daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def proxy(tmp_path: Path):
    process = ProxyProcess(tmp_path / "proxy.log")
    yield process
    process.close()


def _receive(sock: socket.socket, size: int, timeout_s: float) -> bytes:
    sock.settimeout(timeout_s)
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_a_cut_stalls_one_direction_and_healing_delivers_what_waited(proxy, echo_port):
    port = proxy.listen([["echo", 1, echo_port]])["echo"]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"ping")
        assert _receive(sock, 4, 5) == b"ping"
        proxy.rules(cut=[("client", "1")])
        sock.sendall(b"held")
        with pytest.raises(socket.timeout):
            _receive(sock, 4, 1.0)
        proxy.rules()
        assert _receive(sock, 4, 5) == b"held", "expected the bytes held by the cut once it healed"


def test_slow_links_add_latency_and_cap_bandwidth(proxy, echo_port):
    port = proxy.listen([["echo", 1, echo_port]])["echo"]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        proxy.rules(slow=[("1", "client", 300, None)])
        started = time.monotonic()
        sock.sendall(b"x")
        assert _receive(sock, 1, 5) == b"x"
        assert time.monotonic() - started >= 0.29, "expected 300 ms of added latency"
        proxy.rules(slow=[("1", "client", 0, 1_000_000)])
        started = time.monotonic()
        sock.sendall(b"y" * 500_000)
        assert len(_receive(sock, 500_000, 10)) == 500_000
        assert time.monotonic() - started >= 0.4, "expected 500 kB at 1 MB/s to take about half a second"


def test_a_nodes_process_is_told_from_a_client(proxy, echo_port):
    """Cutting node 7 -> 1 stalls the child registered as node 7, not this process (a client)."""
    port = proxy.listen([["echo", 1, echo_port]])["echo"]
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        proxy.pids({"7": child.pid})
        proxy.rules(cut=[("7", "1")])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"client")
            assert _receive(sock, 6, 5) == b"client", "expected a client's link to stay open"
    finally:
        child.kill()
        child.wait()
    node = subprocess.Popen([sys.executable, "-c", CHILD, str(port)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        proxy.pids({"7": node.pid})
        node.stdin.write("go\n")
        node.stdin.flush()
        with pytest.raises(subprocess.TimeoutExpired):
            node.wait(1.5)  # its bytes wait at the cut
        proxy.rules()
        out = node.stdout.read()
        node.wait(10)
        assert out == "from-child", f"expected node 7's echo after healing, got {out!r}"
    finally:
        node.kill()
        node.wait()


def test_a_reset_connection_leaves_the_proxy_serving(proxy, echo_port):
    port = proxy.listen([["echo", 1, echo_port]])["echo"]
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.sendall(b"bye")
        sock.close()  # RST, not FIN
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"still")
        assert _receive(sock, 5, 5) == b"still"
    assert proxy.stats()["connections"] >= 21
