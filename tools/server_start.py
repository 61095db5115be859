"""``kafka-server-start FILE [--override key=value ...]``: run a node until SIGTERM/Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from .common import KafkaArgumentParser, PlainError, load_properties, parse_key_values, run_command

LOG_FORMAT = "[%(asctime)s] %(levelname)s %(message)s (%(name)s)"


def configure_logging() -> None:
    """INFO by default; ``KRAFT_LOG_LEVEL=DEBUG`` (or another level name) for more."""
    level = os.environ.get("KRAFT_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=getattr(logging, level, logging.INFO), format=LOG_FORMAT, stream=sys.stdout,
                        force=True)


def _parser() -> KafkaArgumentParser:
    parser = KafkaArgumentParser("kafka-server-start", "Start a kraft node.")
    parser.add_argument("config", help="server.properties")
    parser.add_argument("--override", action="append", metavar="key=value", default=[],
                        help="Optional property that should override values set in server.properties file")
    return parser


def load_server_config(path: str, overrides: dict[str, str]):
    from kraft.config import ConfigError, parse_server_config

    try:
        properties = load_properties(path)
    except OSError as error:
        raise PlainError(f"Cannot read config file {path}: {error.strerror}") from None
    properties.update(overrides)
    try:
        config = parse_server_config(properties)
    except ConfigError as error:
        raise PlainError(f"Invalid configuration: {error}") from None
    for key in config.unknown_keys:
        logging.getLogger("kraft.config").warning(
            "The configuration '%s' was supplied but isn't a known config.", key)
    return config


async def serve(config) -> None:
    import trio

    from kraft.node import Node

    node = Node(config)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(node.run)
            async for received in signals:
                logging.getLogger("kraft.node").info(
                    "[node %d] received %s, shutting down", config.node_id, signal.Signals(received).name)
                await node.prepare_shutdown()
                nursery.cancel_scope.cancel()
                break


def run_node(config) -> int:
    import trio

    from kraft.meta_properties import StorageNotFormatted
    from kraft.node import NodeStartError
    from kraft.raft import MetadataLogError
    from storage.errors import StorageError

    try:
        trio.run(serve, config)
    except (StorageNotFormatted, NodeStartError, MetadataLogError, StorageError, OSError) as error:
        logging.getLogger("kraft.node").error("[node %d] cannot start: %s", config.node_id, error)
        return 1
    return 0


def _execute(args: argparse.Namespace) -> int:
    configure_logging()
    config = load_server_config(args.config, parse_key_values(args.override))
    return run_node(config)


def main(argv: list[str] | None = None) -> int:
    return run_command(_parser(), _execute, argv)


if __name__ == "__main__":
    sys.exit(main())
