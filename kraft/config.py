"""Kafka's ``server.properties`` keys, their defaults and validation, and topic configs.

Rules:
- A key kraft knows is parsed to its type and validated; an invalid value fails at
  start with ``ConfigError`` naming the key, as Kafka's ``ConfigException`` does.
- A key kraft does not know is kept and named in one warning at start, as Kafka warns
  about unused configurations, so typos are visible without refusing to start.
- Topic configs have a broker-level synonym (``retention.ms`` <- ``log.retention.ms``
  <- ``log.retention.minutes`` <- ``log.retention.hours``); ``DescribeConfigs`` reports
  where each value came from, so the definitions keep that chain as data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

INT_MAX = 2**31 - 1
LONG_MAX = 2**63 - 1


class ConfigError(ValueError):
    """A configuration value that Kafka would refuse; the message names the key."""


# Kafka's ConfigDef parses a value after trimming it: integers by Integer/Long.parseLong (ASCII
# digits with an optional sign, nothing else), booleans case-insensitively, lists split at commas.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_INTEGER_BITS = {"short": 16, "int": 32, "long": 64}


class _NotParsable(ValueError):
    """The text is not a value of the config's type; the message is Kafka's."""


def _parse_integer(kind: str) -> Callable[[str], int]:
    bits = _INTEGER_BITS[kind]

    def parse(text: str) -> int:
        stripped = text.strip()
        if _INTEGER.fullmatch(stripped):
            value = int(stripped)
            if -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
                return value
        raise _NotParsable(f"Not a number of type {kind.upper()}")

    return parse


def _parse_double(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise _NotParsable("Not a number of type DOUBLE") from None


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise _NotParsable("Expected value to be either true or false")


def _parse_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


PARSERS: dict[str, Callable[[str], Any]] = {
    "int": _parse_integer("int"),
    "long": _parse_integer("long"),
    "short": _parse_integer("short"),
    "double": _parse_double,
    "boolean": _parse_bool,
    "string": str.strip,
    "list": _parse_list,
    "password": str,
}


def java_text(value: Any) -> str:
    """A parsed value as Kafka prints it in a ConfigException (Java's toString)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        if value == int(value) and abs(value) < 1e7:
            return f"{int(value)}.0"
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(value) + "]"
    return str(value)


@dataclass(frozen=True, slots=True)
class ConfigDef:
    """One key as Kafka's ConfigDef declares it: type, default and validator.

    The validator is a range (``minimum``/``maximum``), a set of ``choices`` (for a list,
    each element) or ``check``, a function that returns Kafka's message for a bad value.
    ``choices`` on a list follows Kafka 4.2's ValidList: no empty elements, duplicates
    dropped.
    """

    name: str
    type: str
    default: str | None
    minimum: int | float | None = None
    choices: tuple[str, ...] = ()
    sensitive: bool = False
    maximum: int | float | None = None
    check: Callable[[Any], str | None] | None = None

    def parse(self, text: str) -> Any:
        if self.type == "list" and self.choices:
            return self._parse_choice_list(text)
        try:
            value = PARSERS[self.type](text)
        except _NotParsable as error:
            raise ConfigError(f"Invalid value {text} for configuration {self.name}: {error}") from None
        self.validate(value)
        return value

    def validate(self, value: Any) -> None:
        problem = None
        if self.minimum is not None and not value >= self.minimum:
            problem = f"Value must be at least {self.minimum}"
        elif self.maximum is not None and not value <= self.maximum:
            problem = f"Value must be no more than {self.maximum}"
        elif self.choices and value not in self.choices:
            problem = f"String must be one of: {', '.join(self.choices)}"
        elif self.check is not None:
            problem = self.check(value)
        if problem is not None:
            raise ConfigError(f"Invalid value {java_text(value)} for configuration {self.name}: {problem}")

    def _parse_choice_list(self, text: str) -> tuple[str, ...]:
        if not text.strip():
            return ()
        items = [item.strip() for item in text.split(",")]
        if "" in items:
            raise ConfigError(f"Configuration '{self.name}' values must not be empty.")
        for item in items:
            if item not in self.choices:
                raise ConfigError(f"Invalid value {item} for configuration {self.name}:"
                                  f" String must be one of: {', '.join(self.choices)}")
        return tuple(dict.fromkeys(items))


def _gzip_level(value: int) -> str | None:
    return None if value == -1 or 1 <= value <= 9 else "Value must be between 1 and 9 or equal to -1"


_THROTTLED_REPLICA = re.compile(r"([0-9]+:[0-9]+)?")


def _throttled_replicas(name: str) -> Callable[[tuple[str, ...]], str | None]:
    def check(replicas: tuple[str, ...]) -> str | None:
        if replicas == ("*",) or all(_THROTTLED_REPLICA.fullmatch(entry) for entry in replicas):
            return None
        return (f"{name} must be the literal '*' or a list of replicas in the following format:"
                " [partitionId]:[brokerId],[partitionId]:[brokerId],...")

    return check


def _defs(*items: ConfigDef) -> dict[str, ConfigDef]:
    return {item.name: item for item in items}


C = ConfigDef
COMPRESSION_TYPES = ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")
CLEANUP_POLICIES = ("compact", "delete")
TIMESTAMP_TYPES = ("CreateTime", "LogAppendTime")
SEGMENT_BYTES_MIN = 1024 * 1024  # Kafka 4.1+ for segment.bytes and log.segment.bytes

BROKER_CONFIGS = _defs(
    C("process.roles", "list", "", choices=("broker", "controller")),
    C("node.id", "int", "-1"),
    C("broker.id", "int", "-1"),
    C("controller.quorum.voters", "list", ""),
    C("controller.quorum.bootstrap.servers", "list", ""),
    C("controller.listener.names", "list", ""),
    C("controller.quorum.election.timeout.ms", "int", "1000", minimum=0),
    C("controller.quorum.fetch.timeout.ms", "int", "2000", minimum=0),
    C("controller.quorum.election.backoff.max.ms", "int", "1000", minimum=0),
    C("controller.quorum.request.timeout.ms", "int", "2000", minimum=0),
    C("controller.quorum.append.linger.ms", "int", "25", minimum=0),
    C("listeners", "list", "PLAINTEXT://:9092"),
    C("advertised.listeners", "list", None),
    C("listener.security.protocol.map", "list",
      "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"),
    C("inter.broker.listener.name", "string", None),
    C("security.inter.broker.protocol", "string", "PLAINTEXT"),
    C("log.dirs", "list", None),
    C("log.dir", "string", "/tmp/kafka-logs"),
    C("metadata.log.dir", "string", None),
    C("metadata.log.segment.bytes", "int", "1073741824", minimum=12),
    C("metadata.log.max.record.bytes.between.snapshots", "long", "20971520", minimum=1),
    C("metadata.log.max.snapshot.interval.ms", "long", "3600000", minimum=0),
    C("metadata.max.retention.bytes", "long", "104857600"),
    C("metadata.max.retention.ms", "long", "604800000"),
    C("num.network.threads", "int", "3", minimum=1),
    C("num.io.threads", "int", "8", minimum=1),
    C("num.recovery.threads.per.data.dir", "int", "2", minimum=1),
    C("num.replica.fetchers", "int", "1", minimum=1),
    C("background.threads", "int", "10", minimum=1),
    C("socket.send.buffer.bytes", "int", "102400"),
    C("socket.receive.buffer.bytes", "int", "102400"),
    C("socket.request.max.bytes", "int", "104857600", minimum=1),
    C("queued.max.requests", "int", "500", minimum=1),
    C("connections.max.idle.ms", "long", "600000"),
    C("num.partitions", "int", "1", minimum=1),
    C("default.replication.factor", "int", "1"),  # no validator in Kafka
    C("auto.create.topics.enable", "boolean", "true"),
    C("delete.topic.enable", "boolean", "true"),
    C("offsets.topic.replication.factor", "short", "3", minimum=1),
    C("offsets.commit.timeout.ms", "int", "5000", minimum=1),
    C("offsets.topic.num.partitions", "int", "50", minimum=1),
    C("offsets.retention.minutes", "int", "10080", minimum=1),
    C("offsets.retention.check.interval.ms", "long", "600000", minimum=1),
    C("offset.metadata.max.bytes", "int", "4096", minimum=0),
    C("group.min.session.timeout.ms", "int", "6000"),
    C("group.max.session.timeout.ms", "int", "1800000"),
    C("group.max.size", "int", str(INT_MAX), minimum=1),
    C("transaction.state.log.replication.factor", "short", "3", minimum=1),
    C("transaction.state.log.min.isr", "int", "2", minimum=1),
    C("share.coordinator.state.topic.replication.factor", "short", "3", minimum=1),
    C("share.coordinator.state.topic.min.isr", "int", "2", minimum=1),
    C("group.initial.rebalance.delay.ms", "int", "3000", minimum=0),
    C("log.retention.hours", "int", "168"),
    C("log.retention.minutes", "int", None),
    C("log.retention.ms", "long", None),
    C("log.retention.bytes", "long", "-1"),
    C("log.retention.check.interval.ms", "long", "300000", minimum=1),
    C("log.segment.bytes", "int", "1073741824", minimum=SEGMENT_BYTES_MIN),
    C("log.roll.hours", "int", "168", minimum=1),
    C("log.roll.ms", "long", None),
    C("log.index.interval.bytes", "int", "4096", minimum=0),
    C("log.index.size.max.bytes", "int", "10485760", minimum=4),
    C("log.flush.interval.messages", "long", str(LONG_MAX), minimum=1),
    C("log.flush.interval.ms", "long", None),
    C("log.flush.scheduler.interval.ms", "long", str(LONG_MAX)),
    C("log.flush.offset.checkpoint.interval.ms", "int", "60000", minimum=0),
    C("log.cleanup.policy", "list", "delete", choices=CLEANUP_POLICIES),
    C("log.cleaner.enable", "boolean", "true"),
    C("log.cleaner.delete.retention.ms", "long", "86400000", minimum=0),
    C("log.cleaner.min.cleanable.ratio", "double", "0.5", minimum=0, maximum=1),
    C("log.cleaner.min.compaction.lag.ms", "long", "0", minimum=0),
    C("log.cleaner.max.compaction.lag.ms", "long", str(LONG_MAX), minimum=1),
    C("log.message.timestamp.type", "string", "CreateTime", choices=TIMESTAMP_TYPES),
    C("log.message.timestamp.before.max.ms", "long", str(LONG_MAX), minimum=0),
    C("log.message.timestamp.after.max.ms", "long", "3600000", minimum=0),
    C("log.preallocate", "boolean", "false"),
    C("log.segment.delete.delay.ms", "long", "60000", minimum=0),
    C("message.max.bytes", "int", "1048588", minimum=0),
    C("min.insync.replicas", "int", "1", minimum=1),
    C("compression.type", "string", "producer", choices=COMPRESSION_TYPES),
    C("compression.gzip.level", "int", "-1", check=_gzip_level),
    C("compression.lz4.level", "int", "9", minimum=1, maximum=17),
    C("compression.zstd.level", "int", "3", minimum=-131072, maximum=22),
    C("log.local.retention.ms", "long", "-2", minimum=-2),
    C("log.local.retention.bytes", "long", "-2", minimum=-2),
    C("remote.log.storage.system.enable", "boolean", "false"),
    C("unclean.leader.election.enable", "boolean", "false"),
    C("replica.lag.time.max.ms", "long", "30000"),
    C("replica.fetch.max.bytes", "int", "1048576", minimum=0),
    C("replica.fetch.wait.max.ms", "int", "500"),
    C("replica.fetch.min.bytes", "int", "1"),
    C("replica.fetch.response.max.bytes", "int", "10485760", minimum=0),
    C("replica.fetch.backoff.ms", "int", "1000", minimum=0),
    C("replica.socket.timeout.ms", "int", "30000"),
    C("broker.heartbeat.interval.ms", "int", "2000"),
    C("broker.session.timeout.ms", "int", "9000"),
    C("producer.id.expiration.ms", "int", "86400000", minimum=1),
    C("transactional.id.expiration.ms", "int", "604800000", minimum=1),
    C("max.connections", "int", str(INT_MAX), minimum=0),
    C("auto.leader.rebalance.enable", "boolean", "true"),
    C("leader.imbalance.check.interval.seconds", "long", "300", minimum=1),
    C("leader.imbalance.per.broker.percentage", "int", "10"),
    C("broker.rack", "string", None),
    C("fetch.max.bytes", "int", "57671680", minimum=0),
    C("request.timeout.ms", "int", "30000"),
)

# Every topic config of Kafka 4.x's LogConfig, with its validator; the broker synonym's value
# (possibly converted) is the topic default. ``internal.segment.bytes`` is Kafka's internal,
# unvalidated override of segment.bytes (for tests that need small segments).
TOPIC_CONFIGS = _defs(
    C("cleanup.policy", "list", "delete", choices=CLEANUP_POLICIES),
    C("compression.type", "string", "producer", choices=COMPRESSION_TYPES),
    C("compression.gzip.level", "int", "-1", check=_gzip_level),
    C("compression.lz4.level", "int", "9", minimum=1, maximum=17),
    C("compression.zstd.level", "int", "3", minimum=-131072, maximum=22),
    C("delete.retention.ms", "long", "86400000", minimum=0),
    C("file.delete.delay.ms", "long", "60000", minimum=0),
    C("flush.messages", "long", str(LONG_MAX), minimum=1),
    C("flush.ms", "long", str(LONG_MAX), minimum=0),
    C("follower.replication.throttled.replicas", "list", "",
      check=_throttled_replicas("follower.replication.throttled.replicas")),
    C("index.interval.bytes", "int", "4096", minimum=0),
    C("leader.replication.throttled.replicas", "list", "",
      check=_throttled_replicas("leader.replication.throttled.replicas")),
    C("local.retention.bytes", "long", "-2", minimum=-2),
    C("local.retention.ms", "long", "-2", minimum=-2),
    C("max.compaction.lag.ms", "long", str(LONG_MAX), minimum=1),
    C("max.message.bytes", "int", "1048588", minimum=0),
    C("message.timestamp.after.max.ms", "long", "3600000", minimum=0),
    C("message.timestamp.before.max.ms", "long", str(LONG_MAX), minimum=0),
    C("message.timestamp.type", "string", "CreateTime", choices=TIMESTAMP_TYPES),
    C("min.cleanable.dirty.ratio", "double", "0.5", minimum=0, maximum=1),
    C("min.compaction.lag.ms", "long", "0", minimum=0),
    C("min.insync.replicas", "int", "1", minimum=1),
    C("preallocate", "boolean", "false"),
    C("remote.log.copy.disable", "boolean", "false"),
    C("remote.log.delete.on.disable", "boolean", "false"),
    C("remote.storage.enable", "boolean", "false"),
    C("retention.bytes", "long", "-1"),
    C("retention.ms", "long", "604800000", minimum=-1),
    C("segment.bytes", "int", "1073741824", minimum=SEGMENT_BYTES_MIN),
    C("segment.index.bytes", "int", "10485760", minimum=4),
    C("segment.jitter.ms", "long", "0", minimum=0),
    C("segment.ms", "long", "604800000", minimum=1),
    C("unclean.leader.election.enable", "boolean", "false"),
)
INTERNAL_TOPIC_CONFIGS = _defs(C("internal.segment.bytes", "int", None))

TOPIC_SYNONYMS: dict[str, tuple[str, ...]] = {
    "cleanup.policy": ("log.cleanup.policy",),
    "compression.type": ("compression.type",),
    "compression.gzip.level": ("compression.gzip.level",),
    "compression.lz4.level": ("compression.lz4.level",),
    "compression.zstd.level": ("compression.zstd.level",),
    "local.retention.bytes": ("log.local.retention.bytes",),
    "local.retention.ms": ("log.local.retention.ms",),
    "delete.retention.ms": ("log.cleaner.delete.retention.ms",),
    "file.delete.delay.ms": ("log.segment.delete.delay.ms",),
    "flush.messages": ("log.flush.interval.messages",),
    "flush.ms": ("log.flush.interval.ms", "log.flush.scheduler.interval.ms"),
    "index.interval.bytes": ("log.index.interval.bytes",),
    "max.compaction.lag.ms": ("log.cleaner.max.compaction.lag.ms",),
    "max.message.bytes": ("message.max.bytes",),
    "message.timestamp.type": ("log.message.timestamp.type",),
    "message.timestamp.before.max.ms": ("log.message.timestamp.before.max.ms",),
    "message.timestamp.after.max.ms": ("log.message.timestamp.after.max.ms",),
    "min.cleanable.dirty.ratio": ("log.cleaner.min.cleanable.ratio",),
    "min.compaction.lag.ms": ("log.cleaner.min.compaction.lag.ms",),
    "min.insync.replicas": ("min.insync.replicas",),
    "preallocate": ("log.preallocate",),
    "retention.bytes": ("log.retention.bytes",),
    "retention.ms": ("log.retention.ms", "log.retention.minutes", "log.retention.hours"),
    "segment.bytes": ("log.segment.bytes",),
    "segment.index.bytes": ("log.index.size.max.bytes",),
    "segment.ms": ("log.roll.ms", "log.roll.hours"),
    "unclean.leader.election.enable": ("unclean.leader.election.enable",),
}

_UNIT_MS = {"log.retention.minutes": 60_000, "log.retention.hours": 3_600_000, "log.roll.hours": 3_600_000}
LISTENER_PATTERN = re.compile(r"^(?P<name>[A-Za-z0-9_]+)://(?P<host>\[[^\]]*\]|[^:]*):(?P<port>\d+)$")


@dataclass(frozen=True, slots=True)
class Listener:
    name: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.name}://{self.host}:{self.port}"


