"""What every kraft command-line tool shares: parsing, properties, and one error wrapper.

Each tool module is a small command in the pip style: ``main(argv)`` builds an argument parser,
``run_command`` parses, calls one function that does the work, and turns the exceptions an
operator can cause (bad flags, an unreachable broker, an error code from the cluster) into a
message and an exit code. Anything else is a bug: it is reported in one line too, with exit
code 1, and its traceback is shown only with ``KRAFT_LOG_LEVEL=DEBUG``.

This module imports only the standard library so that ``--help`` stays instant; tools import
the network stack (trio, kio, ``protocol.client``) inside the function that needs it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from typing import Any, NoReturn, TextIO

from kraft.properties import PropertiesFileError, parse_properties, read_properties_file  # noqa: F401 (parse_properties: tools use it from here)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


class ToolError(Exception):
    """An operating error, reported to the user as a message and an exit code."""

    def __init__(self, message: str, *, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class PlainError(ToolError):
    """Reported as-is on stderr, without the tool's error prefix (Kafka's tools print their
    IllegalArgumentException messages this way)."""


class UsageError(PlainError):
    """The command line itself is wrong; while parsing, the usage follows the message."""


class KafkaArgumentParser(argparse.ArgumentParser):
    """argparse with Kafka's conventions: whole option names only and exit code 1 on misuse."""

    def __init__(self, prog: str | None = None, description: str | None = None, **kwargs: Any) -> None:
        # Keyword arguments pass through so that sub-command parsers are built with this class.
        kwargs["allow_abbrev"] = False
        super().__init__(prog=prog, description=description, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        """As argparse, except that a flag nobody knows is named before a missing argument
        (argparse reports the missing positional first, hiding the typo that caused it)."""
        argv = sys.argv[1:] if args is None else list(args)
        try:
            return super().parse_args(argv, namespace)
        except UsageError as error:
            known = _option_strings(self)
            unknown = [arg for arg in argv if arg.startswith("-") and len(arg) > 1
                       and arg.split("=", 1)[0] not in known and not _is_number(arg)]
            if unknown and not str(error).startswith("unrecognized arguments"):
                raise UsageError(f"unrecognized arguments: {' '.join(unknown)}") from None
            raise


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of the parser and of its sub-command parsers."""
    found = set(parser._option_string_actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _option_strings(sub)
    return found


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def run_command(
    parser: argparse.ArgumentParser,
    execute: Callable[[argparse.Namespace], int],
    argv: list[str] | None,
    *,
    error_prefix: str = "",
    error_stream: TextIO | None = None,
) -> int:
    """Parse ``argv``, run ``execute`` and map operating errors to messages and exit codes.

    ``error_prefix`` and ``error_stream`` let a tool keep Apache Kafka's wording, e.g.
    kafka-topics prints ``Error while executing topic command : ...`` on stdout.
    """
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as stop:  # --help and --version
            return stop.code if isinstance(stop.code, int) else EXIT_OK
        return execute(args)
    except UsageError as error:  # from parsing, or a check of the arguments in execute
        print(f"{error} (see {parser.prog} --help)", file=sys.stderr)
        return error.exit_code
    except PlainError as error:
        print(error, file=sys.stderr)
        return error.exit_code
    except ToolError as error:
        print(f"{error_prefix}{error}", file=error_stream or sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_FAILURE
    except Exception as error:
        if _is_client_error(error):
            print(f"{error_prefix}{error}", file=error_stream or sys.stderr)
            return EXIT_FAILURE
        return _report_bug(parser.prog, error)


def _report_bug(prog: str, error: BaseException) -> int:
    from kraft.server.process import report_unexpected_error

    return report_unexpected_error(prog, error)


def _is_client_error(error: BaseException) -> bool:
    """True for ``protocol.client.KafkaClientError``, without importing the client here."""
    client = sys.modules.get("protocol.client")
    return client is not None and isinstance(error, client.KafkaClientError)


def _silence_stdout() -> None:
    """After a broken pipe, stop Python from failing again while flushing stdout at exit."""
    try:
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def run_trio(function: Callable[..., Any], *args: Any) -> Any:
    """Run an async entry point; an exception group holding one operating error is unwrapped
    so the wrapper above can report it."""
    import trio

    try:
        return trio.run(function, *args)
    except BaseExceptionGroup as group:
        for leaf in _leaves(group):
            if isinstance(leaf, ToolError) or _is_client_error(leaf):
                raise leaf from group
        raise


def _leaves(group: BaseException) -> Iterable[BaseException]:
    children = getattr(group, "exceptions", None)
    if not children:
        yield group
        return
    for child in children:
        yield from _leaves(child)


# --- key=value properties -------------------------------------------------------------------


def parse_key_values(items: Iterable[str] | None) -> dict[str, str]:
    """``k=v`` arguments (``--property``, ``--producer-property``) as a dict.

    As Kafka's CommandLineUtils.parseKeyValueArgs, a bare ``k`` means an empty value; the value
    is everything after the first ``=`` so separators such as ``key.separator==`` survive.
    """
    result: dict[str, str] = {}
    for item in items or ():
        key, _, value = item.partition("=")
        if not key:
            raise UsageError(f"Invalid command line properties: {item}")
        result[key] = value
    return result


def load_properties(path: str) -> dict[str, str]:
    """Read a Java ``.properties`` file: ``#``/``!`` comments, ``=``, ``:`` or blank as the
    separator, backslash line continuations and escapes (including ``\\uXXXX``)."""
    try:
        return read_properties_file(path)
    except PropertiesFileError as error:
        raise ToolError(str(error)) from None


def parse_bool(value: str) -> bool:
    """Kafka reads tool booleans as ``value.trim().equalsIgnoreCase("true")``."""
    return value.strip().lower() == "true"


def client_properties(command_config: str | None, stream: TextIO | None = None) -> dict[str, str]:
    """Properties from ``--command-config``: kraft's client uses ``client.id`` and notes the rest."""
    if not command_config:
        return {}
    properties = load_properties(command_config)
    ignored = sorted(key for key in properties if key != "client.id")
    if ignored:
        print(
            f"Note: kraft's client uses only client.id from {command_config}; ignoring "
            + ", ".join(ignored),
            file=stream or sys.stderr,
        )
    return properties


def integer(text: str) -> int:
    """argparse type for numeric options, with a message that names the bad value."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
