"""A node's process life cycle: its configuration, logging, storage format, signals and run.

``kafka-server-start``, ``kafka-storage format`` and ``python -m kraft`` parse their flags in
``tools/`` (or ``kraft/__main__``) and call the functions here. An operating problem (a file
that cannot be read, an invalid value, storage that is not formatted, a port in use) is a
``ServerError`` or a logged start failure with exit code 1, always one line; the callers
decide how to print it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Mapping
from typing import TextIO

from ..config import ConfigError, ServerConfig, parse_server_config
from ..properties import PropertiesFileError, read_properties_file

LOG_FORMAT = "[%(asctime)s] %(levelname)s %(message)s (%(name)s)"
METADATA_VERSION_NAME = "4.0-IV3"
# The checkout's config/server.properties (this file is kraft/server/process.py).
DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                              "config", "server.properties")

logger = logging.getLogger("kraft.server.node")


class ServerError(Exception):
    """The command cannot be done; the message says why in one line."""


DEBUG_SWITCH = "KRAFT_LOG_LEVEL=DEBUG"


def debugging() -> bool:
    return os.environ.get("KRAFT_LOG_LEVEL", "").strip().upper() == "DEBUG"


def report_unexpected_error(prog: str, error: BaseException, stream: TextIO | None = None) -> int:
    """One line for an error nobody expected (a bug), exit code 1; the traceback only with
    ``KRAFT_LOG_LEVEL=DEBUG``. An exception group is named by its first leaf."""
    stream = stream or sys.stderr
    if debugging():
        import traceback

        traceback.print_exception(error, file=stream)
    leaf = error
    while isinstance(leaf, BaseExceptionGroup) and leaf.exceptions:
        leaf = leaf.exceptions[0]
    text = str(leaf).strip().splitlines()
    detail = f": {text[0]}" if text else ""
    hint = "" if debugging() else f" (run with {DEBUG_SWITCH} for the traceback)"
    print(f"{prog}: unexpected error {type(leaf).__name__}{detail}{hint}", file=stream)
    return 1


def configure_logging() -> None:
    """INFO by default; ``KRAFT_LOG_LEVEL=DEBUG`` (or another level name) for more."""
    level = os.environ.get("KRAFT_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=getattr(logging, level, logging.INFO), format=LOG_FORMAT, stream=sys.stdout,
                        force=True)


def read_server_config(path: str, overrides: Mapping[str, str] | None = None) -> ServerConfig:
    """``server.properties`` with ``overrides`` on top, validated; unknown keys warned about."""
    try:
        properties = read_properties_file(path)
    except PropertiesFileError as error:
        raise ServerError(str(error)) from None
    properties.update(overrides or {})
    try:
        config = parse_server_config(properties)
    except ConfigError as error:
        raise ServerError(f"Invalid configuration: {error}") from None
    for key in config.unknown_keys:
        logging.getLogger("kraft.config").warning("The configuration '%s' was supplied but isn't a known config.", key)
    return config


def format_storage(config: ServerConfig, cluster_id: str, *, ignore_formatted: bool = False,
                   standalone: bool = False, out: TextIO | None = None) -> int:
    """``kafka-storage format``: meta.properties in every directory, the bootstrap features in
    the metadata directory and, with ``standalone``, this node as the quorum's only voter."""
    from .. import meta_properties as meta

    out = out or sys.stdout
    if not meta.valid_cluster_id(cluster_id):
        raise ServerError(f"Cluster ID string {cluster_id} does not appear to be a valid UUID: Input string with"
                          f" prefix `{cluster_id[:22]}` is too short to be decoded as a base64 UUID")
    directories = sorted(set(config.log_dirs) | {config.metadata_log_dir})
    formatted = [d for d in directories if meta.read_meta_properties(d) is not None]
    if formatted and not ignore_formatted:
        raise ServerError(f"Log directory {formatted[0]} is already formatted. Use --ignore-formatted"
                          " to ignore this directory and format the others.")
    pending = [d for d in directories if d not in formatted]
    if not pending:
        print("All of the log directories are already formatted.", file=out)
        return 0
    for directory in pending:
        directory_id = meta.random_uuid()
        meta.write_meta_properties(directory, meta.MetaProperties(cluster_id, config.node_id, directory_id))
        kind = "metadata" if directory == config.metadata_log_dir else "data"
        if directory == config.metadata_log_dir:
            meta.write_bootstrap(directory)
            if standalone:
                endpoints = [(listener.name, listener.host or "localhost", listener.port)
                             for listener in config.listeners if listener.name in config.controller_listener_names]
                meta.write_standalone_voters(directory, config.node_id, directory_id, endpoints)
        print(f"Formatting {kind} directory {directory} with metadata.version {METADATA_VERSION_NAME}.", file=out)
    return 0


async def serve(config: ServerConfig) -> None:
    """Run the node until SIGTERM or SIGINT, then shut it down gracefully."""
    import trio

    from .node import Node

    node = Node(config)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(node.run)
            async for received in signals:
                logger.info("[node %d] received %s, shutting down", config.node_id, signal.Signals(received).name)
                await node.prepare_shutdown()
                nursery.cancel_scope.cancel()
                break


def run_node(config: ServerConfig) -> int:
    """Serve until stopped; 0 after a clean stop, 1 (one logged line) when it cannot start."""
    import trio

    from storage.errors import StorageError

    from ..meta_properties import StorageNotFormatted
    from .node import NodeStartError
    from ..raft import DiskLogError

    try:
        trio.run(serve, config)
    except (StorageNotFormatted, NodeStartError, DiskLogError, StorageError, OSError) as error:
        logger.error("[node %d] cannot start: %s", config.node_id, error)
        return 1
    return 0


def run_default_node(overrides: Mapping[str, str]) -> int:
    """``python -m kraft``: ``config/server.properties`` with ``log.dirs`` in ``.kraft-data``
    of the current directory (``KRAFT_DATA_DIR`` overrides it), formatted as a standalone
    quorum on first use."""
    from .. import meta_properties as meta

    data_dir = os.path.abspath(os.environ.get("KRAFT_DATA_DIR", ".kraft-data"))
    overrides = {"log.dirs": data_dir, **overrides}
    configure_logging()
    config = read_server_config(DEFAULT_CONFIG, overrides)
    if meta.read_meta_properties(config.metadata_log_dir) is None:
        os.makedirs(data_dir, exist_ok=True)
        format_storage(config, meta.random_uuid(), standalone=True)
    return run_node(config)


__all__ = ["ServerError", "configure_logging", "debugging", "report_unexpected_error", "format_storage", "read_server_config", "run_default_node",
           "run_node", "serve"]
