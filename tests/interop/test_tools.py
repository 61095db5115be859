"""kraft's command-line tools as subprocesses against a real kraft node."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.interop

TOOL_TIMEOUT_S = 60


def run_tool(module: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", f"tools.{module}", *args],
        input=stdin, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"expected exit 0, got {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


def test_topic_life_cycle_produce_consume_offsets(kraft_node, topic_name: str, tmp_path) -> None:
    bootstrap = ("--bootstrap-server", kraft_node.bootstrap)
    topic = ("--topic", topic_name)

    created = ok(run_tool("topics", *bootstrap, "--create", *topic, "--partitions", "2",
                          "--replication-factor", "1", "--config", "retention.ms=86400000"))
    assert created.endswith(f"Created topic {topic_name}.\n")
    again = run_tool("topics", *bootstrap, "--create", *topic)
    assert again.returncode == 1
    # (The name has an underscore, so Kafka's metric-name collision warning comes first.)
    assert again.stdout.endswith(f"Error while executing topic command : Topic '{topic_name}' already exists.\n")
    assert topic_name in ok(run_tool("topics", *bootstrap, "--list")).splitlines()

    lines = ok(run_tool("topics", *bootstrap, "--describe", *topic)).splitlines()
    assert lines[0].startswith(f"Topic: {topic_name}\tTopicId: ")
    assert lines[0].endswith("\tPartitionCount: 2\tReplicationFactor: 1\tConfigs: retention.ms=86400000")
    assert lines[1] == f"\tTopic: {topic_name}\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\tElr: \tLastKnownElr: "
    assert len(lines) == 3

    records = "h1:a,h2:b\tk1\tfirst\nh3:c\tk2\tsecond\nh1:d\tk1\tthird\n"
    ok(run_tool("console_producer", *bootstrap, *topic, "--property", "parse.key=true",
                "--property", "parse.headers=true", stdin=records))

    consumed = run_tool("console_consumer", *bootstrap, *topic, "--from-beginning", "--timeout-ms", "3000",
                        "--property", "print.key=true", "--property", "print.headers=true",
                        "--property", "print.partition=true", "--property", "print.offset=true")
    output = ok(consumed).splitlines()
    assert "Processed a total of 3 messages" in consumed.stderr
    by_key: dict[str, list[str]] = {}
    for line in output:
        partition, offset, headers, key, value = line.split("\t")
        by_key.setdefault(key, []).append(f"{partition} {offset} {headers} {value}")
    k1 = by_key["k1"]
    assert [entry.split(" ", 2)[2] for entry in k1] == ["h1:a,h2:b first", "h1:d third"]
    assert k1[0].split()[0] == k1[1].split()[0], "one key, one partition"

    offsets = ok(run_tool("get_offsets", *bootstrap, *topic)).splitlines()
    ends = {line.rsplit(":", 2)[1]: int(line.rsplit(":", 1)[1]) for line in offsets}
    assert sorted(ends) == ["0", "1"] and sum(ends.values()) == 3
    earliest = ok(run_tool("get_offsets", *bootstrap, *topic, "--time", "-2")).splitlines()
    assert earliest == [f"{topic_name}:0:0", f"{topic_name}:1:0"]

    ok(run_tool("topics", *bootstrap, "--delete", *topic))
    assert topic_name not in ok(run_tool("topics", *bootstrap, "--list")).splitlines()


def test_dump_log_reads_the_nodes_segment(kraft_node, topic_name: str) -> None:
    bootstrap = ("--bootstrap-server", kraft_node.bootstrap)
    ok(run_tool("topics", *bootstrap, "--create", "--topic", topic_name, "--partitions", "1"))
    ok(run_tool("console_producer", *bootstrap, "--topic", topic_name, "--property", "parse.key=true",
                stdin="k\tv1\nk\tv2\n"))
    segment = kraft_node.data_dir / f"{topic_name}-0" / "00000000000000000000.log"
    dump = ok(run_tool("dump_log", "--files", str(segment), "--print-data-log")).splitlines()
    assert dump[:2] == [f"Dumping {segment}", "Log starting offset: 0"]
    assert dump[2].startswith("baseOffset: 0 lastOffset: 1 count: 2 baseSequence: 0 lastSequence: 1 producerId: ")
    assert dump[3].endswith("sequence: 0 headerKeys: [] key: k payload: v1")
    assert dump[4].endswith("sequence: 1 headerKeys: [] key: k payload: v2")
