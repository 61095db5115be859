"""The broker role: Kafka APIs served from the metadata image and the partition logs."""

from . import admin, cluster, controller_apis, data, groups, quorum  # noqa: F401  (registers the handlers)
from .core import Broker
from .replicas import ReplicaManager

__all__ = ["Broker", "ReplicaManager"]
