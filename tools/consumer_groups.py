"""kafka-consumer-groups: list, describe, delete consumer groups and reset or delete their offsets.

Options, checks and output follow Apache Kafka 4.1.1's ConsumerGroupCommand (the output
rules are in ``consumer_groups_output``). Like Kafka, a group that does not exist or is not
inactive is reported in the output ("Error: ..." on stdout) and the command goes on; unlike
Kafka, a failure of the command itself (an unreachable broker, an error code) exits 1 rather
than 0, so scripts can tell.

The wire calls are FindCoordinator, DescribeGroups, OffsetFetch, Metadata, ListOffsets,
OffsetCommit (generation -1, no member id), DeleteGroups, OffsetDelete and ListGroups.
"""

from __future__ import annotations

import sys
from argparse import Namespace

from tools.common import (
    KafkaArgumentParser,
    PlainError,
    UsageError,
    client_properties,
    integer,
    run_command,
    run_trio,
)

DEFAULT_CLIENT_ID = "kraft-consumer-groups"
ERROR_PREFIX = "\nError: Executing consumer group command failed due to "
ACTIONS = ("list", "describe", "delete", "reset_offsets", "delete_offsets")
SCENARIOS = ("to_offset", "to_datetime", "by_duration", "to_earliest", "to_latest", "to_current", "shift_by",
             "from_file")
CONSUMER_STATES = ("PreparingRebalance", "CompletingRebalance", "Stable", "Dead", "Empty", "Assigning",
                   "Reconciling")
DRY_RUN_WARNING = (
    "WARN: No action will be performed as the --execute option is missing. In a future major release, the default "
    "behavior of this command will be to prompt the user before executing the reset rather than doing a dry run. "
    "You should add the --dry-run option explicitly if you are scripting this command and want to keep the current "
    "default behavior without prompting."
)


def build_parser() -> KafkaArgumentParser:
    parser = KafkaArgumentParser(
        "kafka-consumer-groups", "This tool helps to list all consumer groups, describe a consumer group, delete "
        "consumer group info, or reset consumer group offsets.")
    parser.add_argument("--bootstrap-server", help="REQUIRED: The server(s) to connect to.")
    parser.add_argument("--group", action="append", default=[], help="The consumer group we wish to act on.")
    parser.add_argument("--topic", action="append", default=[],
                        help="The topic whose offsets to delete or reset; `topic1:0,1,2` names partitions.")
    parser.add_argument("--all-topics", action="store_true", help="Consider all topics assigned to a group in the "
                        "`reset-offsets` process.")
    parser.add_argument("--all-groups", action="store_true", help="Apply to all consumer groups.")
    for action, text in (("list", "List all consumer groups."),
                         ("describe", "Describe consumer group and list offset lag related to given group."),
                         ("delete", "Pass in groups to delete topic partition offsets and ownership information."),
                         ("reset-offsets", "Reset offsets of consumer group (inactive groups only)."),
                         ("delete-offsets", "Delete offsets of consumer group.")):
        parser.add_argument(f"--{action}", action="store_true", help=text)
    parser.add_argument("--timeout", type=integer, default=5000, help="Timeout in ms for some use cases.")
    parser.add_argument("--command-config", help="Property file containing configs to be passed to Admin Client.")
    parser.add_argument("--dry-run", action="store_true", help="Only show results (the default).")
    parser.add_argument("--execute", action="store_true", help="Execute operation.")
    parser.add_argument("--export", action="store_true", help="Export the reset plan as CSV.")
    parser.add_argument("--to-offset", type=integer, help="Reset offsets to a specific offset.")
    parser.add_argument("--to-datetime", help="Reset offsets to offset from datetime. Format: 'YYYY-MM-DDTHH:mm:SS.sss'")
    parser.add_argument("--by-duration", help="Not supported by kraft yet.")
    parser.add_argument("--from-file", help="Not supported by kraft yet.")
    parser.add_argument("--to-earliest", action="store_true", help="Reset offsets to earliest offset.")
    parser.add_argument("--to-latest", action="store_true", help="Reset offsets to latest offset.")
    parser.add_argument("--to-current", action="store_true", help="Reset offsets to current offset.")
    parser.add_argument("--shift-by", type=integer, help="Reset offsets shifting current offset by 'n'.")
    parser.add_argument("--members", action="store_true", help="Describe members of the group.")
    parser.add_argument("--verbose", action="store_true", help="Provide additional information when describing.")
    parser.add_argument("--offsets", action="store_true", help="Describe the group's offsets and lag (default).")
    parser.add_argument("--state", nargs="?", const="", default=None,
                        help="With --describe the group's state; with --list states to list (e.g. stable,empty).")
    parser.add_argument("--type", nargs="?", const="", default=None, help="With --list, the group types to list.")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), execute, argv, error_prefix=ERROR_PREFIX, error_stream=sys.stdout)


