"""Discrete-event simulation of a cluster driven by a scheduling policy.

The simulator replays a trace against the same ``SchedulingPolicy.schedule``
that the live controller calls, and applies the decisions with the
controller's semantics:

* ``Start`` makes the trial a running attempt on those slots. It runs for
  its remaining work and completes, unless it is preempted first.
* ``Preempt`` requests that the attempt yield. It keeps its devices, appears with
  ``yielding=True`` in later snapshots, and exits ``grace_period_s`` later.
  Work is checkpointed every ``checkpoint_interval_s`` seconds of progress,
  and the work done since the last checkpoint is lost. The trial becomes
  pending again with ``resumes=True`` and its remaining work. An attempt
  whose work ends within the grace period completes instead.
* ``Reserve`` stores a reservation that later snapshots carry until that
  trial starts or stops being pending. A new one for the same trial
  replaces the old one.
* ``Reject`` drops the trial; the report counts it.

Events at the same time are applied together. The policy is then called
once, and only if an arrival, completion or preemption exit happened and a
trial is pending, because every decision concerns a pending trial. Work and
progress are measured in seconds of run time, so ``progress_at_risk`` is in
seconds.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from neurfly.core.cluster import ClusterConfig
from neurfly.core.scheduling.base import SchedulingPolicy
from neurfly.core.scheduling.snapshot import (
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
from neurfly.core.usage import UsageAccumulator
from neurfly.errors import NeurflyError
from neurfly.sim.results import JobOutcome, JobRecord, SimulationResult, StepSeries
from neurfly.sim.trace import TraceJob

_logger = logging.getLogger(__name__)


class PolicyContractError(NeurflyError):
    """A policy returned a decision that the controller could not apply (a bug in the policy)."""


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """Knobs of the simulated runtime.

    Attributes:
        checkpoint_interval_s: Seconds of progress between checkpoints; ``math.inf`` means a
            preempted attempt loses all its work.
        grace_period_s: Seconds a preempted attempt keeps its devices before it exits.
        report_interval_s: Seconds of progress between a trial's progress reports.
            ``progress_at_risk`` in a snapshot is as of the last report, as in the
            controller. 0 gives the exact progress at every snapshot.
        min_runtime_s: Passed to the policy as ``PolicySettings.min_runtime_s``.
        validate: Ask the policy to check its invariants, and check after every start that
            no team uses more than its quota plus borrowing limit in a pool.
    """

    checkpoint_interval_s: float = 1800.0
    grace_period_s: float = 30.0
    report_interval_s: float = 60.0
    min_runtime_s: float = 60.0
    validate: bool = False

    def __post_init__(self) -> None:
        if not self.checkpoint_interval_s > 0:
            raise ValueError(f"checkpoint_interval_s must be more than 0, got {self.checkpoint_interval_s}")
        if not 0 <= self.report_interval_s < math.inf:
            raise ValueError(f"report_interval_s must be a finite number of 0 or more, got {self.report_interval_s}")
        if not 0 <= self.grace_period_s < math.inf:
            raise ValueError(f"grace_period_s must be a finite number of 0 or more, got {self.grace_period_s}")
        if self.min_runtime_s < 0:
            raise ValueError(f"min_runtime_s must be 0 or more, got {self.min_runtime_s}")


class _EventKind(IntEnum):
    FINISH = 0
    YIELD_END = 1


@dataclass(slots=True, eq=False)
class _Job:
    record: JobRecord
    search_id: int
    hardware: str
    progress: float = 0.0
    queued_at: float = 0.0
    view: PendingTrial | None = None
    attempt: _Attempt | None = None


@dataclass(slots=True, eq=False)
class _Attempt:
    attempt_id: int
    job: _Job
    node: Node
    slots: tuple[int, ...]
    started_at: float
    start_progress: float
    yielding: bool = False
    ended: bool = False
    fields: tuple = ()
    """The ``RunningAttempt`` fields before ``progress_at_risk``, which stay fixed for the attempt's life."""
    view: RunningAttempt | None = None
    view_expires: float = 0.0


