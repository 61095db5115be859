"""The test harness itself: the Java classpath and the kraft node life cycle.

The node tests run KraftNode against a stand-in server that speaks only the harness's contract
(a `listener NAME bound to HOST:PORT` line per listener, then `started (kraft node ...)`), so
the harness is checked before, and independently of, the real server.
"""

import shutil
import sys
import textwrap

import pytest

from tests.support import java
from tests.support.kraft_node import KraftNode, KraftNodeError, pin_ports

STAND_IN_SERVER = textwrap.dedent(
    """
    import signal, socket, sys, time
    lines = open(sys.argv[1]).read().splitlines()
    properties = dict(line.split("=", 1) for line in lines if "=" in line)
    sockets = []
    for listener in properties["listeners"].split(","):
        name, address = listener.split("://")
        host, port = address.rsplit(":", 1)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
        sock.listen()
        sockets.append(sock)
        print(f"listener {name} bound to {host}:{sock.getsockname()[1]}", flush=True)
    print("started (kraft node 1)", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    time.sleep(60)
    """
)


def skip_unless_built():
    # A unit run stays fast: it uses the Java build tests/run made, and never runs Maven itself.
    if not (java.is_built() and shutil.which("java")):
        pytest.skip("tests/interop/java is not built (tests/run builds it with Maven)")


@pytest.mark.parametrize(
    "class_name",
    [java.TOPIC_COMMAND, java.CONSOLE_PRODUCER, java.CONSOLE_CONSUMER, java.GET_OFFSET_SHELL, java.CLIENT_MAIN],
)
def test_java_classpath_holds_main_class(class_name):
    skip_unless_built()
    found = java.find_class(class_name)
    assert found is not None, (
        f"expected {class_name} on the classpath {java.classpath()}, "
        f"found it in none of {len(java.lib_jars())} jars"
    )


def test_java_client_times_out_cleanly_without_a_broker():
    skip_unless_built()
    java_client = java.JavaClient(shutil.which("java"))
    # Port 1 on loopback refuses connections: the client must give up within its timeout.
    result = java_client.run("list-topics", ["--bootstrap", "127.0.0.1:1", "--timeout-ms", "1000"], timeout_s=30)
    assert result.returncode == java.EXIT_TIMEOUT, f"expected exit {java.EXIT_TIMEOUT}, got {result}"
    assert java.json_lines(result.stdout)[-1]["error"] == "TimeoutException", result.stdout


def test_pin_ports_moves_port_zero_listeners_to_their_bound_ports():
    properties = {
        "listeners": "PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
        "controller.listener.names": "CONTROLLER",
        "controller.quorum.bootstrap.servers": "127.0.0.1:0",
    }
    pinned = pin_ports(properties, {"PLAINTEXT": 40001, "CONTROLLER": 40002})
    assert pinned == {
        "listeners": "PLAINTEXT://127.0.0.1:40001,CONTROLLER://127.0.0.1:40002",
        "controller.listener.names": "CONTROLLER",
        "controller.quorum.bootstrap.servers": "127.0.0.1:40002",
    }


class StandInNode(KraftNode):
    server_script = STAND_IN_SERVER

    def format_command(self):
        return [sys.executable, "-c", "print('formatted')"]

    def server_command(self):
        script = self.directory / "stand_in_server.py"
        script.write_text(self.server_script)
        return [sys.executable, str(script), str(self.properties_path)]


def test_node_restarts_on_the_ports_it_had(tmp_path):
    node = StandInNode(tmp_path / "node", start_timeout_s=10)
    try:
        node.start()
        bootstrap, ports = node.bootstrap, dict(node.ports)
        assert set(ports) == {"PLAINTEXT", "CONTROLLER"} and 0 not in ports.values(), ports
        node.kill9()
        assert not node.is_running()
        node.restart()
        assert (node.bootstrap, node.ports) == (bootstrap, ports), "expected the same ports after a restart"
        assert node.stop() == 0, "expected the SIGTERMed server to exit 0"
        assert node.log_text().count("started (kraft node") == 2, node.log_text()
    finally:
        node.kill9()


def test_node_that_exits_early_raises_with_its_log(tmp_path):
    node = StandInNode(tmp_path / "node", start_timeout_s=10)
    node.server_script = "print('no such config key: bogus'); raise SystemExit(4)"
    with pytest.raises(KraftNodeError, match=r"(?s)status 4.*no such config key: bogus"):
        node.start()
