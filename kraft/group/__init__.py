"""The classic group coordinator, its state in ``__consumer_offsets``."""

from .coordinator import CoordinatorBase, JoinResult
from .group import Group, GroupState, Member
from .membership import MembershipMixin
from .offsets import OffsetsMixin
from .records import OFFSETS_TOPIC, partition_for


class GroupCoordinator(MembershipMixin, OffsetsMixin, CoordinatorBase):
    """Membership (join/sync/heartbeat/leave) and offsets over one shared state."""


__all__ = ["GroupCoordinator", "Group", "GroupState", "JoinResult", "Member", "OFFSETS_TOPIC", "partition_for"]
