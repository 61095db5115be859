"""Option handling of the console producer, console consumer and kafka-get-offsets."""

from __future__ import annotations

import pytest

from tools import console_consumer, console_producer, get_offsets
from tools.common import ToolError, UsageError
from tools.producer import ProducerSettings, settings_from_properties


def _producer_args(*argv: str):
    return console_producer.build_parser().parse_args(["--bootstrap-server", "b:1", "--topic", "t", *argv])


def test_console_producer_defaults_are_kafkas() -> None:
    properties = console_producer.producer_properties(_producer_args())
    assert settings_from_properties(properties) == ProducerSettings(
        acks=-1, linger_ms=1000, batch_size=16384, compression=0, idempotent=True, retries=3,
        retry_backoff_ms=100, request_timeout_ms=1500, client_id="console-producer",
    )


def test_flags_win_over_properties_and_files(tmp_path) -> None:
    config = tmp_path / "producer.properties"
    config.write_text("linger.ms=5\nbatch.size=100\nclient.id=from-file\nacks=1\n")
    args = _producer_args("--producer.config", str(config), "--producer-property", "batch.size=200",
                          "--producer-property", "compression.type=lz4", "--batch-size", "300")
    properties = console_producer.producer_properties(args)
    assert properties["linger.ms"] == "5" and properties["batch.size"] == "300"
    assert properties["client.id"] == "from-file" and properties["compression.type"] == "lz4"
    settings = settings_from_properties(properties)
    assert settings.acks == 1 and not settings.idempotent, "implicit idempotence yields to acks=1"


def test_compression_codec_flag_without_value_means_gzip() -> None:
    assert console_producer.producer_properties(_producer_args("--compression-codec"))["compression.type"] == "gzip"
    properties = console_producer.producer_properties(_producer_args("--compression-codec", "zstd"))
    assert settings_from_properties(properties).compression == 4


def test_conflicting_or_bad_producer_settings() -> None:
    with pytest.raises(ToolError, match="Must set acks to all in order to use the idempotent producer"):
        settings_from_properties({"acks": "1", "enable.idempotence": "true"})
    with pytest.raises(ToolError, match="compression.type"):
        settings_from_properties({"compression.type": "brotli"})
    with pytest.raises(ToolError, match="Not a number"):
        settings_from_properties({"linger.ms": "soon"})
    with pytest.raises(ToolError, match="acks=0 is not supported"):
        settings_from_properties({"acks": "0"})


def test_reader_properties_merge_file_topic_and_flags(tmp_path) -> None:
    config = tmp_path / "reader.properties"
    config.write_text("parse.key=true\nkey.separator=,\n")
    args = _producer_args("--reader-config", str(config), "--property", "key.separator=:")
    assert console_producer.reader_properties(args) == {"parse.key": "true", "key.separator": ":", "topic": "t"}


def test_producer_requires_topic_and_bootstrap(capsys) -> None:
    assert console_producer.main(["--topic", "t"]) == 1
    assert 'Missing required argument "[bootstrap-server]"' in capsys.readouterr().err


def _consumer_args(*argv: str):
    return console_consumer.build_parser().parse_args(["--bootstrap-server", "b:1", "--topic", "t", *argv])


def test_consumer_start_offsets() -> None:
    assert console_consumer.parse_offset(_consumer_args()) == console_consumer.LATEST
    assert console_consumer.parse_offset(_consumer_args("--from-beginning")) == console_consumer.EARLIEST
    assert console_consumer.parse_offset(_consumer_args("--partition", "0", "--offset", "Earliest")) == -2
    assert console_consumer.parse_offset(_consumer_args("--partition", "0", "--offset", "42")) == 42
    with pytest.raises(UsageError, match="The partition is required when offset is specified."):
        console_consumer.parse_offset(_consumer_args("--offset", "1"))
    with pytest.raises(UsageError, match="from-beginning and offset cannot be specified together"):
        console_consumer.parse_offset(_consumer_args("--partition", "0", "--offset", "1", "--from-beginning"))
    with pytest.raises(UsageError, match="The provided offset value '-3' is incorrect"):
        console_consumer.parse_offset(_consumer_args("--partition", "0", "--offset", "-3"))


def test_consumer_group_options_are_checked_as_kafka_does(capsys) -> None:
    assert console_consumer.main(["--bootstrap-server", "b:1", "--topic", "t", "--group", "g", "--partition", "0"]) == 1
    assert "Options group and partition cannot be specified together." in capsys.readouterr().err
    assert console_consumer.main(["--bootstrap-server", "b:1", "--topic", "t", "--group", "g",
                                  "--consumer-property", "group.id=h"]) == 1
    assert "Detected group ids: 'g', 'h'" in capsys.readouterr().err
    assert console_consumer.main(["--bootstrap-server", "b:1", "--topic", "t", "--from-beginning",
                                  "--consumer-property", "auto.offset.reset=latest"]) == 1
    assert "Can't simultaneously specify --from-beginning and 'auto.offset.reset=latest'" in capsys.readouterr().err


def test_formatter_properties_from_either_flag() -> None:
    assert console_consumer.formatter_properties(_consumer_args("--property", "print.key=true")) == {"print.key": "true"}
    with pytest.raises(UsageError, match="cannot be specified together"):
        console_consumer.formatter_properties(_consumer_args("--property", "a=1", "--formatter-property", "b=2"))


def test_get_offsets_times_and_rules() -> None:
    assert [get_offsets.parse_time(t) for t in ("latest", "earliest", "max-timestamp", "-2", "1700000000000")] == [
        -1, -2, -3, -2, 1700000000000,
    ]
    with pytest.raises(ToolError, match="Malformed time argument soon"):
        get_offsets.parse_time("soon")
    parser = get_offsets.build_parser()
    rules = get_offsets.parse_rules(parser.parse_args(["--topic-partitions", "t.*:1-3,u:5,:7-,v"]))
    allowed = [(topic, p) for topic in ("t1", "u", "v", "w") for p in range(9) if any(r.allows(topic, p) for r in rules)]
    assert allowed == [("t1", 1), ("t1", 2), ("t1", 7), ("t1", 8), ("u", 5), ("u", 7), ("u", 8)] + [
        ("v", p) for p in range(9)] + [("w", 7), ("w", 8)]
    rules = get_offsets.parse_rules(parser.parse_args(["--topic", "t", "--partitions", "0,2"]))
    assert [p for p in range(4) if rules[0].allows("t", p)] == [0, 2] and not rules[0].allows("tt", 0)
    with pytest.raises(ToolError, match="--topic-partitions cannot be used with --topic or --partitions"):
        get_offsets.parse_rules(parser.parse_args(["--topic-partitions", "t", "--topic", "t"]))
