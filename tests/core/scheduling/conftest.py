"""A small cluster model that applies policy decisions the way the controller does.

``ClusterModel`` keeps a snapshot and changes it for each decision as the
live controller would. ``Start`` turns a pending trial into a running
attempt. ``Preempt`` marks the attempt yielding, and it keeps its slots until
the test ends it. ``Reserve`` stores a reservation that replaces the trial's
earlier one, and ``Reject`` drops the trial. Reservations disappear when
their trial leaves pending. Tests advance time and end attempts themselves.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable

import pytest

from neurfly.core.scheduling import (
    Decision,
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
from neurfly.core.scheduling.default import DefaultPolicy

PRIORITY_CLASSES = (
    PriorityClass("production", 1000, preemptible=False),
    PriorityClass("interactive", 500),
    PriorityClass("search", 100),
    PriorityClass("best-effort", 0),
)


class ClusterModel:
    """A snapshot plus the bookkeeping to apply decisions to it.

    Args:
        nodes: ``(name, pool, devices)`` for each node.
        pools: The pools; defaults to one cpu pool ``"p"`` in region ``"eu"``.
        teams: The teams.
        searches: Search limits.
        min_runtime_s: ``PolicySettings.min_runtime_s``.
        now: Start time.
        settings: Extra ``PolicySettings`` fields.
    """

    def __init__(
        self,
        nodes: Iterable[tuple[str, str, int]],
        pools: Iterable[Pool] = (Pool("p", "eu", "cpu"),),
        teams: Iterable[Team] = (),
        searches: Iterable[SearchLimit] = (),
        min_runtime_s: float = 60.0,
        now: float = 1000.0,
        **settings,
    ) -> None:
        self.policy = DefaultPolicy()
        self.now = now
        self.pools = tuple(pools)
        self.nodes = tuple(Node(name, pool, devices) for name, pool, devices in nodes)
        self.teams = tuple(teams)
        self.searches = tuple(searches)
        self.settings = PolicySettings(min_runtime_s=min_runtime_s, validate=True, **settings)
        self.pending: dict[int, PendingTrial] = {}
        self.running: dict[int, RunningAttempt] = {}
        self.reservations: dict[int, Reservation] = {}
        self.trials: dict[int, PendingTrial] = {}
        self.next_attempt_id = 1
        self.history: list[list[Decision]] = []

    # -- building the cluster ------------------------------------------------------------------

    def submit(
        self,
        trial_id: int,
        team: str = "a",
        devices: int = 1,
        priority: str = "search",
        search_id: int | None = None,
        queued_at: float | None = None,
        **fields,
    ) -> PendingTrial:
        """Add a pending trial; ``search_id`` defaults to one search per team."""
        trial = PendingTrial(
            trial_id=trial_id,
            search_id=search_id if search_id is not None else _search_of(team),
            team=team,
            priority=priority,
            devices=devices,
            hardware=fields.pop("hardware", "cpu"),
            queued_at=self.now if queued_at is None else queued_at,
            **fields,
        )
        self.pending[trial_id] = trial
        self.trials[trial_id] = trial
        return trial

    def snapshot(self) -> Snapshot:
        return Snapshot(
            now=self.now,
            pools=self.pools,
            nodes=self.nodes,
            priority_classes=PRIORITY_CLASSES,
            teams=self.teams,
            running=tuple(self.running.values()),
            pending=tuple(self.pending.values()),
            searches=self.searches,
            reservations=tuple(self.reservations.values()),
            settings=self.settings,
        )

    # -- applying decisions --------------------------------------------------------------------

    def step(self) -> list[Decision]:
        """Call the policy once and apply its decisions."""
        decisions = self.policy.schedule(self.snapshot())
        for decision in decisions:
            self.apply(decision)
        self.history.append(decisions)
        return decisions

    def apply(self, decision: Decision) -> None:
        if isinstance(decision, Start):
            trial = self.pending.pop(decision.trial_id)
            self.reservations.pop(trial.trial_id, None)
            self.running[self.next_attempt_id] = RunningAttempt(
                attempt_id=self.next_attempt_id,
                trial_id=trial.trial_id,
                search_id=trial.search_id,
                team=trial.team,
                priority=trial.priority,
                node=decision.node,
                slots=decision.slots,
                started_at=self.now,
            )
            self.next_attempt_id += 1
        elif isinstance(decision, Preempt):
            attempt = self.running[decision.attempt_id]
            self.running[attempt.attempt_id] = dataclasses.replace(attempt, yielding=True)
        elif isinstance(decision, Reserve):
            self.reservations[decision.trial_id] = Reservation(decision.trial_id, decision.node, decision.slots, self.now)
        elif isinstance(decision, Reject):
            self.pending.pop(decision.trial_id)
            self.reservations.pop(decision.trial_id, None)

    def end(self, attempt_id: int, requeue: bool = False) -> None:
        """End an attempt; with ``requeue`` its trial becomes pending again and resumes."""
        attempt = self.running.pop(attempt_id)
        if not requeue:
            return
        trial = self.trials.get(attempt.trial_id)
        if trial is None:
            trial = PendingTrial(
                attempt.trial_id, attempt.search_id, attempt.team, attempt.priority, len(attempt.slots), "cpu", self.now
            )
            self.trials[trial.trial_id] = trial
        self.pending[trial.trial_id] = dataclasses.replace(trial, resumes=True, queued_at=self.now)

    def end_yielding(self) -> list[int]:
        """End every yielding attempt, requeueing its trial; return their ids."""
        ended = [a.attempt_id for a in self.running.values() if a.yielding]
        for attempt_id in ended:
            self.end(attempt_id, requeue=True)
        return ended

    def advance(self, seconds: float) -> None:
        self.now += seconds

    # -- queries -------------------------------------------------------------------------------

    def attempt_of(self, trial_id: int) -> RunningAttempt | None:
        return next((a for a in self.running.values() if a.trial_id == trial_id), None)

    def devices_by_team(self, include_yielding: bool = True) -> Counter:
        held: Counter = Counter()
        for attempt in self.running.values():
            if include_yielding or not attempt.yielding:
                held[attempt.team] += len(attempt.slots)
        return held

    @staticmethod
    def kinds(decisions: Iterable[Decision]) -> Counter:
        """Count decisions by type name."""
        return Counter(type(d).__name__ for d in decisions)


def _search_of(team: str) -> int:
    return sum(ord(char) for char in team)


@pytest.fixture
def cluster() -> type[ClusterModel]:
    """The ``ClusterModel`` class, to build a model per test."""
    return ClusterModel
