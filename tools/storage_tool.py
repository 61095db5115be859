"""``kafka-storage``: random-uuid, format and info, with Kafka's flags and messages."""

from __future__ import annotations

import argparse
import os
import sys

from .common import KafkaArgumentParser, PlainError, load_properties, run_command


def _parser() -> KafkaArgumentParser:
    parser = KafkaArgumentParser("kafka-storage", "The Kafka storage tool.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("random-uuid", help="Print a random UUID.")
    fmt = commands.add_parser("format", help="Format the Kafka log directories on this node.")
    fmt.add_argument("-c", "--config", required=True, help="The Kafka configuration file to use.")
    fmt.add_argument("-t", "--cluster-id", required=True, help="The cluster ID to use.")
    fmt.add_argument("-g", "--ignore-formatted", action="store_true",
                     help="When this option is passed, the format command will skip over already formatted directories rather than failing.")
    fmt.add_argument("-s", "--standalone", action="store_true",
                     help="Used to initialize a controller as a single-node dynamic quorum.")
    fmt.add_argument("-N", "--no-initial-controllers", action="store_true")
    fmt.add_argument("-I", "--initial-controllers")
    fmt.add_argument("-r", "--release-version")
    info = commands.add_parser("info", help="Get information about the Kafka log directories on this node.")
    info.add_argument("-c", "--config", required=True, help="The Kafka configuration file to use.")
    return parser


def _server_config(path: str):
    from kraft.config import ConfigError, parse_server_config

    try:
        return parse_server_config(load_properties(path))
    except ConfigError as error:
        raise PlainError(str(error)) from None


def format_storage(config_path: str, cluster_id: str, *, ignore_formatted: bool = False,
                   standalone: bool = False, out=None) -> int:
    from kraft.server.process import ServerError, format_storage as format_directories

    try:
        return format_directories(_server_config(config_path), cluster_id, ignore_formatted=ignore_formatted,
                                  standalone=standalone, out=out)
    except ServerError as error:
        raise PlainError(str(error)) from None


def storage_info(config_path: str, out=sys.stdout) -> int:
    from kraft import meta_properties as meta

    config = _server_config(config_path)
    directories = sorted(set(config.log_dirs) | {config.metadata_log_dir})
    found, missing = [], []
    for directory in directories:
        props = meta.read_meta_properties(directory) if os.path.isdir(directory) else None
        (found if props else missing).append((directory, props))
    print(f"Found log director{'y' if len(directories) == 1 else 'ies'}:", file=out)
    for directory, _ in found:
        print(f"  {directory}", file=out)
    if found:
        props = found[0][1]
        print(f"\nFound metadata: {{cluster.id={props.cluster_id}, directory.id={props.directory_id},"
              f" node.id={props.node_id}, version={props.version}}}", file=out)
    for directory, _ in missing:
        print(f"\nFound problem:\n  {directory} is not formatted.", file=out)
    return 1 if missing else 0


def _execute(args: argparse.Namespace) -> int:
    from kraft.meta_properties import random_uuid

    if args.command == "random-uuid":
        print(random_uuid())
        return 0
    if args.command == "format":
        return format_storage(args.config, args.cluster_id, ignore_formatted=args.ignore_formatted,
                              standalone=args.standalone)
    return storage_info(args.config)


def main(argv: list[str] | None = None) -> int:
    return run_command(_parser(), _execute, argv)


if __name__ == "__main__":
    sys.exit(main())
