"""Scheduling: cluster snapshots in, decisions out, with no I/O."""

from neurfly.core.scheduling._validate import Invariant, SchedulingInvariantError
from neurfly.core.scheduling.base import SchedulingPolicy, policies
from neurfly.core.scheduling.snapshot import (
    Decision,
    DecisionKind,
    Node,
    PendingTrial,
    PolicySettings,
    Pool,
    Preempt,
    PriorityClass,
    Reject,
    Reservation,
    Reserve,
    RunningAttempt,
    SearchLimit,
    Snapshot,
    Start,
    Team,
)

__all__ = [
    "Decision",
    "DecisionKind",
    "Invariant",
    "Node",
    "PendingTrial",
    "PolicySettings",
    "Pool",
    "Preempt",
    "PriorityClass",
    "Reject",
    "Reservation",
    "Reserve",
    "RunningAttempt",
    "SchedulingInvariantError",
    "SchedulingPolicy",
    "SearchLimit",
    "Snapshot",
    "Start",
    "Team",
    "policies",
]
