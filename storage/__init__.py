"""The log engine: segments, indexes, checkpoints, producer state; synchronous, no trio."""

from storage.config import LogConfig
from storage.errors import (
    InvalidConfigurationError,
    InvalidProducerEpochError,
    NonMonotonicOffsetError,
    OffsetOutOfRangeError,
    OutOfOrderSequenceError,
    ProducerStateError,
    RecordTooLargeError,
    StorageError,
)
from storage.fs import REAL_FILE_SYSTEM, File, FileSystem, RealFileSystem
from storage.log import AppendResult, PartitionLog, ReadResult
from storage.manager import LogManager
from storage.partition_metadata import read_partition_metadata, write_partition_metadata

__all__ = [
    "AppendResult", "File", "FileSystem", "InvalidConfigurationError", "InvalidProducerEpochError",
    "LogConfig", "LogManager", "NonMonotonicOffsetError", "OffsetOutOfRangeError",
    "OutOfOrderSequenceError", "PartitionLog", "ProducerStateError", "REAL_FILE_SYSTEM", "ReadResult",
    "RealFileSystem", "RecordTooLargeError", "StorageError", "read_partition_metadata",
    "write_partition_metadata",
]
