"""The KRaft metadata quorum.

For now the quorum has one voter: this node is leader of every epoch it starts, and an
entry is committed once it is fsynced on this node (a majority of one). The interface
the controller uses (``append`` returning committed offsets, ``replay`` from the
committed log) is the one a multi-voter Raft will keep.
"""

from .local import METADATA_PARTITION, MetadataLogError, SingleVoterRaft

__all__ = ["METADATA_PARTITION", "MetadataLogError", "SingleVoterRaft"]
