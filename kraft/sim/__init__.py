"""Deterministic simulation of a KRaft quorum: a whole cluster of ``RaftCore`` replicas in
one process, on a virtual clock, with a simulated network and simulated disks, checked
against named invariants after every event. The entries are metadata records decided by the
controller's own record logic, and each node's state machine is its ``MetadataLoader``.
``python -m kraft.sim --help`` replays a run.
"""

from .cluster import Cluster
from .invariants import InvariantChecker, InvariantViolation
from .scenario import Fault, SimParams, SimResult, SimulationFailure, parse_schedule, run

__all__ = ["Cluster", "Fault", "InvariantChecker", "InvariantViolation", "SimParams", "SimResult",
           "SimulationFailure", "parse_schedule", "run"]
