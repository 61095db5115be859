"""kafka-metadata-quorum against a real node: kraft's tool and Apache Kafka's own
MetadataQuorumCommand read the same DescribeQuorum answer and must print the same text.

Only what depends on the moment of asking may differ: the leader reports the current time as its
last fetch and last caught-up timestamps (so those cells, their ages with --human-readable, and
the padding of those two columns), and the high watermark moves if metadata is written between
the two runs (the node writes none on its own today, but the test allows it to grow).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.interop

METADATA_QUORUM_COMMAND = "org.apache.kafka.tools.MetadataQuorumCommand"
TOOL_TIMEOUT_S = 60
TIMESTAMP_COLUMNS = (4, 5)  # LastFetchTimestamp, LastCaughtUpTimestamp
CLOCK_SLACK_MS = 120_000
HIGH_WATERMARK = re.compile(r"^HighWatermark: +(\d+)$")
AGE = re.compile(r"^\d+ ms ago$")


def ours(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "tools.metadata_quorum", *args],
                            capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    assert result.returncode == 0, (
        f"expected kraft's kafka-metadata-quorum {args} to exit 0, got {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result.stdout


def kafkas(java_client, *args: str) -> str:
    return java_client.run(METADATA_QUORUM_COMMAND, args, check=True).stdout


def high_watermark(lines: list[str]) -> int:
    match = HIGH_WATERMARK.match(lines[3])
    assert match, f"expected line 4 to be the HighWatermark, got {lines[3]!r}"
    return int(match.group(1))


def table(text: str) -> list[list[str]]:
    """Rows of Kafka's table: every line ends with a tab after its last padded cell."""
    rows = []
    for line in text.splitlines():
        assert line.endswith("\t"), f"expected every table line to end with a tab, got {line!r}"
        rows.append(line[:-1].split("\t"))
    return rows


def stable_cells(rows: list[list[str]]) -> list[list[str]]:
    return [[cell for index, cell in enumerate(row) if index not in TIMESTAMP_COLUMNS] for row in rows]


def create_topic(bootstrap: str, name: str) -> None:
    result = subprocess.run([sys.executable, "-m", "tools.topics", "--bootstrap-server", bootstrap,
                             "--create", "--topic", name], capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    assert result.returncode == 0, f"expected the topic created\n{result.stdout}\n{result.stderr}"


def test_status_is_the_same_text_as_kafkas_tool(kraft_node, java_client, topic_name: str) -> None:
    create_topic(kraft_node.bootstrap, topic_name)  # so the metadata log holds more than the bootstrap
    args = ("--bootstrap-server", kraft_node.bootstrap, "describe", "--status")
    before = ours(*args).splitlines()
    theirs = kafkas(java_client, *args).splitlines()
    after = ours(*args).splitlines()

    assert len(theirs) == 8, "expected Kafka's 8 status lines, got:\n" + "\n".join(theirs)
    assert high_watermark(before) <= high_watermark(theirs) <= high_watermark(after)
    assert high_watermark(before) > 2, "creating a topic writes metadata records"
    for mine in (before, after):
        assert mine[:3] + mine[4:] == theirs[:3] + theirs[4:], (
            "expected kraft's status to equal Kafka's apart from the high watermark\n"
            "kraft:\n" + "\n".join(mine) + "\nKafka:\n" + "\n".join(theirs))
    assert theirs[0] == f"ClusterId:              {kraft_node.cluster_id}"
    assert theirs[1] == f"LeaderId:               {kraft_node.node_id}"
    controller = f"CONTROLLER://{kraft_node.host}:{kraft_node.ports['CONTROLLER']}"
    assert re.fullmatch(r'CurrentVoters: +\[\{"id": 1, "directoryId": "[A-Za-z0-9_-]{22}", "endpoints": \["'
                        + re.escape(controller) + r'"\]\}\]', theirs[6]), theirs[6]
    assert theirs[7] == "CurrentObservers:       []"
    # kraft's tool also reads the quorum through the controller listener.
    through_controller = ours("--bootstrap-controller", controller.removeprefix("CONTROLLER://"),
                              "describe", "--status").splitlines()
    assert through_controller[:3] + through_controller[4:] == theirs[:3] + theirs[4:]


@pytest.mark.parametrize("human_readable", [False, True], ids=["epoch-ms", "human-readable"])
def test_replication_table_is_the_same_as_kafkas_tool(kraft_node, java_client, human_readable: bool) -> None:
    args = ("--bootstrap-server", kraft_node.bootstrap, "describe", "--replication",
            *(("--human-readable",) if human_readable else ()))
    mine_text = ours(*args)
    theirs_text = kafkas(java_client, *args)
    now_ms = int(time.time() * 1000)
    mine, theirs = table(mine_text), table(theirs_text)

    assert mine[0] == theirs[0] == ["NodeId", "DirectoryId           ", "LogEndOffset", "Lag",
                                    "LastFetchTimestamp", "LastCaughtUpTimestamp", "Status"]
    assert stable_cells(mine) == stable_cells(theirs), (
        f"expected the same table apart from the timestamps\nkraft:\n{mine_text}\nKafka:\n{theirs_text}")
    assert [row[-1] for row in theirs[1:]] == ["Leader"]
    for rows in (mine, theirs):
        for index in TIMESTAMP_COLUMNS:
            cell = rows[1][index].strip()
            if human_readable:
                assert AGE.match(cell), f"expected an age like '12 ms ago', got {cell!r}"
            else:
                assert abs(int(cell) - now_ms) < CLOCK_SLACK_MS, f"expected about {now_ms}, got {cell}"


def test_kafkas_tool_through_the_controller_listener(kraft_node, java_client) -> None:
    """Kafka's tool asks DescribeCluster for controllers (KIP-919) with --bootstrap-controller."""
    controller = f"127.0.0.1:{kraft_node.ports['CONTROLLER']}"
    theirs = kafkas(java_client, "--bootstrap-controller", controller, "describe", "--status").splitlines()
    mine = ours("--bootstrap-controller", controller, "describe", "--status").splitlines()
    assert [line.split(":")[0] for line in theirs] == [line.split(":")[0] for line in mine]
    assert theirs[0] == mine[0] and theirs[1] == mine[1], f"expected the same cluster and leader:\n{theirs}\n{mine}"