class _DemandTracker:
    """Devices per team that pending trials could use now.

    A pending trial of a search that runs ``max_concurrent`` attempts already
    cannot start whatever the policy does, so it adds no demand. Within a
    limited search the demand is the pending devices times the share of its
    pending trials that the limit lets start, which is exact when the
    search's trials need equal devices.
    """

    def __init__(self, teams: list[str], limits: tuple[SearchLimit, ...]) -> None:
        self.by_team = {team: 0.0 for team in teams}
        self.limits = {limit.search_id: limit.max_concurrent for limit in limits}
        self.pending_trials: dict[int, int] = {}
        self.pending_devices: dict[int, float] = {}
        self.running: dict[int, int] = {}
        self.contribution: dict[int, float] = {}

    def change(self, job: _Job, pending: int = 0, running: int = 0) -> None:
        """Record ``pending`` (+1 or -1) and ``running`` (+1 or -1) changes of ``job``."""
        search = job.search_id
        team = job.record.team
        if search not in self.limits:
            self.by_team[team] += pending * job.record.devices
            return

        self.pending_trials[search] = self.pending_trials.get(search, 0) + pending
        self.pending_devices[search] = self.pending_devices.get(search, 0.0) + pending * job.record.devices
        self.running[search] = self.running.get(search, 0) + running
        waiting = self.pending_trials[search]
        startable = min(waiting, max(0, self.limits[search] - self.running[search]))
        new = self.pending_devices[search] * startable / waiting if waiting else 0.0
        self.by_team[team] += new - self.contribution.get(search, 0.0)
        self.contribution[search] = new


class Simulator:
    """Replays a trace on a cluster under one scheduling policy.

    Args:
        cluster: The cluster: pools, nodes, teams, priority classes and usage half-life.
        policy: The policy instance; the simulator calls only ``schedule``.
        config: Checkpoint interval, grace period and validation.
        policy_name: Name for the result; ``policy.name`` when empty.
    """

    def __init__(
        self,
        cluster: ClusterConfig,
        policy: SchedulingPolicy,
        config: SimulationConfig | None = None,
        policy_name: str = "",
    ) -> None:
        self.cluster = cluster
        self.policy = policy
        self.config = config or SimulationConfig()
        self.policy_name = policy_name or policy.name or type(policy).__name__
        self._pools = tuple(
            Pool(pool.name, pool.region, pool.hardware, pool.price_per_device_hour) for pool in cluster.pools
        )
        self._nodes = tuple(Node(node.name, pool.name, node.devices) for pool in cluster.pools for node in pool.nodes)
        self._node_by_name = {node.name: node for node in self._nodes}
        self._hardware_of_pool = {pool.name: pool.hardware for pool in cluster.pools}
        self._priority_classes = tuple(
            PriorityClass(c.name, c.value, c.preemptible) for c in cluster.priority_classes
        )
        self._settings = PolicySettings(min_runtime_s=self.config.min_runtime_s, validate=self.config.validate)

    def run(self, jobs: Sequence[TraceJob]) -> SimulationResult:
        """Simulate ``jobs`` from the first arrival until no event is left.

        Args:
            jobs: Jobs with priority, search id and hardware filled in (see ``derive_missing``).

        Returns:
            Per-job records and the cluster's state over time.

        Raises:
            ValueError: A job lacks a priority or hardware type, or the trace is empty.
            PolicyContractError: The policy returned a decision that cannot be applied.
        """
        run = _Run(self, jobs)
        started = time.perf_counter()
        _logger.info("simulating %d jobs under policy %r", len(jobs), self.policy_name)
        run.loop()
        result = run.output
        result.wall_s = time.perf_counter() - started
        _logger.info(
            "policy %r: %d events, %d schedule calls in %.1f s",
            self.policy_name,
            result.events,
            result.schedule_calls,
            result.wall_s,
        )
        return result


