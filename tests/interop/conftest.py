"""Fixtures for interop tests: real clients against real kraft processes.

The node, Java client and kcat fixtures live in tests/conftest.py, as fault tests use them too.
"""

from __future__ import annotations

import re

import pytest

# Kafka topic names: at most 249 of [a-zA-Z0-9._-].
TOPIC_NAME_LENGTH_MAX = 249


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A valid topic name derived from the test's name, so a broker log tells whose topic it is."""
    name = re.sub(r"[^a-zA-Z0-9._-]+", "-", request.node.name).strip("-")
    return ("t-" + name)[:TOPIC_NAME_LENGTH_MAX]
