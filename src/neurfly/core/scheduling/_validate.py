"""Invariant checks on a policy's decisions, run when ``settings.validate`` is on.

The checks replay the decisions in order against the snapshot, with their own
bookkeeping, so a bug in a policy's accounting does not hide itself:

* node capacity: a start uses distinct, existing, unheld slots of one
  schedulable node, and a reservation only slots that are free or about to
  be freed;
* reservations: a start or reservation never takes slots reserved for
  another pending trial;
* gangs: a start has exactly the requested number of slots. A reservation
  has at least one and at most that many, and exactly that many when it
  comes with preemptions;
* constraints: the node's pool has the trial's hardware and is inside its
  allowed regions and pools;
* team limits: after the starts, no team holds more than its quota plus its
  borrowing limit in a pool where it started something;
* search limits: no search runs more than ``max_concurrent`` attempts;
* preemption: victims are running, not yielding, of a preemptible class and
  old enough; each is of a lower priority value than its preemptor, or is
  borrowed and taken back for a team that stays within its quota; a reclaim
  never takes the victim's team below its quota; every preemption comes with
  a reservation for its preemptor on the victim's node;
* rejections: only requests that no eligible pool could ever hold.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from enum import Enum
from typing import NoReturn

from neurfly.core.scheduling._state import rank_borrowed
from neurfly.core.scheduling.snapshot import (
    Decision,
    Node,
    PendingTrial,
    Pool,
    Preempt,
    Reject,
    Reserve,
    RunningAttempt,
    Snapshot,
    Start,
    Team,
)
from neurfly.errors import NeurflyError


class Invariant(str, Enum):
    """The scheduling invariants that validation mode checks."""

    DECISION = "decision"
    NODE_CAPACITY = "node_capacity"
    RESERVATION = "reservation"
    GANG = "gang"
    CONSTRAINT = "constraint"
    TEAM_LIMIT = "team_limit"
    SEARCH_LIMIT = "search_limit"
    PREEMPTION = "preemption"
    REJECTION = "rejection"


class SchedulingInvariantError(NeurflyError):
    """A scheduling policy returned decisions that break an invariant, which is a bug in the policy.

    Attributes:
        invariant: The invariant that was broken.
        subject: What broke it, for example ``"trial 7"`` or ``"attempt 3"``.
        detail: What is wrong, with the values involved.
    """

    def __init__(self, invariant: Invariant, subject: str, detail: str) -> None:
        self.invariant = invariant
        self.subject = subject
        self.detail = detail
        super().__init__(f"scheduling invariant {invariant.value!r} broken by {subject}: {detail}")


@dataclass
class _Replay:
    """Bookkeeping of the decisions replayed so far."""

    occupied: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    reserved_by: dict[tuple[str, int], set[int]] = field(default_factory=lambda: defaultdict(set))
    decided: set[int] = field(default_factory=set)
    reserved_now: dict[int, Reserve] = field(default_factory=dict)
    preempted: dict[int, Preempt] = field(default_factory=dict)
    started_devices: Counter = field(default_factory=Counter)
    started_per_search: Counter = field(default_factory=Counter)
    spare_taken: Counter = field(default_factory=Counter)


class _Checker:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.pending: dict[int, PendingTrial] = {t.trial_id: t for t in snapshot.pending}
        self.running: dict[int, RunningAttempt] = {a.attempt_id: a for a in snapshot.running}
        self.nodes: dict[str, Node] = {n.name: n for n in snapshot.nodes}
        self.pools: dict[str, Pool] = {p.name: p for p in snapshot.pools}
        self.priorities = {c.name: c for c in snapshot.priority_classes}
        self.teams: dict[str, Team] = {t.name: t for t in snapshot.teams}
        self.caps = {s.search_id: s.max_concurrent for s in snapshot.searches}
        self.replay = _Replay()
        pool_of_node = {n.name: n.pool for n in snapshot.nodes}
        self.borrowed = rank_borrowed(snapshot.running, self.teams, self.priorities, pool_of_node)
        self.held: Counter = Counter()
        self.standing: Counter = Counter()
        for attempt in snapshot.running:
            pool = pool_of_node.get(attempt.node)
            self.replay.occupied[attempt.node].update(attempt.slots)
            self.held[attempt.team, pool] += len(attempt.slots)
            if not attempt.yielding:
                self.standing[attempt.team, pool] += len(attempt.slots)
        for reservation in snapshot.reservations:
            if reservation.trial_id in self.pending:
                for slot in reservation.slots:
                    self.replay.reserved_by[reservation.node, slot].add(reservation.trial_id)

    # -- per decision ----------------------------------------------------------------------------

    def check(self, decision: Decision) -> None:
        if isinstance(decision, Start):
            self._start(decision)
        elif isinstance(decision, Reserve):
            self._reserve(decision)
        elif isinstance(decision, Preempt):
            self._preempt(decision)
        elif isinstance(decision, Reject):
            self._reject(decision)
        else:
            _fail(Invariant.DECISION, "the policy", f"{decision!r} is not a Start, Preempt, Reserve or Reject")

    def _start(self, start: Start) -> None:
        trial = self._undecided_trial(start.trial_id)
        node = self._placement(trial, start.node, start.slots)
        subject = f"trial {trial.trial_id}"
        if len(start.slots) != trial.devices:
            _fail(Invariant.GANG, subject, f"starts on {len(start.slots)} slot(s) of {node.name} but requests {trial.devices}")
        occupied = self.replay.occupied[node.name]
        busy = sorted(occupied.intersection(start.slots))
        if busy:
            _fail(Invariant.NODE_CAPACITY, subject, f"starts on slot(s) {busy} of {node.name}, which are in use")

        occupied.update(start.slots)
        self.replay.decided.add(trial.trial_id)
        self.replay.started_devices[trial.team, node.pool] += trial.devices
        self.replay.started_per_search[trial.search_id] += 1

    def _reserve(self, reserve: Reserve) -> None:
        trial = self._undecided_trial(reserve.trial_id)
        subject = f"trial {trial.trial_id}"
        if trial.trial_id in self.replay.reserved_now:
            _fail(Invariant.DECISION, subject, "gets more than one reservation in one call")
        node = self._placement(trial, reserve.node, reserve.slots)
        if not reserve.slots or len(reserve.slots) > trial.devices:
            _fail(Invariant.GANG, subject, f"reserves {len(reserve.slots)} slot(s) of {node.name} but requests {trial.devices}")
        for slot in reserve.slots:
            if slot in self.replay.occupied[node.name] and not self._freeing(node.name, slot):
                _fail(Invariant.NODE_CAPACITY, subject, f"reserves slot {slot} of {node.name}, which nothing is freeing")

        self.replay.reserved_now[trial.trial_id] = reserve
        for slot in reserve.slots:
            self.replay.reserved_by[node.name, slot].add(trial.trial_id)

    def _freeing(self, node: str, slot: int) -> bool:
        for attempt in self.running.values():
            if attempt.node == node and slot in attempt.slots:
                return attempt.yielding or attempt.attempt_id in self.replay.preempted
        return False

    def _preempt(self, preempt: Preempt) -> None:
        subject = f"attempt {preempt.attempt_id}"
        attempt = self.running.get(preempt.attempt_id)
        if attempt is None:
            _fail(Invariant.DECISION, subject, "is not running")
        if preempt.attempt_id in self.replay.preempted:
            _fail(Invariant.DECISION, subject, "is preempted twice in one call")
        trial = self._undecided_trial(preempt.for_trial)
        self._check_victim(attempt, subject)
        self._check_preemption_rule(attempt, trial, subject)
        self.replay.preempted[attempt.attempt_id] = preempt

    def _check_victim(self, attempt: RunningAttempt, subject: str) -> None:
        if attempt.yielding:
            _fail(Invariant.PREEMPTION, subject, "is already yielding")
        age = self.snapshot.now - attempt.started_at
        if age < self.snapshot.settings.min_runtime_s:
            _fail(Invariant.PREEMPTION, subject, f"has run {age:g} s, less than min_runtime_s={self.snapshot.settings.min_runtime_s:g}")
        priority_class = self.priorities.get(attempt.priority)
        if priority_class is None or not priority_class.preemptible:
            _fail(Invariant.PREEMPTION, subject, f"has priority class {attempt.priority!r}, which is not preemptible")

    def _check_preemption_rule(self, attempt: RunningAttempt, trial: PendingTrial, subject: str) -> None:
        pool = self.nodes[attempt.node].pool
        victim_value = self.priorities[attempt.priority].value
        preemptor_value = self.priorities[trial.priority].value
        quota = self._team(trial.team).quota.get(pool, 0)
        within_quota = self.held[trial.team, pool] + self.replay.started_devices[trial.team, pool] + trial.devices <= quota
        other_team = attempt.team != trial.team
        borrowed = attempt.attempt_id in self.borrowed

        if victim_value < preemptor_value and (not other_team or within_quota):
            return
        if victim_value < preemptor_value and borrowed:
            self.replay.spare_taken[attempt.team, pool] += len(attempt.slots)
            return
        if other_team and borrowed and within_quota:
            self.replay.spare_taken[attempt.team, pool] += len(attempt.slots)
            return
        _fail(
            Invariant.PREEMPTION,
            subject,
            f"of class {attempt.priority!r} ({victim_value}, team {attempt.team!r}, borrowed={borrowed}) is preempted for "
            f"trial {trial.trial_id} of class {trial.priority!r} ({preemptor_value}, team {trial.team!r}, "
            f"within quota={within_quota}): neither a higher priority nor a reclaim of borrowed devices",
        )

    def _reject(self, reject: Reject) -> None:
        trial = self._undecided_trial(reject.trial_id)
        if self._could_fit(trial):
            _fail(Invariant.REJECTION, f"trial {trial.trial_id}", f"is rejected but some eligible pool could hold it: {reject.reason}")
        self.replay.decided.add(trial.trial_id)

    # -- shared checks ---------------------------------------------------------------------------

    def _undecided_trial(self, trial_id: int) -> PendingTrial:
        trial = self.pending.get(trial_id)
        if trial is None:
            _fail(Invariant.DECISION, f"trial {trial_id}", "is not pending")
        if trial_id in self.replay.decided:
            _fail(Invariant.DECISION, f"trial {trial_id}", "was already started or rejected in this call")
        return trial

    def _placement(self, trial: PendingTrial, node_name: str, slots: tuple[int, ...]) -> Node:
        subject = f"trial {trial.trial_id}"
        node = self.nodes.get(node_name)
        if node is None:
            _fail(Invariant.DECISION, subject, f"is placed on unknown node {node_name!r}")
        if not node.schedulable:
            _fail(Invariant.NODE_CAPACITY, subject, f"is placed on {node.name}, which is not schedulable")
        if len(set(slots)) != len(slots) or any(not 0 <= s < node.devices for s in slots):
            _fail(Invariant.NODE_CAPACITY, subject, f"uses slots {slots}, which are not distinct slots 0..{node.devices - 1} of {node.name}")
        if not _pool_allows(self.pools[node.pool], trial):
            _fail(Invariant.CONSTRAINT, subject, f"may not run in pool {node.pool} (hardware, region or allowed pools)")
        for slot in slots:
            others = self.replay.reserved_by.get((node.name, slot), set()) - {trial.trial_id}
            if others:
                _fail(Invariant.RESERVATION, subject, f"uses slot {slot} of {node.name}, reserved for trial(s) {sorted(others)}")
        return node

    def _could_fit(self, trial: PendingTrial) -> bool:
        if trial.priority not in self.priorities or trial.devices < 1:
            return False
        team = self._team(trial.team)
        for pool in self.pools.values():
            if not _pool_allows(pool, trial):
                continue
            largest = max((n.devices for n in self.snapshot.nodes if n.pool == pool.name), default=0)
            extra = team.borrowing_limit.get(pool.name)
            limit = math.inf if extra is None else team.quota.get(pool.name, 0) + extra
            if trial.devices <= largest and trial.devices <= limit:
                return True
        return False

    def _team(self, name: str) -> Team:
        return self.teams.get(name) or Team(name=name)

    # -- after all decisions ---------------------------------------------------------------------

    def finish(self) -> None:
        self._check_team_limits()
        self._check_search_limits()
        self._check_preemptions_reserve()
        self._check_reclaim_floor()

    def _check_team_limits(self) -> None:
        for (team_name, pool), started in self.replay.started_devices.items():
            team = self._team(team_name)
            extra = team.borrowing_limit.get(pool)
            limit = math.inf if extra is None else team.quota.get(pool, 0) + extra
            held = self.held[team_name, pool] + started
            if held > limit:
                _fail(Invariant.TEAM_LIMIT, f"team {team_name!r}", f"would hold {held} devices in pool {pool}, over its limit of {limit}")

    def _check_search_limits(self) -> None:
        running = Counter(a.search_id for a in self.snapshot.running)
        for search_id, started in self.replay.started_per_search.items():
            cap = self.caps.get(search_id)
            if cap is not None and running[search_id] + started > cap:
                _fail(
                    Invariant.SEARCH_LIMIT,
                    f"search {search_id}",
                    f"would run {running[search_id] + started} attempts, over its max_concurrent of {cap}",
                )

    def _check_preemptions_reserve(self) -> None:
        for attempt_id, preempt in self.replay.preempted.items():
            reserve = self.replay.reserved_now.get(preempt.for_trial)
            node = self.running[attempt_id].node
            if reserve is None or reserve.node != node:
                _fail(
                    Invariant.PREEMPTION,
                    f"attempt {attempt_id}",
                    f"is preempted for trial {preempt.for_trial}, which gets no reservation on {node}",
                )
            devices = self.pending[preempt.for_trial].devices
            if len(reserve.slots) != devices:
                _fail(
                    Invariant.GANG,
                    f"trial {preempt.for_trial}",
                    f"preempts attempt {attempt_id} but reserves {len(reserve.slots)} slot(s) of the {devices} it requests",
                )

    def _check_reclaim_floor(self) -> None:
        for (team_name, pool), taken in self.replay.spare_taken.items():
            quota = self._team(team_name).quota.get(pool, 0)
            if self.standing[team_name, pool] - taken < quota:
                _fail(
                    Invariant.PREEMPTION,
                    f"team {team_name!r}",
                    f"loses {taken} borrowed device(s) in pool {pool}, leaving {self.standing[team_name, pool] - taken}, "
                    f"under its quota of {quota}",
                )


def check_decisions(snapshot: Snapshot, decisions: list[Decision]) -> None:
    """Check a policy's decisions for ``snapshot`` against every invariant.

    Args:
        snapshot: The snapshot the policy was given.
        decisions: What the policy returned, in order.

    Raises:
        SchedulingInvariantError: At the first broken invariant.
    """
    checker = _Checker(snapshot)
    for decision in decisions:
        checker.check(decision)
    checker.finish()


def _pool_allows(pool: Pool, trial: PendingTrial) -> bool:
    if pool.hardware != trial.hardware:
        return False
    if trial.allowed_regions is not None and pool.region not in trial.allowed_regions:
        return False
    return trial.allowed_pools is None or pool.name in trial.allowed_pools


def _fail(invariant: Invariant, subject: str, detail: str) -> NoReturn:
    raise SchedulingInvariantError(invariant, subject, detail)
