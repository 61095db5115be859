"""A kraft process, as Kafka's kafka.server and kafka.network: the node (``node``, Kafka's
KafkaRaftServer) and the quorum member it runs (``quorum_member``: the Raft driver, the broker
half's registration and heartbeats, the controller duties), the listeners (``network``, Kafka's
SocketServer), DescribeQuorum's facts (``quorum_info``) and the process life cycle
(``process``: config, logging, format, signals, run). May import every other kraft package,
protocol and storage; only the life cycle is re-exported, so importing it does not start trio."""

from .process import (
    ServerError, configure_logging, debugging, format_storage, read_server_config, report_unexpected_error,
    run_default_node, run_node, serve,
)

__all__ = [
    "ServerError", "configure_logging", "debugging", "format_storage", "read_server_config",
    "report_unexpected_error", "run_default_node", "run_node", "serve",
]
