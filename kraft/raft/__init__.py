"""The KRaft metadata quorum, which every node runs (a standalone node is a quorum of one).

- ``RaftCore`` (``core.py`` with ``election.py``, ``replication.py``, ``roles.py``,
  ``log.py``, ``messages.py``, ``ready.py``): the KRaft state machine, pure (no trio, socket
  or file), driven by ``tick``/``step`` and emitting ``Ready`` batches. ``kraft.sim`` proves
  it by deterministic simulation.
- Around the core: ``wire.py`` (the core's messages as Kafka's Vote/BeginQuorumEpoch/
  EndQuorumEpoch/Fetch/FetchSnapshot bytes, entries as record batches via ``batches.py``),
  ``disk_log.py`` (the core's log mirrored to ``__cluster_metadata-0``, ``quorum-state`` and
  ``*.checkpoint``), ``driver.py`` (the trio driver: timers, inbox, Ready execution,
  commit-resolving appends) and ``net.py`` (``RaftNetwork``, the driver's transport over TCP
  on the controller listener). The driver and the network are imported by their module
  names, so importing the core never pulls in trio.
"""

from .core import NotLeaderError, RaftCore
from .disk_log import METADATA_PARTITION, DiskLogError, DiskRaftLog
from .log import Entry, FetchValidity, RaftLog, Snapshot, SnapshotId
from .messages import Error, LeaderChange, Message
from .ready import RaftConfig, Ready
from .roles import ElectionState, LocalStateError
from .wire import RaftWire, WireError

__all__ = [
    "METADATA_PARTITION", "DiskLogError", "DiskRaftLog", "ElectionState", "Entry", "Error",
    "FetchValidity", "LeaderChange", "LocalStateError", "Message",
    "NotLeaderError", "RaftConfig", "RaftCore", "RaftLog", "RaftWire", "Ready",
    "Snapshot", "SnapshotId", "WireError",
]