def _given(args: Namespace, name: str) -> bool:
    value = getattr(args, name)
    return value not in (None, False, [])


def check_arguments(args: Namespace) -> None:
    """Kafka's ConsumerGroupCommandOptions.checkArgs, in its order and wording."""
    actions = [a for a in ACTIONS if _given(args, a)]
    if len(actions) != 1:
        raise UsageError("Command must include exactly one action: --list, --describe, --delete, --reset-offsets, "
                         "--delete-offsets, --validate-regex")
    if not args.bootstrap_server:
        raise UsageError('Missing required argument "[bootstrap-server]"')
    groups_given = bool(args.group) or args.all_groups
    for option, allowed in (("members", ("describe",)), ("verbose", ("describe",)), ("offsets", ("describe",)),
                            ("state", ("describe", "list")), ("type", ("list",))):
        if _given(args, option) and not any(_given(args, a) for a in allowed):
            raise UsageError(f"Option {option} is unavailable without " + " or ".join(allowed))
    if args.describe:
        if not groups_given:
            raise UsageError("Option [describe] takes one of these options: [group], [all-groups]")
        if sum(_given(args, o) for o in ("members", "offsets", "state")) > 1:
            raise UsageError("Option [describe] takes at most one of these options: [members], [offsets], [state]")
        if args.state:
            raise UsageError("Option [describe] does not take a value for [state]")
    if args.delete:
        if not groups_given:
            raise UsageError("Option [delete] takes one of these options: [group], [all-groups]")
        if args.topic:
            raise UsageError("The consumer does not support topic-specific offset deletion from a consumer group.")
    if args.delete_offsets and (len(args.group) != 1 or not args.topic):
        raise UsageError("Option [delete-offsets] takes the following options: [group], [topic]")
    if args.reset_offsets:
        _check_reset_arguments(args, groups_given)
    if args.group and args.all_groups:
        raise UsageError('Option "[group]" can\'t be used with option "[all-groups]"')
    if args.group and args.list:
        raise UsageError('Option "[group]" can\'t be used with option "[list]"')
    if args.topic and (args.list or args.describe):
        used = "list" if args.list else "describe"
        raise UsageError(f'Option "[topic]" can\'t be used with option "[{used}]"')


def _check_reset_arguments(args: Namespace, groups_given: bool) -> None:
    if args.dry_run and args.execute:
        raise UsageError("Option [reset-offsets] only accepts one of [execute] and [dry-run]")
    if not args.dry_run and not args.execute:
        print(DRY_RUN_WARNING, file=sys.stderr)
    if not groups_given:
        raise UsageError("Option [reset-offsets] takes one of these options: [group], [all-groups]")
    scenarios = [s for s in SCENARIOS if _given(args, s)]
    if len(scenarios) > 1:
        first, second = (s.replace("_", "-") for s in scenarios[:2])
        raise UsageError(f'Option "[{first}]" can\'t be used with option "[{second}]"')
    if not scenarios:
        raise UsageError("Option '[reset-offsets]' requires one of the following scenarios: [to-offset], "
                         "[to-datetime], [by-duration], [to-earliest], [to-latest], [to-current], [shift-by], "
                         "[from-file]")
    if scenarios[0] in ("by_duration", "from_file"):
        raise PlainError(f"--{scenarios[0].replace('_', '-')} is not supported by kraft's kafka-consumer-groups yet")
    if not args.all_topics and not args.topic:
        raise UsageError("One of the reset scopes should be defined: --all-topics, --topic.")


def parse_states(text: str) -> list[str]:
    """Kafka's GroupState.parse (case-insensitive) restricted to consumer-group states."""
    by_lower = {state.lower(): state for state in CONSUMER_STATES}
    states = []
    for item in text.split(","):
        state = by_lower.get(item.strip().lower())
        if state is None:
            raise UsageError(f"Invalid state list '{text}'. Valid states are: " + ", ".join(CONSUMER_STATES))
        states.append(state)
    return states


def execute(args: Namespace) -> int:
    check_arguments(args)
    states = parse_states(args.state) if args.list and args.state else []
    if args.type:
        for item in args.type.lower().split(","):
            if item.strip() not in ("classic", "consumer"):
                raise UsageError(f"Invalid types list '{args.type}'. Valid types are: Classic, Consumer")
    properties = client_properties(args.command_config)
    from tools import consumer_groups_actions as actions

    run_trio(actions.run, args, states, properties.get("client.id", DEFAULT_CLIENT_ID))
    return 0


if __name__ == "__main__":
    sys.exit(main())