def parse_listener(text: str, key: str = "listeners") -> Listener:
    match = LISTENER_PATTERN.match(text.strip())
    if match is None:
        raise ConfigError(f"Invalid value {text} for configuration {key}: expected NAME://host:port")
    port = int(match["port"])
    if port > 65535:
        raise ConfigError(f"Invalid value {text} for configuration {key}: port {port} out of range")
    return Listener(match["name"].upper(), match["host"].strip("[]"), port)


@dataclass(frozen=True, slots=True)
class Voter:
    node_id: int
    host: str
    port: int


def parse_voters(entries: tuple[str, ...]) -> tuple[Voter, ...]:
    voters = []
    for entry in entries:
        match = re.match(r"^(\d+)@(\[[^\]]*\]|[^:]+):(\d+)$", entry)
        if match is None:
            raise ConfigError(
                f"Invalid value {entry} for configuration controller.quorum.voters:"
                " expected id@host:port"
            )
        voters.append(Voter(int(match[1]), match[2].strip("[]"), int(match[3])))
    return tuple(voters)


@dataclass(frozen=True)
class ServerConfig:
    """Validated broker/controller configuration; ``values`` holds parsed known keys."""

    values: Mapping[str, Any]
    originals: Mapping[str, str]
    unknown_keys: tuple[str, ...] = field(default=())

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        value = self.values.get(key)
        return default if value is None else value

    @property
    def node_id(self) -> int:
        return self.values["node.id"]

    @property
    def roles(self) -> tuple[str, ...]:
        return self.values["process.roles"]

    @property
    def log_dirs(self) -> tuple[str, ...]:
        return self.values["log.dirs"] or (self.values["log.dir"],)

    @property
    def metadata_log_dir(self) -> str:
        return self.values["metadata.log.dir"] or self.log_dirs[0]

    @property
    def listeners(self) -> tuple[Listener, ...]:
        return tuple(parse_listener(item) for item in self.values["listeners"])

    @property
    def controller_listener_names(self) -> tuple[str, ...]:
        return tuple(name.upper() for name in self.values["controller.listener.names"])

    @property
    def voters(self) -> tuple[Voter, ...]:
        return parse_voters(self.values["controller.quorum.voters"])


