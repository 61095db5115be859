"""``kafka-server-start FILE [--override key=value ...]``: run a node until SIGTERM/Ctrl-C.

The flags are parsed here; the process life cycle (config, logging, signals, run) is
``kraft.server.process``'s.
"""

from __future__ import annotations

import argparse
import sys

from .common import KafkaArgumentParser, PlainError, parse_key_values, run_command


def _parser() -> KafkaArgumentParser:
    parser = KafkaArgumentParser("kafka-server-start", "Start a kraft node.")
    parser.add_argument("config", help="server.properties")
    parser.add_argument("--override", action="append", metavar="key=value", default=[],
                        help="Optional property that should override values set in server.properties file")
    return parser


def _execute(args: argparse.Namespace) -> int:
    from kraft.server.process import ServerError, configure_logging, read_server_config, run_node

    configure_logging()
    try:
        config = read_server_config(args.config, parse_key_values(args.override))
    except ServerError as error:
        raise PlainError(str(error)) from None
    return run_node(config)


def main(argv: list[str] | None = None) -> int:
    return run_command(_parser(), _execute, argv)


if __name__ == "__main__":
    sys.exit(main())
