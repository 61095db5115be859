"""Errors the log engine raises, each named for the Kafka error the broker answers with.

Corrupt or invalid *input* records surface as ``protocol.records.CorruptRecordError`` and
``InvalidRecordError`` unchanged; the errors here are about the log itself.
"""

from __future__ import annotations


class StorageError(Exception):
    """The log directory or a file in it cannot be used (KAFKA_STORAGE_ERROR)."""


class OffsetOutOfRangeError(StorageError):
    """A read or a log-start move named an offset outside the log (OFFSET_OUT_OF_RANGE)."""

    def __init__(self, offset: int, log_start_offset: int, log_end_offset: int) -> None:
        super().__init__(
            f"offset {offset} is outside the log range [{log_start_offset}, {log_end_offset}]"
        )
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset


class NonMonotonicOffsetError(StorageError):
    """A follower append carried offsets at or below the log end (a replication bug)."""


class RecordTooLargeError(StorageError):
    """A batch is larger than max.message.bytes (MESSAGE_TOO_LARGE)."""


class InvalidConfigurationError(ValueError):
    """A topic config value cannot be parsed or is out of range (INVALID_CONFIG)."""


class ProducerStateError(StorageError):
    """Base of the idempotent-producer checks; ``kafka_error`` names the error code to answer."""

    kafka_error = "UNKNOWN_SERVER_ERROR"


class InvalidProducerEpochError(ProducerStateError):
    """The batch's producer epoch is older than the one this partition has seen."""

    kafka_error = "INVALID_PRODUCER_EPOCH"


class OutOfOrderSequenceError(ProducerStateError):
    """The batch's first sequence does not follow the producer's last one."""

    kafka_error = "OUT_OF_ORDER_SEQUENCE_NUMBER"
