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


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise ValueError("expected true or false")


def _parse_int(text: str) -> int:
    value = int(text.strip())
    if not -(2**31) <= value <= INT_MAX:
        raise ValueError("out of the int range")
    return value


def _parse_long(text: str) -> int:
    value = int(text.strip())
    if not -(2**63) <= value <= LONG_MAX:
        raise ValueError("out of the long range")
    return value


def _parse_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


PARSERS: dict[str, Callable[[str], Any]] = {
    "int": _parse_int,
    "long": _parse_long,
    "short": _parse_int,
    "double": float,
    "boolean": _parse_bool,
    "string": str.strip,
    "list": _parse_list,
    "password": str,
}


@dataclass(frozen=True, slots=True)
class ConfigDef:
    name: str
    type: str
    default: str | None
    minimum: int | float | None = None
    choices: tuple[str, ...] = ()
    sensitive: bool = False

    def parse(self, text: str) -> Any:
        try:
            value = PARSERS[self.type](text)
        except ValueError as error:
            raise ConfigError(
                f"Invalid value {text} for configuration {self.name}: {error}"
            ) from None
        self.validate(value, text)
        return value

    def validate(self, value: Any, text: str) -> None:
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(
                f"Invalid value {text} for configuration {self.name}:"
                f" Value must be at least {self.minimum}"
            )
        if self.choices:
            items = value if isinstance(value, tuple) else (value,)
            for item in items:
                if item not in self.choices:
                    raise ConfigError(
                        f"Invalid value {text} for configuration {self.name}:"
                        f" String must be one of: {', '.join(self.choices)}"
                    )


def _defs(*items: ConfigDef) -> dict[str, ConfigDef]:
    return {item.name: item for item in items}


C = ConfigDef
COMPRESSION_TYPES = ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")

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
    C("default.replication.factor", "int", "1", minimum=1),
    C("auto.create.topics.enable", "boolean", "true"),
    C("delete.topic.enable", "boolean", "true"),
    C("offsets.topic.replication.factor", "short", "3", minimum=1),
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
    C("log.segment.bytes", "int", "1073741824", minimum=14),
    C("log.roll.hours", "int", "168", minimum=1),
    C("log.roll.ms", "long", None),
    C("log.index.interval.bytes", "int", "4096", minimum=0),
    C("log.index.size.max.bytes", "int", "10485760", minimum=4),
    C("log.flush.interval.messages", "long", str(LONG_MAX), minimum=1),
    C("log.flush.interval.ms", "long", None),
    C("log.flush.scheduler.interval.ms", "long", str(LONG_MAX)),
    C("log.flush.offset.checkpoint.interval.ms", "int", "60000", minimum=0),
    C("log.cleanup.policy", "list", "delete", choices=("delete", "compact")),
    C("log.cleaner.enable", "boolean", "true"),
    C("log.cleaner.delete.retention.ms", "long", "86400000", minimum=0),
    C("log.cleaner.min.cleanable.ratio", "double", "0.5", minimum=0),
    C("log.cleaner.min.compaction.lag.ms", "long", "0", minimum=0),
    C("log.cleaner.max.compaction.lag.ms", "long", str(LONG_MAX), minimum=1),
    C("log.message.timestamp.type", "string", "CreateTime", choices=("CreateTime", "LogAppendTime")),
    C("log.message.timestamp.before.max.ms", "long", str(LONG_MAX), minimum=0),
    C("log.message.timestamp.after.max.ms", "long", "3600000", minimum=0),
    C("log.preallocate", "boolean", "false"),
    C("log.segment.delete.delay.ms", "long", "60000", minimum=0),
    C("message.max.bytes", "int", "1048588", minimum=0),
    C("min.insync.replicas", "int", "1", minimum=1),
    C("compression.type", "string", "producer", choices=COMPRESSION_TYPES),
    C("unclean.leader.election.enable", "boolean", "false"),
    C("replica.lag.time.max.ms", "long", "30000"),
    C("replica.fetch.max.bytes", "int", "1048576", minimum=0),
    C("replica.fetch.wait.max.ms", "int", "500"),
    C("broker.heartbeat.interval.ms", "int", "2000"),
    C("broker.session.timeout.ms", "int", "9000"),
    C("producer.id.expiration.ms", "int", "86400000", minimum=1),
    C("transactional.id.expiration.ms", "int", "604800000", minimum=1),
    C("max.connections", "int", str(INT_MAX), minimum=0),
    C("auto.leader.rebalance.enable", "boolean", "true"),
    C("broker.rack", "string", None),
    C("fetch.max.bytes", "int", "57671680", minimum=0),
    C("request.timeout.ms", "int", "30000"),
)

# Topic config -> (broker synonyms in precedence order, type, default, extra validation).
# The broker synonym's value (possibly converted) is the topic default.
TOPIC_CONFIGS = _defs(
    C("cleanup.policy", "list", "delete", choices=("delete", "compact")),
    C("compression.type", "string", "producer", choices=COMPRESSION_TYPES),
    C("delete.retention.ms", "long", "86400000", minimum=0),
    C("file.delete.delay.ms", "long", "60000", minimum=0),
    C("flush.messages", "long", str(LONG_MAX), minimum=1),
    C("flush.ms", "long", str(LONG_MAX), minimum=0),
    C("index.interval.bytes", "int", "4096", minimum=0),
    C("max.compaction.lag.ms", "long", str(LONG_MAX), minimum=1),
    C("max.message.bytes", "int", "1048588", minimum=0),
    C("message.timestamp.type", "string", "CreateTime", choices=("CreateTime", "LogAppendTime")),
    C("message.timestamp.before.max.ms", "long", str(LONG_MAX), minimum=0),
    C("message.timestamp.after.max.ms", "long", "3600000", minimum=0),
    C("min.cleanable.dirty.ratio", "double", "0.5", minimum=0),
    C("min.compaction.lag.ms", "long", "0", minimum=0),
    C("min.insync.replicas", "int", "1", minimum=1),
    C("preallocate", "boolean", "false"),
    C("retention.bytes", "long", "-1"),
    C("retention.ms", "long", "604800000", minimum=-1),
    C("segment.bytes", "int", "1073741824", minimum=14),
    C("segment.index.bytes", "int", "10485760", minimum=4),
    C("segment.jitter.ms", "long", "0", minimum=0),
    C("segment.ms", "long", "604800000", minimum=1),
    C("unclean.leader.election.enable", "boolean", "false"),
)

TOPIC_SYNONYMS: dict[str, tuple[str, ...]] = {
    "cleanup.policy": ("log.cleanup.policy",),
    "compression.type": ("compression.type",),
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
    if config.node_id < 0:
        raise ConfigError("Missing required configuration node.id which has no default value.")
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
    return config


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


def validate_topic_config(key: str, value: str | None) -> str | None:
    """Raise ConfigError for an unknown key or a bad value; return the normalized text."""
    definition = TOPIC_CONFIGS.get(key)
    if definition is None:
        raise ConfigError(f"Unknown topic config name: {key}")
    if value is None:
        return None
    definition.parse(value)
    return value.strip()


def effective_topic_config(config: ServerConfig | None, overrides: Mapping[str, str]) -> dict[str, str]:
    """Every topic config key with its effective text value."""
    result = {}
    for key in TOPIC_CONFIGS:
        if key in overrides:
            result[key] = overrides[key]
        else:
            result[key] = broker_default_for_topic(config, key)[0]
    return result
