"""The KRaft controller: pure record logic (``control``, Kafka's Replication/Configuration/
ProducerId ControlManagers; ``cluster_control``, its ClusterControlManager and heartbeat rules),
the active controller's runtime on the quorum leader (``quorum_controller``, Kafka's
QuorumController) and the channel every broker reaches it by (``channel``, Kafka's
NodeToControllerChannelManager). Imports kraft.config, kraft.metadata and kraft.raft; the
pure modules import no trio, socket or file I/O, so only they are re-exported here and the
runtime modules are imported by their module names."""

from .cluster_control import BrokerLifecycle, HeartbeatAnswer
from .control import (
    INTERNAL_TOPICS, PREFERRED_ELECTION, UNCLEAN_ELECTION, ConfigChange, ControllerError, ControllerLogic, IsrRequest,
    IsrResult, NewTopic, TopicResult, alter_partition, elect_leaders, place_replicas,
)

__all__ = [
    "INTERNAL_TOPICS", "BrokerLifecycle", "ConfigChange", "ControllerError", "ControllerLogic", "HeartbeatAnswer",
    "IsrRequest", "IsrResult", "NewTopic", "PREFERRED_ELECTION", "TopicResult", "UNCLEAN_ELECTION", "alter_partition",
    "elect_leaders", "place_replicas",
]