def _validate_roles(config: ServerConfig) -> None:
    roles = config.roles
    if not roles:
        raise ConfigError(
            "Missing required configuration process.roles: kraft runs in KRaft mode only"
            " (broker, controller or broker,controller)"
        )
    if "node.id" not in config.originals:
        raise ConfigError('Missing required configuration "node.id" which has no default value.')
    if config.node_id < 0:
        raise ConfigError(f"Invalid value {config.node_id} for configuration node.id: Value must be at least 0")
    names = {listener.name for listener in config.listeners}
    if len(names) != len(config.listeners):
        raise ConfigError("Invalid value for configuration listeners: each listener must have a distinct name")
    controller_names = config.controller_listener_names
    if not controller_names:
        raise ConfigError("controller.listener.names must contain at least one value")
    if "controller" in roles and controller_names[0] not in names:
        raise ConfigError(
            f"controller.listener.names must contain at least one value appearing in the"
            f" 'listeners' configuration when running the KRaft controller role:"
            f" {controller_names[0]} is not in listeners"
        )
    if "broker" in roles and not names - set(controller_names):
        raise ConfigError("listeners must contain a listener that is not a controller listener for the broker role")
    if not config.values["controller.quorum.voters"] and not config.values["controller.quorum.bootstrap.servers"]:
        raise ConfigError(
            "If using process.roles, either controller.quorum.bootstrap.servers must contain"
            " the set of bootstrap controllers or controller.quorum.voters must contain a"
            " parseable set of controllers."
        )
    config.voters  # validates the voter syntax


