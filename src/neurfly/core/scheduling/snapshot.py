"""Inputs and outputs of a scheduling policy: a cluster snapshot and decisions.

All values are immutable. Times are seconds on one clock chosen by the caller
(wall time in the controller, simulated time in the simulator); the policy
never reads a clock itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum


@dataclass(frozen=True, slots=True)
class Pool:
    name: str
    region: str
    hardware: str
    price_per_device_hour: float = 0.0


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    pool: str
    devices: int
    schedulable: bool = True


@dataclass(frozen=True, slots=True)
class PriorityClass:
    name: str
    value: int
    preemptible: bool = True


@dataclass(frozen=True, slots=True)
class Team:
    """A team's entitlement and recent usage.

    ``quota`` maps a pool to nominal devices (missing means 0);
    ``borrowing_limit`` maps a pool to devices beyond the quota (missing means
    no limit). ``decayed_usage`` is device-seconds decayed with the cluster's
    half-life, as of ``Snapshot.now``.
    """

    name: str
    weight: float = 1.0
    quota: Mapping[str, int] = field(default_factory=dict)
    borrowing_limit: Mapping[str, int] = field(default_factory=dict)
    decayed_usage: float = 0.0


@dataclass(frozen=True, slots=True)
class RunningAttempt:
    """An attempt that holds devices now.

    ``progress_at_risk`` is the work (in steps) done since the attempt's last
    checkpoint, which a preemption would throw away. ``yielding`` is true once
    the controller has asked it to stop; its devices are freed when it exits.
    """

    attempt_id: int
    trial_id: int
    search_id: int
    team: str
    priority: str
    node: str
    slots: tuple[int, ...]
    started_at: float
    progress_at_risk: float = 0.0
    yielding: bool = False


@dataclass(frozen=True, slots=True)
class PendingTrial:
    """A trial waiting for devices.

    ``queued_at`` is when it (last) became pending. ``resumes`` is true for a
    trial that already ran an attempt (preempted, or paused and promoted).
    ``allowed_regions`` and ``allowed_pools`` are placement constraints
    (``None`` means any); data governance fills them.
    """

    trial_id: int
    search_id: int
    team: str
    priority: str
    devices: int
    hardware: str
    queued_at: float
    resumes: bool = False
    allowed_regions: frozenset[str] | None = None
    allowed_pools: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class SearchLimit:
    search_id: int
    team: str
    max_concurrent: int


@dataclass(frozen=True, slots=True)
class Reservation:
    """Devices held for a pending trial: slots of attempts it preempted, or of a node it drains."""

    trial_id: int
    node: str
    slots: tuple[int, ...]
    created_at: float


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """Knobs shared by every policy.

    Attributes:
        min_runtime_s: An attempt younger than this is never chosen as a victim.
        validate: Check the invariants after every decision and raise on a breach.
        fair_share_horizon_s: Device-seconds of usage that the default
            policy adds to a team's decayed usage for each device the team
            has running, reserved or started in the same call, when it ranks
            teams by fair share. It spreads the devices of one call across
            teams, and 0 ranks by decayed usage alone.
        max_preemptors_per_call: Maximum number of pending trials that may
            preempt running attempts in one call of the default policy; the
            rest wait for the next call. ``None`` means no limit.
        starvation_wait_s: Seconds after which a pending trial that finds no
            room gets a reservation that drains one node for it, so smaller
            trials stop taking that node's devices. ``None`` turns this off.

    NOTE: the defaults of the last three fields are judgment calls that no
    trace replay has tuned yet.
    """

    min_runtime_s: float = 60.0
    validate: bool = False
    fair_share_horizon_s: float = 3600.0
    max_preemptors_per_call: int | None = 64
    starvation_wait_s: float | None = 3600.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    now: float
    pools: tuple[Pool, ...]
    nodes: tuple[Node, ...]
    priority_classes: tuple[PriorityClass, ...]
    teams: tuple[Team, ...] = ()
    running: tuple[RunningAttempt, ...] = ()
    pending: tuple[PendingTrial, ...] = ()
    searches: tuple[SearchLimit, ...] = ()
    reservations: tuple[Reservation, ...] = ()
    settings: PolicySettings = PolicySettings()


class DecisionKind(str, Enum):
    START = "start"
    PREEMPT = "preempt"
    RESERVE = "reserve"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Start:
    """Run ``trial_id`` on ``slots`` of ``node``."""

    trial_id: int
    node: str
    slots: tuple[int, ...]
    reason: str = ""
    kind: DecisionKind = DecisionKind.START


@dataclass(frozen=True, slots=True)
class Preempt:
    """Ask ``attempt_id`` to yield its devices for ``for_trial``."""

    attempt_id: int
    for_trial: int
    reason: str = ""
    kind: DecisionKind = DecisionKind.PREEMPT


@dataclass(frozen=True, slots=True)
class Reserve:
    """Hold ``slots`` of ``node`` for ``trial_id`` until it starts."""

    trial_id: int
    node: str
    slots: tuple[int, ...]
    reason: str = ""
    kind: DecisionKind = DecisionKind.RESERVE


@dataclass(frozen=True, slots=True)
class Reject:
    """``trial_id`` can never be placed; the reason names the request and the largest node."""

    trial_id: int
    reason: str
    kind: DecisionKind = DecisionKind.REJECT


Decision = Start | Preempt | Reserve | Reject
