"""server.properties validation: a bad value stops the node at start with a message naming
the key (in-process and through ``python -m tools.server_start``); unknown keys are kept
for the start-up warning instead of refusing to start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kraft.config import ConfigError, parse_server_config
from tests.support.kraft_node import REPO_ROOT, base_properties, write_properties

START_FAILURE_TIMEOUT_S = 60
BAD_VALUES = [
    ("num.partitions", "abc"),
    ("num.partitions", "0"),
    ("log.segment.bytes", "1"),
    ("listeners", "garbage"),
    ("listeners", "PLAINTEXT://127.0.0.1:99999"),
    ("auto.create.topics.enable", "maybe"),
    ("socket.request.max.bytes", "-5"),
    ("log.cleanup.policy", "shred"),
    ("node.id", "9999999999"),
]


def properties(tmp_path: Path, **changes: str) -> dict[str, str]:
    result = base_properties(1, tmp_path / "data")
    result.update(changes)
    return result


def test_base_properties_are_valid(tmp_path):
    config = parse_server_config(properties(tmp_path))
    assert config.unknown_keys == ()
    assert config["auto.create.topics.enable"] is True
    assert config["socket.request.max.bytes"] == 104857600


@pytest.mark.parametrize(("key", "value"), BAD_VALUES)
def test_invalid_value_names_the_key(tmp_path, key, value):
    with pytest.raises(ConfigError) as raised:
        parse_server_config(properties(tmp_path, **{key: value}))
    assert key in str(raised.value), f"expected the message to name {key}, got {raised.value}"


def test_unknown_keys_are_kept_not_refused(tmp_path):
    config = parse_server_config(properties(tmp_path, **{"foo.bar": "1", "log.retention.hourz": "2"}))
    assert config.unknown_keys == ("foo.bar", "log.retention.hourz")


@pytest.mark.parametrize(("key", "value"), [
    ("num.partitions", "abc"), ("log.segment.bytes", "1"), ("listeners", "garbage"),
])
def test_server_start_exits_non_zero_naming_the_key(tmp_path, key, value):
    path = tmp_path / "server.properties"
    write_properties(path, properties(tmp_path, **{key: value}))
    result = subprocess.run(
        [sys.executable, "-m", "tools.server_start", str(path)], cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=START_FAILURE_TIMEOUT_S, stdin=subprocess.DEVNULL,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"expected a non-zero exit for {key}={value}, got 0:\n{output}"
    assert key in output and value in output, f"expected {key} and {value} in the output, got:\n{output}"
    assert "Traceback" not in output, f"expected a message, not a traceback:\n{output}"