class _Run:
    """State of one simulation run; ``Simulator.run`` creates one per call."""

    def __init__(self, simulator: Simulator, jobs: Sequence[TraceJob]) -> None:
        _check_jobs(jobs)
        self.sim = simulator
        self.config = simulator.config
        self.origin = min(job.arrival for job in jobs)
        self.jobs, self.searches = self._load_jobs(jobs)
        self.arrivals = sorted(self.jobs, key=lambda job: (job.record.arrival, job.record.trial_id))
        self.next_arrival = 0

        self.events: list[tuple[float, int, _EventKind, _Attempt]] = []
        self.sequence = 0
        self.pending: dict[int, _Job] = {}
        self.running: dict[int, _Attempt] = {}
        self.reservations: dict[int, Reservation] = {}
        self.occupied: dict[str, set[int]] = {node.name: set() for node in simulator._nodes}
        self.next_attempt_id = 1

        self.team_configs = {name: simulator.cluster.team(name) for name in self._team_names()}
        self.usage = UsageAccumulator(simulator.cluster.usage_half_life_s, start=0.0)
        self.devices_held_by_team: dict[str, float] = {name: 0.0 for name in self.team_configs}
        self.devices_held_by_pool: dict[tuple[str, str], int] = {}
        self.demand = _DemandTracker(list(self.team_configs), self.searches)
        self.devices_held = 0
        self.changed_teams: set[str] = set()
        self.output = SimulationResult(
            policy=simulator.policy_name,
            jobs=[job.record for job in self.jobs],
            capacity=sum(node.devices for node in simulator._nodes if node.schedulable),
            end=0.0,
            devices_held=StepSeries(),
            devices_held_by_team={name: StepSeries() for name in self.team_configs},
            demand_by_team={name: StepSeries() for name in self.team_configs},
        )

    def _load_jobs(self, jobs: Sequence[TraceJob]) -> tuple[list[_Job], tuple[SearchLimit, ...]]:
        search_numbers: dict[str, int] = {}
        limits: dict[int, SearchLimit] = {}
        loaded = []
        for trial_id, job in enumerate(jobs, start=1):
            key = job.search_id if job.search_id is not None else f"\0job-{trial_id}"
            search_id = search_numbers.setdefault(key, len(search_numbers) + 1)
            if job.max_concurrent is not None and search_id not in limits:
                limits[search_id] = SearchLimit(search_id, job.team, job.max_concurrent)
            record = JobRecord(
                trial_id=trial_id,
                job_id=job.job_id or str(trial_id),
                team=job.team,
                priority=job.priority or "",
                devices=job.devices,
                duration=job.duration,
                arrival=job.arrival - self.origin,
            )
            loaded.append(_Job(record=record, search_id=search_id, hardware=job.hardware or ""))
        return loaded, tuple(limits.values())

    def _team_names(self) -> list[str]:
        names = [team.name for team in self.sim.cluster.teams]
        seen = set(names)
        for job in self.jobs:
            if job.record.team not in seen:
                seen.add(job.record.team)
                names.append(job.record.team)
        return names

    # -- main loop -----------------------------------------------------------------

    def loop(self) -> None:
        while True:
            now = self._next_time()
            if now is None:
                break

            self.usage.advance(now, self.devices_held_by_team)
            changed = self._apply_events(now)
            changed = self._admit_arrivals(now) or changed
            if changed and self.pending:
                self._decide(now)
            self._log_state(now)
            self.output.end = now

    def _next_time(self) -> float | None:
        candidates = []
        if self.next_arrival < len(self.arrivals):
            candidates.append(self.arrivals[self.next_arrival].record.arrival)
        if self.events:
            candidates.append(self.events[0][0])
        return min(candidates) if candidates else None

    def _apply_events(self, now: float) -> bool:
        """Apply the completions and preemption exits due at ``now``; return whether there was any.

        A completion left in the heap by an attempt that already exited is dropped.
        """
        applied = False
        while self.events and self.events[0][0] == now:
            _, _, kind, attempt = heapq.heappop(self.events)
            if attempt.ended:
                continue
            applied = True
            self.output.events += 1
            if kind is _EventKind.FINISH:
                self._complete(attempt, now)
            else:
                self._exit_preempted(attempt, now)
        return applied

    def _admit_arrivals(self, now: float) -> bool:
        """Make the jobs arriving at ``now`` pending; return whether there was any."""
        admitted = False
        while self.next_arrival < len(self.arrivals) and self.arrivals[self.next_arrival].record.arrival == now:
            job = self.arrivals[self.next_arrival]
            self.next_arrival += 1
            self.output.events += 1
            self._make_pending(job, now, resumes=False)
            admitted = True
        return admitted

    def _push(self, when: float, kind: _EventKind, attempt: _Attempt) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (when, self.sequence, kind, attempt))

    # -- state changes --------------------------------------------------------------

    def _make_pending(self, job: _Job, now: float, resumes: bool) -> None:
        job.queued_at = now
        job.view = PendingTrial(
            trial_id=job.record.trial_id,
            search_id=job.search_id,
            team=job.record.team,
            priority=job.record.priority,
            devices=job.record.devices,
            hardware=job.hardware,
            queued_at=now,
            resumes=resumes,
        )
        self.pending[job.record.trial_id] = job
        self.demand.change(job, pending=1)
        self.changed_teams.add(job.record.team)

    def _leave_pending(self, job: _Job, now: float) -> None:
        del self.pending[job.record.trial_id]
        job.view = None
        job.record.wait_s += now - job.queued_at
        self.demand.change(job, pending=-1)
        self.changed_teams.add(job.record.team)
        self.reservations.pop(job.record.trial_id, None)

    def _start(self, job: _Job, node: Node, slots: tuple[int, ...], now: float) -> None:
        self._leave_pending(job, now)
        if job.record.first_start is None:
            job.record.first_start = now

        attempt = _Attempt(self.next_attempt_id, job, node, slots, now, job.progress)
        attempt.fields = (
            attempt.attempt_id, job.record.trial_id, job.search_id, job.record.team, job.record.priority,
            node.name, slots, now,
        )  # fmt: skip
        self.next_attempt_id += 1
        job.attempt = attempt
        self.running[attempt.attempt_id] = attempt
        self.occupied[node.name].update(slots)
        self._hold(job.record.team, node.pool, len(slots))
        self.demand.change(job, running=1)
        self._push(now + (job.record.duration - job.progress), _EventKind.FINISH, attempt)

    def _complete(self, attempt: _Attempt, now: float) -> None:
        job = attempt.job
        self._release(attempt)
        job.progress = job.record.duration
        job.record.completion = now
        job.record.outcome = JobOutcome.COMPLETED

    def _exit_preempted(self, attempt: _Attempt, now: float) -> None:
        job = attempt.job
        self._release(attempt)
        progress = attempt.start_progress + (now - attempt.started_at)
        lost = _work_since_checkpoint(progress, self.config.checkpoint_interval_s)
        job.progress = progress - lost
        job.record.lost_work_s += lost
        job.record.preemptions += 1
        self._make_pending(job, now, resumes=True)

    def _release(self, attempt: _Attempt) -> None:
        attempt.ended = True
        attempt.job.attempt = None
        del self.running[attempt.attempt_id]
        self.occupied[attempt.node.name].difference_update(attempt.slots)
        self._hold(attempt.job.record.team, attempt.node.pool, -len(attempt.slots))
        self.demand.change(attempt.job, running=-1)
        self.changed_teams.add(attempt.job.record.team)

    def _hold(self, team: str, pool: str, devices: int) -> None:
        self.devices_held += devices
        self.devices_held_by_team[team] += devices
        self.changed_teams.add(team)
        self.devices_held_by_pool[team, pool] = self.devices_held_by_pool.get((team, pool), 0) + devices

    def _log_state(self, now: float) -> None:
        result = self.output
        result.devices_held.record(now, self.devices_held)
        for team in self.changed_teams:
            result.devices_held_by_team[team].record(now, self.devices_held_by_team[team])
            result.demand_by_team[team].record(now, self.demand.by_team[team])
        self.changed_teams.clear()

    # -- policy ---------------------------------------------------------------------

    def _decide(self, now: float) -> None:
        snapshot = self._snapshot(now)
        started = time.perf_counter()
        decisions = self.sim.policy.schedule(snapshot)
        self.output.policy_wall_s += time.perf_counter() - started
        self.output.schedule_calls += 1

        for decision in decisions:
            self._apply(decision, now)

    def _snapshot(self, now: float) -> Snapshot:
        return Snapshot(
            now=now,
            pools=self.sim._pools,
            nodes=self.sim._nodes,
            priority_classes=self.sim._priority_classes,
            teams=tuple(
                Team(name, config.weight, config.quota, config.borrowing_limit, self.usage.usage(name))
                for name, config in self.team_configs.items()
            ),
            running=self._running_views(now),
            pending=tuple(job.view for job in self.pending.values()),
            searches=self.searches,
            reservations=tuple(self.reservations.values()),
            settings=self.sim._settings,
        )

    def _running_views(self, now: float) -> tuple[RunningAttempt, ...]:
        """Return the running attempts for the snapshot at ``now``.

        An attempt's view is rebuilt only once its next progress report or
        checkpoint has passed, or after it was asked to yield, because this
        runs over every running attempt once per ``schedule`` call.
        """
        views = []
        for attempt in self.running.values():
            if attempt.view is None or now >= attempt.view_expires:
                self._refresh_view(attempt, now)
            views.append(attempt.view)
        return tuple(views)

    def _refresh_view(self, attempt: _Attempt, now: float) -> None:
        """Rebuild ``attempt.view`` with ``progress_at_risk`` as the controller computes it.

        The controller has only the progress the trial last reported, so the
        work at risk is the reported progress minus the progress at the last
        checkpoint, and never below 0.
        """
        report = self.config.report_interval_s
        checkpoint = self.config.checkpoint_interval_s
        progress = attempt.start_progress + (now - attempt.started_at)
        reported = progress if report == 0 else math.floor(progress / report) * report
        saved = progress - _work_since_checkpoint(progress, checkpoint)
        attempt.view = RunningAttempt(*attempt.fields, max(0.0, reported - saved), attempt.yielding)

        next_report = math.inf if report == 0 else reported + report
        next_checkpoint = math.inf if math.isinf(checkpoint) else saved + checkpoint
        next_change = min(next_report, next_checkpoint)
        attempt.view_expires = now if report == 0 else attempt.started_at + (next_change - attempt.start_progress)

    def _apply(self, decision: Decision, now: float) -> None:
        if isinstance(decision, Start):
            self._apply_start(decision, now)
        elif isinstance(decision, Preempt):
            self._apply_preempt(decision, now)
        elif isinstance(decision, Reserve):
            self._apply_reserve(decision, now)
        elif isinstance(decision, Reject):
            self._apply_reject(decision, now)
        else:
            raise PolicyContractError(f"policy {self.sim.policy_name!r} returned {decision!r}, which is not a Decision")

    def _apply_start(self, decision: Start, now: float) -> None:
        job = self._pending_job(decision.trial_id, decision, now)
        node = self._node(decision.node, decision, now)
        problem = self._start_problem(job, node, decision.slots)
        if problem:
            raise self._contract_error(decision, now, problem)

        self._start(job, node, tuple(decision.slots), now)
        if self.config.validate:
            self._check_team_cap(job.record.team, node.pool, decision, now)

    def _start_problem(self, job: _Job, node: Node, slots: tuple[int, ...]) -> str:
        if not node.schedulable:
            return f"node {node.name} is not schedulable"
        if self.sim._hardware_of_pool[node.pool] != job.hardware:
            hardware = self.sim._hardware_of_pool[node.pool]
            return f"node {node.name} has {hardware} devices, the trial needs {job.hardware}"
        if len(slots) != job.record.devices or len(set(slots)) != len(slots):
            return f"the trial needs {job.record.devices} distinct slot(s), the decision gives {slots}"
        if any(not 0 <= slot < node.devices for slot in slots):
            return f"node {node.name} has slots 0..{node.devices - 1}"
        busy = self.occupied[node.name].intersection(slots)
        if busy:
            return f"slot(s) {sorted(busy)} of {node.name} are held by a running attempt"
        for reservation in self.reservations.values():
            if reservation.trial_id != job.record.trial_id and reservation.node == node.name:
                clash = set(reservation.slots).intersection(slots)
                if clash:
                    return f"slot(s) {sorted(clash)} of {node.name} are reserved for trial {reservation.trial_id}"
        return ""

    def _check_team_cap(self, team: str, pool: str, decision: Start, now: float) -> None:
        config = self.team_configs[team]
        if pool not in config.borrowing_limit:
            return
        cap = config.quota.get(pool, 0) + config.borrowing_limit[pool]
        team_devices = self.devices_held_by_pool[team, pool]
        if team_devices > cap:
            raise self._contract_error(
                decision, now, f"team {team!r} now uses {team_devices} devices in {pool}, over its cap of {cap}"
            )

    def _apply_preempt(self, decision: Preempt, now: float) -> None:
        attempt = self.running.get(decision.attempt_id)
        if attempt is None:
            raise self._contract_error(decision, now, f"attempt {decision.attempt_id} is not running")
        if attempt.yielding:
            _logger.debug("attempt %d is already yielding; preempt at t=%s ignored", attempt.attempt_id, now)
            return

        attempt.yielding = True
        attempt.view = None
        self.output.preempt_requests += 1
        finish = attempt.started_at + (attempt.job.record.duration - attempt.start_progress)
        if finish > now + self.config.grace_period_s:
            self._push(now + self.config.grace_period_s, _EventKind.YIELD_END, attempt)

    def _apply_reserve(self, decision: Reserve, now: float) -> None:
        self._pending_job(decision.trial_id, decision, now)
        node = self._node(decision.node, decision, now)
        slots = tuple(decision.slots)
        if not slots or len(set(slots)) != len(slots) or any(not 0 <= slot < node.devices for slot in slots):
            raise self._contract_error(decision, now, f"slots {slots} are not distinct slots of {node.name}")
        for reservation in self.reservations.values():
            if reservation.trial_id != decision.trial_id and reservation.node == node.name:
                clash = set(reservation.slots).intersection(slots)
                if clash:
                    raise self._contract_error(
                        decision, now, f"slot(s) {sorted(clash)} are already reserved for trial {reservation.trial_id}"
                    )

        self.reservations[decision.trial_id] = Reservation(decision.trial_id, node.name, slots, now)
        self.output.reservations += 1

    def _apply_reject(self, decision: Reject, now: float) -> None:
        job = self._pending_job(decision.trial_id, decision, now)
        self._leave_pending(job, now)
        job.record.outcome = JobOutcome.REJECTED
        job.record.reason = decision.reason
        _logger.debug("trial %d (job %s) rejected: %s", job.record.trial_id, job.record.job_id, decision.reason)

    def _pending_job(self, trial_id: int, decision: Decision, now: float) -> _Job:
        job = self.pending.get(trial_id)
        if job is None:
            raise self._contract_error(decision, now, f"trial {trial_id} is not pending")
        return job

    def _node(self, name: str, decision: Decision, now: float) -> Node:
        node = self.sim._node_by_name.get(name)
        if node is None:
            raise self._contract_error(decision, now, f"node {name!r} is not in the cluster")
        return node

    def _contract_error(self, decision: Decision, now: float, problem: str) -> PolicyContractError:
        return PolicyContractError(
            f"policy {self.sim.policy_name!r} at t={now:.1f} s returned {decision!r}, "
            f"which cannot be applied: {problem}"
        )


def _work_since_checkpoint(progress: float, interval_s: float) -> float:
    """Return the work done since the last checkpoint; checkpoints fall on multiples of ``interval_s``."""
    if math.isinf(interval_s):
        return progress
    return progress % interval_s


def _check_jobs(jobs: Sequence[TraceJob]) -> None:
    if not jobs:
        raise ValueError("the trace has no jobs; check the file and --limit")
    incomplete = [
        job.job_id or str(index) for index, job in enumerate(jobs, start=1) if not job.priority or not job.hardware
    ]
    if incomplete:
        raise ValueError(
            f"{len(incomplete)} job(s) lack a priority or hardware type (first: {incomplete[:5]}); "
            "fill them with neurfly.sim.derive.derive_missing first"
        )


__all__ = ["PolicyContractError", "SimulationConfig", "Simulator"]
