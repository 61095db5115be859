"""Per-topic log configuration, named after Kafka's topic configs (``segment.bytes`` ->
``segment_bytes``) with Kafka's defaults, so ``kafka-configs`` values map one to one."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from storage.errors import InvalidConfigurationError

LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1
MEBIBYTE = 1024 * 1024
GIBIBYTE = 1024 * MEBIBYTE
DAY_MS = 24 * 60 * 60 * 1000

TIMESTAMP_TYPES = ("CreateTime", "LogAppendTime")
CLEANUP_POLICIES = ("delete", "compact", "compact,delete", "delete,compact")
# The smallest segment the engine can run with (a batch header). Kafka's configs refuse less
# than 1 MiB (kraft.config); tests reach smaller ones through internal.segment.bytes.
SEGMENT_BYTES_MIN = 14
INDEX_ENTRY_BYTES_MIN = 12


@dataclass(frozen=True, slots=True)
class LogConfig:
    segment_bytes: int = GIBIBYTE
    segment_ms: int = 7 * DAY_MS
    index_interval_bytes: int = 4096
    segment_index_bytes: int = 10 * MEBIBYTE
    retention_ms: int = 7 * DAY_MS
    retention_bytes: int = -1
    flush_messages: int = LONG_MAX
    flush_ms: int = LONG_MAX
    message_timestamp_type: str = "CreateTime"
    max_message_bytes: int = 1048588
    cleanup_policy: str = "delete"
    delete_retention_ms: int = DAY_MS
    min_cleanable_dirty_ratio: float = 0.5
    min_compaction_lag_ms: int = 0
    max_compaction_lag_ms: int = LONG_MAX

    def __post_init__(self) -> None:
        _check_range("segment.bytes", self.segment_bytes, SEGMENT_BYTES_MIN, INT_MAX)
        _check_range("segment.ms", self.segment_ms, 1, LONG_MAX)
        _check_range("index.interval.bytes", self.index_interval_bytes, 0, INT_MAX)
        _check_range("segment.index.bytes", self.segment_index_bytes, INDEX_ENTRY_BYTES_MIN, INT_MAX)
        _check_range("retention.ms", self.retention_ms, -1, LONG_MAX)
        _check_range("retention.bytes", self.retention_bytes, -1, LONG_MAX)
        _check_range("flush.messages", self.flush_messages, 1, LONG_MAX)
        _check_range("flush.ms", self.flush_ms, 0, LONG_MAX)
        _check_range("max.message.bytes", self.max_message_bytes, 0, INT_MAX)
        _check_choice("message.timestamp.type", self.message_timestamp_type, TIMESTAMP_TYPES)
        _check_choice("cleanup.policy", self.cleanup_policy, CLEANUP_POLICIES)
        _check_range("delete.retention.ms", self.delete_retention_ms, 0, LONG_MAX)
        _check_range("min.compaction.lag.ms", self.min_compaction_lag_ms, 0, LONG_MAX)
        _check_range("max.compaction.lag.ms", self.max_compaction_lag_ms, 1, LONG_MAX)
        ratio = self.min_cleanable_dirty_ratio
        if not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
            raise InvalidConfigurationError(f"min.cleanable.dirty.ratio={ratio!r} is outside [0, 1]")

    @property
    def uses_log_append_time(self) -> bool:
        return self.message_timestamp_type == "LogAppendTime"

    @property
    def deletes(self) -> bool:
        """cleanup.policy includes delete: retention.ms and retention.bytes apply."""
        return "delete" in self.cleanup_policy.split(",")

    @property
    def compacts(self) -> bool:
        """cleanup.policy includes compact: the cleaner keeps the latest record per key."""
        return "compact" in self.cleanup_policy.split(",")

    @classmethod
    def from_topic_configs(cls, configs: Mapping[str, str], defaults: LogConfig | None = None) -> LogConfig:
        """Overlay Kafka topic configs (string values, as in CreateTopics) on ``defaults``.
        Keys that are not log configs (``min.insync.replicas``, ...) belong to other layers and
        are ignored here; a bad value raises InvalidConfigurationError naming the key."""
        changes = {}
        configs = dict(configs)
        internal = (configs.pop("internal.segment.bytes", None) or "").strip()
        if internal:  # Kafka's internal override of segment.bytes, below its 1 MiB floor
            configs["segment.bytes"] = internal
        for key, text in configs.items():
            field = _KEY_TO_FIELD.get(key)
            if field is None:
                continue
            parse = _PARSERS.get(field, _parse_int)
            try:
                changes[field] = parse(text)
            except ValueError as error:
                raise InvalidConfigurationError(f"{key}={text!r}: {error}") from error
        return dataclasses.replace(defaults or cls(), **changes)


def _parse_int(text: str) -> int:
    return int(text.strip())


def _parse_policy(text: str) -> str:
    return ",".join(part.strip() for part in text.split(","))


_KEY_TO_FIELD: dict[str, str] = {
    field.name.replace("_", "."): field.name for field in dataclasses.fields(LogConfig)
}
_PARSERS: dict[str, Callable[[str], object]] = {
    "message_timestamp_type": str.strip,
    "cleanup_policy": _parse_policy,
    "min_cleanable_dirty_ratio": float,
}


def _check_range(key: str, value: int, low: int, high: int) -> None:
    if not isinstance(value, int) or not low <= value <= high:
        raise InvalidConfigurationError(f"{key}={value!r} is outside [{low}, {high}]")


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidConfigurationError(f"{key}={value!r}; expected one of {', '.join(choices)}")
