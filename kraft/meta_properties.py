"""``meta.properties`` and the bootstrap metadata that ``kafka-storage format`` writes.

A directory is usable only when it holds a ``meta.properties`` with this node's id and
the same cluster id as every other directory of the node; a node refuses to start
otherwise, naming the directory, because mixing directories of two clusters loses data.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import msgpack

from protocol.uuids import uuid_from_text, uuid_to_text
from storage.fs import REAL_FILE_SYSTEM, write_file_atomically

from .properties import parse_properties

META_PROPERTIES = "meta.properties"
BOOTSTRAP_CHECKPOINT = "bootstrap.checkpoint"
METADATA_VERSION_LEVEL = 25  # the 4.0-IV3 level, the 4.0 release default
BOOTSTRAP_SNAPSHOT = "00000000000000000000-0000000000.checkpoint"


class StorageNotFormatted(Exception):
    """The directory has no usable ``meta.properties``; the message says what to run."""


def random_uuid() -> str:
    """A Kafka-style id: a random UUID as 22 characters of URL-safe base64.

    As Kafka's Uuid.randomUuid does, an id starting with '-' is drawn again, because
    `kafka-storage format -t -abc...` would read it as a flag.
    """
    while True:
        text = uuid_to_text(uuid.uuid4())
        if not text.startswith("-"):
            return text


def valid_cluster_id(text: str) -> bool:
    try:
        uuid_from_text(text)
    except ValueError:
        return False
    return len(text) == 22


@dataclass(frozen=True, slots=True)
class MetaProperties:
    cluster_id: str
    node_id: int
    directory_id: str
    version: int = 1

    def render(self) -> str:
        return ("#\n#" + " kraft storage format\n"
                f"cluster.id={self.cluster_id}\ndirectory.id={self.directory_id}\n"
                f"node.id={self.node_id}\nversion={self.version}\n")


def read_meta_properties(directory: str) -> MetaProperties | None:
    path = os.path.join(directory, META_PROPERTIES)
    try:
        with open(path, encoding="utf-8") as handle:
            values = parse_properties(handle.read())
    except FileNotFoundError:
        return None
    try:
        return MetaProperties(values["cluster.id"], int(values["node.id"]),
                              values.get("directory.id", ""), int(values.get("version", "1")))
    except (KeyError, ValueError) as error:
        raise StorageNotFormatted(f"{path} is malformed: {error!r}") from None


def write_meta_properties(directory: str, meta: MetaProperties) -> None:
    os.makedirs(directory, exist_ok=True)
    write_file_atomically(REAL_FILE_SYSTEM, os.path.join(directory, META_PROPERTIES),
                          meta.render().encode())


def check_formatted(directories: list[str], node_id: int) -> str:
    """The cluster id shared by every directory, or StorageNotFormatted explaining why not."""
    cluster_ids = set()
    for directory in directories:
        meta = read_meta_properties(directory)
        if meta is None:
            raise StorageNotFormatted(
                f"No `meta.properties` found in {directory} (have you run `kafka-storage`"
                " to format the directory?)")
        if meta.node_id != node_id:
            raise StorageNotFormatted(
                f"Stored node id {meta.node_id} doesn't match previous node id {node_id} in"
                f" {directory}. If you moved your data, make sure your configured node id"
                " matches. If you intend to create a new node, you should remove all data in"
                " your data directories.")
        cluster_ids.add(meta.cluster_id)
    if len(cluster_ids) > 1:
        raise StorageNotFormatted(
            f"Invalid cluster.id: the directories {', '.join(directories)} belong to different"
            f" clusters {sorted(cluster_ids)}")
    return cluster_ids.pop()


def write_bootstrap(directory: str, metadata_version: int = METADATA_VERSION_LEVEL) -> None:
    """The features the first controller writes to an empty metadata log."""
    payload = msgpack.packb({"features": {"metadata.version": metadata_version}})
    write_file_atomically(REAL_FILE_SYSTEM, os.path.join(directory, BOOTSTRAP_CHECKPOINT), payload)


def read_bootstrap(directory: str) -> dict[str, int]:
    path = os.path.join(directory, BOOTSTRAP_CHECKPOINT)
    try:
        with open(path, "rb") as handle:
            return dict(msgpack.unpackb(handle.read())["features"])
    except FileNotFoundError:
        return {"metadata.version": METADATA_VERSION_LEVEL}
    except (ValueError, KeyError, TypeError, msgpack.UnpackException) as error:
        raise StorageNotFormatted(f"{path} is unreadable: {error!r}") from None


def write_standalone_voters(metadata_dir: str, node_id: int, directory_id: str,
                            endpoints: list[tuple[str, str, int]]) -> None:
    """The bootstrap snapshot of a dynamic quorum whose only voter is this node."""
    directory = os.path.join(metadata_dir, "__cluster_metadata-0")
    os.makedirs(directory, exist_ok=True)
    payload = msgpack.packb({"voters": [[node_id, directory_id, [list(e) for e in endpoints]]]})
    write_file_atomically(REAL_FILE_SYSTEM, os.path.join(directory, BOOTSTRAP_SNAPSHOT), payload)


def read_standalone_voters(metadata_dir: str) -> list[int] | None:
    path = os.path.join(metadata_dir, "__cluster_metadata-0", BOOTSTRAP_SNAPSHOT)
    try:
        with open(path, "rb") as handle:
            return [int(v[0]) for v in msgpack.unpackb(handle.read())["voters"]]
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, IndexError, msgpack.UnpackException) as error:
        raise StorageNotFormatted(f"{path} is unreadable: {error!r}") from None
