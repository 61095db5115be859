"""Formatting, starting and stopping a node as an operator does, with the real commands."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import processes
from tests.support.kraft_node import base_properties, new_cluster_id, write_properties

pytestmark = pytest.mark.interop
REPO_ROOT = Path(__file__).resolve().parents[2]
COMMAND_TIMEOUT_S = 60


def run_tool(module: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=COMMAND_TIMEOUT_S, env=env)


def test_random_uuid_format_and_info(tmp_path):
    uuid_result = run_tool("tools.storage_tool", "random-uuid")
    cluster_id = uuid_result.stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id), f"expected a 22-character id, got {cluster_id!r}"
    properties = tmp_path / "server.properties"
    write_properties(properties, base_properties(7, tmp_path / "data"))
    formatted = run_tool("tools.storage_tool", "format", "-t", cluster_id, "-c", str(properties), "--standalone")
    assert formatted.returncode == 0, formatted.stderr
    meta = (tmp_path / "data" / "meta.properties").read_text()
    for line in ("version=1", f"cluster.id={cluster_id}", "node.id=7"):
        assert line in meta, f"expected {line!r} in meta.properties:\n{meta}"
    assert re.search(r"^directory\.id=[A-Za-z0-9_-]{22}$", meta, re.M), meta
    assert (tmp_path / "data" / "bootstrap.checkpoint").exists()
    again = run_tool("tools.storage_tool", "format", "-t", cluster_id, "-c", str(properties))
    assert again.returncode != 0 and "already formatted" in again.stdout + again.stderr
    ignored = run_tool("tools.storage_tool", "format", "-t", cluster_id, "-c", str(properties), "--ignore-formatted")
    assert ignored.returncode == 0, ignored.stderr
    info = run_tool("tools.storage_tool", "info", "-c", str(properties))
    assert info.returncode == 0 and f"cluster.id={cluster_id}" in info.stdout, info.stdout
    bad_id = run_tool("tools.storage_tool", "format", "-t", "not-a-uuid", "-c", str(properties))
    assert bad_id.returncode != 0


def _start(properties: Path, log: Path) -> subprocess.Popen:
    handle = open(log, "w")
    return processes.spawn([sys.executable, "-m", "tools.server_start", str(properties)], cwd=REPO_ROOT,
                           stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _wait_for(log: Path, pattern: str, process: subprocess.Popen, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if re.search(pattern, log.read_text()):
            return
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"expected {pattern!r} in the node log within {timeout_s} s:\n{log.read_text()[-3000:]}")


def test_unformatted_or_mismatched_storage_refuses_to_start(tmp_path):
    properties = tmp_path / "server.properties"
    write_properties(properties, base_properties(1, tmp_path / "data"))
    result = run_tool("tools.server_start", str(properties))
    assert result.returncode != 0
    assert "No `meta.properties` found" in result.stdout + result.stderr, result.stdout + result.stderr
    assert run_tool("tools.storage_tool", "format", "-t", new_cluster_id(), "-c", str(properties),
                    "--standalone").returncode == 0
    write_properties(properties, {**base_properties(2, tmp_path / "data"),
                                  "controller.quorum.voters": "2@127.0.0.1:1"})
    mismatched = run_tool("tools.server_start", str(properties))
    assert mismatched.returncode != 0
    assert "doesn't match" in mismatched.stdout + mismatched.stderr, mismatched.stdout


def test_sigterm_shuts_down_cleanly_within_seconds(tmp_path):
    properties = tmp_path / "server.properties"
    write_properties(properties, base_properties(1, tmp_path / "data"))
    assert run_tool("tools.storage_tool", "format", "-t", new_cluster_id(), "-c", str(properties),
                    "--standalone").returncode == 0
    log = tmp_path / "node.log"
    process = _start(properties, log)
    try:
        _wait_for(log, r"started \(kraft node", process)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0, log.read_text()[-2000:]
        assert time.monotonic() - started < 5, "expected a clean shutdown within 5 s"
    finally:
        processes.kill(process)
    assert "shut down cleanly" in log.read_text()
    assert (tmp_path / "data" / ".kafka_cleanshutdown").exists()
    assert (tmp_path / "data" / "recovery-point-offset-checkpoint").exists()


def test_python_m_kraft_formats_its_default_directory_on_first_use(tmp_path):
    env = {**os.environ, "KRAFT_DATA_DIR": str(tmp_path / "default-data")}
    log = tmp_path / "node.log"
    handle = open(log, "w")
    process = processes.spawn(
        [sys.executable, "-m", "kraft", "listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
         "advertised.listeners=PLAINTEXT://127.0.0.1:0"],
        cwd=tmp_path, env=env, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_for(log, r"started \(kraft node 1", process)
        port = int(re.search(r"listener PLAINTEXT bound to [\d.]+:(\d+)", log.read_text())[1])
        assert (tmp_path / "default-data" / "meta.properties").exists()
        from kafka import KafkaAdminClient
        admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}")
        try:
            assert admin.describe_cluster()["cluster_id"]
        finally:
            admin.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        processes.kill(process)


def _write_single_voter_log(metadata_dir: Path, records_by_batch: list[list]) -> None:
    """``__cluster_metadata-0`` as the single-voter log of earlier kraft releases wrote it: one
    record batch per commit, stamped with the epoch, real timestamps, and a quorum-state file
    with a null directory id."""
    import json

    from kraft.metadata import encode_record
    from protocol.records import RecordInput, build_batch
    from storage.config import LogConfig
    from storage.fs import REAL_FILE_SYSTEM
    from storage.log import PartitionLog

    directory = metadata_dir / "__cluster_metadata-0"
    log = PartitionLog.open(str(directory), LogConfig(), REAL_FILE_SYSTEM)
    for records in records_by_batch:
        batch = build_batch([RecordInput(value=encode_record(r)) for r in records], partition_leader_epoch=1)
        log.append(bytearray(batch), leader_epoch=1)
    log.flush()
    log.close()
    state = {"leaderId": 1, "leaderEpoch": 1, "votedId": 1, "votedDirectoryId": None, "data_version": 1}
    (directory / "quorum-state").write_text(json.dumps(state))


def test_a_data_directory_of_the_single_voter_log_still_starts(kraft_node_factory, tmp_path):
    """Nodes formatted --standalone by earlier releases ran a separate single-voter log; every
    node now runs the Raft driver, which reads that log and takes the next epoch."""
    from kraft.metadata import FeatureLevelRecord, PartitionRecord, RegisterBrokerRecord, TopicRecord, new_topic_id
    from tests.support.kraft_node import KraftNode

    node = KraftNode(tmp_path / "legacy")
    node.directory.mkdir(parents=True)
    write_properties(node.properties_path, node.properties)
    node._format()
    topic_id = new_topic_id()
    _write_single_voter_log(node.data_dir, [
        [FeatureLevelRecord("metadata.version", 25)],
        [RegisterBrokerRecord(1, "old-incarnation", 1, (("PLAINTEXT", "127.0.0.1", 9092, "PLAINTEXT"),), None,
                              fenced=False)],
        [TopicRecord("legacy-topic", topic_id), PartitionRecord(topic_id, 0, (1,), (1,), 1),
         PartitionRecord(topic_id, 1, (1,), (1,), 1)],
    ])
    try:
        node.start()
        described = run_tool("tools.topics", "--bootstrap-server", node.bootstrap, "--describe", "--topic",
                             "legacy-topic")
        assert described.returncode == 0, described.stdout + described.stderr
        from protocol.uuids import uuid_to_text
        import uuid

        assert f"TopicId: {uuid_to_text(uuid.UUID(topic_id))}\tPartitionCount: 2" in described.stdout, described.stdout
        assert "\tPartition: 1\tLeader: 1\t" in described.stdout, described.stdout
        assert "active controller in epoch 2" in node.log_text(), node.log_tail()
    finally:
        node.stop()