def parse_server_config(properties: Mapping[str, str]) -> ServerConfig:
    """Validate ``properties`` the way Kafka's KafkaConfig does; raise ConfigError."""
    values: dict[str, Any] = {}
    for name, definition in BROKER_CONFIGS.items():
        text = properties.get(name, definition.default)
        values[name] = None if text is None else definition.parse(text)
    for key in ("log.dirs", "listeners"):
        if values.get(key) == ():
            raise ConfigError(f"Invalid value for configuration {key}: must not be empty")
    unknown = tuple(sorted(key for key in properties if key not in BROKER_CONFIGS))
    config = ServerConfig(values=values, originals=dict(properties), unknown_keys=unknown)
    config.listeners  # validates every listener
    _validate_roles(config)
    _validate_log_defaults(config)
    return config


def _validate_log_defaults(config: ServerConfig) -> None:
    """KafkaConfig's requirements across the log.* keys (its messages, from Scala's require)."""
    retention_ms = config.values["log.retention.ms"]
    if retention_ms is None and config.values["log.retention.minutes"] is not None:
        retention_ms = config.values["log.retention.minutes"] * 60_000
    if retention_ms is None:
        retention_ms = config.values["log.retention.hours"] * 3_600_000
    if retention_ms == 0:
        raise ConfigError("requirement failed: log.retention.ms must be unlimited (-1) or, greater than or"
                          " equal to 1")
    roll_ms = config.values["log.roll.ms"]
    if roll_ms is not None and roll_ms < 1:
        raise ConfigError("requirement failed: log.roll.ms must be greater than or equal to 1")
    if config.values["log.cleaner.min.compaction.lag.ms"] > config.values["log.cleaner.max.compaction.lag.ms"]:
        raise ConfigError("conflict topic config setting min.compaction.lag.ms"
                          f" ({config.values['log.cleaner.min.compaction.lag.ms']}) > max.compaction.lag.ms"
                          f" ({config.values['log.cleaner.max.compaction.lag.ms']})")


