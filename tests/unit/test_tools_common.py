"""The shared CLI pieces: k=v arguments, .properties files and the error wrapper."""

from __future__ import annotations

import pytest

from tools.common import (
    KafkaArgumentParser,
    PlainError,
    ToolError,
    client_properties,
    parse_key_values,
    parse_properties,
    run_command,
)


def test_key_values_split_at_the_first_equals_sign() -> None:
    assert parse_key_values(["a=1", "key.separator==", "empty=", "bare", "url=x=y"]) == {
        "a": "1", "key.separator": "=", "empty": "", "bare": "", "url": "x=y",
    }
    with pytest.raises(ToolError):
        parse_key_values(["=value"])


def test_properties_file_syntax_follows_java() -> None:
    text = (
        "# comment\n"
        "! another comment\n"
        "  client.id = my-client  \n"
        "acks:all\n"
        "linger.ms 5\n"
        "long.value = first \\\n"
        "    second\n"
        "tab.escape=a\\tb\n"
        "unicode=\\u0041\n"
        "key\\=with\\:separators=v\n"
        "empty=\n"
    )
    assert parse_properties(text) == {
        "client.id": "my-client  ",
        "acks": "all",
        "linger.ms": "5",
        "long.value": "first second",
        "tab.escape": "a\tb",
        "unicode": "A",
        "key=with:separators": "v",
        "empty": "",
    }


def test_client_properties_use_client_id_and_name_the_rest(tmp_path, capsys) -> None:
    path = tmp_path / "admin.properties"
    path.write_text("client.id=ops\nsecurity.protocol=PLAINTEXT\n")
    assert client_properties(str(path))["client.id"] == "ops"
    assert "ignoring security.protocol" in capsys.readouterr().err
    with pytest.raises(ToolError, match="cannot read properties file"):
        client_properties(str(tmp_path / "missing.properties"))


def _parser() -> KafkaArgumentParser:
    parser = KafkaArgumentParser("demo", "A demo command.")
    parser.add_argument("--fail", choices=["tool", "plain", "other"])
    return parser


def _execute(args) -> int:
    if args.fail == "tool":
        raise ToolError("the cluster said no", exit_code=3)
    if args.fail == "plain":
        raise PlainError("bad input")
    if args.fail == "other":
        raise RuntimeError("a bug")
    return 0


def test_run_command_maps_errors_to_messages_and_exit_codes(capsys) -> None:
    assert run_command(_parser(), _execute, []) == 0
    assert run_command(_parser(), _execute, ["--fail", "tool"], error_prefix="Error: ") == 3
    assert capsys.readouterr().err == "Error: the cluster said no\n"
    assert run_command(_parser(), _execute, ["--fail", "plain"], error_prefix="Error: ") == 1
    assert capsys.readouterr().err == "bad input\n"


def test_a_bug_is_one_line_and_exit_1_and_its_traceback_needs_the_debug_switch(capsys, monkeypatch) -> None:
    monkeypatch.delenv("KRAFT_LOG_LEVEL", raising=False)
    assert run_command(_parser(), _execute, ["--fail", "other"]) == 1
    err = capsys.readouterr().err
    assert err == "demo: unexpected error RuntimeError: a bug (run with KRAFT_LOG_LEVEL=DEBUG for the traceback)\n"
    monkeypatch.setenv("KRAFT_LOG_LEVEL", "debug")
    assert run_command(_parser(), _execute, ["--fail", "other"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):\n") and "RuntimeError: a bug" in err
    assert err.endswith("demo: unexpected error RuntimeError: a bug\n")


def test_usage_errors_exit_1_and_help_exits_0(capsys) -> None:
    assert run_command(_parser(), _execute, ["--unknown"]) == 1
    err = capsys.readouterr().err
    assert err == "unrecognized arguments: --unknown (see demo --help)\n", "one line, pointing at --help"
    assert run_command(_parser(), _execute, ["--fa", "tool"]) == 1, "abbreviated options are refused"
    capsys.readouterr()
    assert run_command(_parser(), _execute, ["--help"]) == 0
    assert "A demo command." in capsys.readouterr().out
