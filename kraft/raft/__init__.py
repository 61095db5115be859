"""The KRaft metadata quorum.

Two things live here side by side for now:
- ``SingleVoterRaft`` (``local.py``), the quorum of one the running node uses: this node is
  leader of every epoch it starts, and an entry is committed once it is fsynced here.
- ``RaftCore`` (``core.py`` with ``election.py``, ``replication.py``, ``roles.py``,
  ``log.py``, ``messages.py``, ``ready.py``): the multi-voter KRaft state machine, pure
  (no trio, socket or file), driven by ``tick``/``step`` and emitting ``Ready`` batches.
  ``kraft.sim`` proves it by deterministic simulation; a trio driver will wire it into
  the node.
"""

from .core import NotLeaderError, RaftCore
from .local import METADATA_PARTITION, MetadataLogError, SingleVoterRaft
from .log import Entry, FetchValidity, RaftLog, Snapshot, SnapshotId
from .messages import Error, LeaderChange, Message
from .ready import RaftConfig, Ready
from .roles import ElectionState, LocalStateError

__all__ = [
    "METADATA_PARTITION", "ElectionState", "Entry", "Error", "FetchValidity", "LeaderChange",
    "LocalStateError", "Message", "MetadataLogError", "NotLeaderError", "RaftConfig", "RaftCore",
    "RaftLog", "Ready", "SingleVoterRaft", "Snapshot", "SnapshotId",
]