def broker_default_for_topic(config: ServerConfig | None, topic_key: str) -> tuple[str, str | None]:
    """(value text, broker key it came from or None for the built-in default)."""
    if config is not None:
        for synonym in TOPIC_SYNONYMS.get(topic_key, ()):
            if synonym in config.originals:
                return _convert_synonym(synonym, config.values[synonym]), synonym
    return TOPIC_CONFIGS[topic_key].default or "", None


def _convert_synonym(synonym: str, value: Any) -> str:
    if synonym in _UNIT_MS:
        return str(value * _UNIT_MS[synonym])
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def topic_config_def(key: str) -> ConfigDef | None:
    return TOPIC_CONFIGS.get(key) or INTERNAL_TOPIC_CONFIGS.get(key)


def validate_topic_configs(configs: Mapping[str, str], server: ServerConfig | None = None) -> dict[str, str]:
    """Kafka's ``LogConfig.validate``: every name known, then every value against its
    validator, then the checks across keys on the effective config (the broker's defaults
    under the topic's own values). Raise ConfigError with Kafka's message (INVALID_CONFIG);
    return the values trimmed."""
    for key in configs:
        if topic_config_def(key) is None:
            raise ConfigError(f"Unknown topic config name: {key}")
    trimmed = {}
    for key, text in configs.items():
        topic_config_def(key).parse(text)
        trimmed[key] = text.strip()
    effective = effective_topic_config(server, trimmed)
    min_lag_ms = TOPIC_CONFIGS["min.compaction.lag.ms"].parse(effective["min.compaction.lag.ms"])
    max_lag_ms = TOPIC_CONFIGS["max.compaction.lag.ms"].parse(effective["max.compaction.lag.ms"])
    if min_lag_ms > max_lag_ms:
        raise ConfigError(f"conflict topic config setting min.compaction.lag.ms ({min_lag_ms}) >"
                          f" max.compaction.lag.ms ({max_lag_ms})")
    if TOPIC_CONFIGS["remote.storage.enable"].parse(effective["remote.storage.enable"]):
        # kraft has no tiered storage, so it is as Kafka with remote.log.storage.system.enable=false.
        raise ConfigError("Tiered Storage functionality is disabled in the broker. Topic cannot be"
                          " configured with remote log storage.")
    return trimmed


def effective_topic_config(config: ServerConfig | None, overrides: Mapping[str, str]) -> dict[str, str]:
    """Every topic config key with its effective text value (internal keys only when set)."""
    result = {}
    for key in TOPIC_CONFIGS:
        if key in overrides:
            result[key] = overrides[key]
        else:
            result[key] = broker_default_for_topic(config, key)[0]
    for key in INTERNAL_TOPIC_CONFIGS:
        if key in overrides:
            result[key] = overrides[key]
    return result
