"""Helpers shared by kraft's tests: real kraft nodes, the Java clients, and child processes."""

from tests.support.java import (
    CLIENT_MAIN,
    CONSOLE_CONSUMER,
    CONSOLE_PRODUCER,
    GET_OFFSET_SHELL,
    TOPIC_COMMAND,
    JavaBuildError,
    JavaClient,
    JavaRunError,
    JavaUnavailable,
    json_lines,
)
from tests.support.kraft_node import KraftNode, KraftNodeError, new_cluster_id

__all__ = [
    "CLIENT_MAIN",
    "CONSOLE_CONSUMER",
    "CONSOLE_PRODUCER",
    "GET_OFFSET_SHELL",
    "TOPIC_COMMAND",
    "JavaBuildError",
    "JavaClient",
    "JavaRunError",
    "JavaUnavailable",
    "KraftNode",
    "KraftNodeError",
    "json_lines",
    "new_cluster_id",
]
