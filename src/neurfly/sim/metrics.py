"""Figures of merit of one simulation: completion times, waits, utilisation, fairness, preemption.

Definitions:

* Job completion time (JCT): completion minus arrival, over completed jobs.
* Queueing delay: seconds a job spent pending, summed over its waits, over
  jobs that started at least once.
* Utilisation: device-seconds held by attempts (yielding ones included) over
  capacity times the span from the first arrival to the last event.
* Entitlement share: a team's quota summed over pools, over the sum for all
  teams; by fair-share weight when no team has a quota.
* Jain's fairness index ``(sum x)^2 / (n * sum x^2)`` over teams, where x is a
  team's usage over its entitlement. It is 1 when every team gets exactly its
  entitlement and ``1/n`` when one team gets everything. Two variants:
  over the whole run (usage share against entitlement share) and per window
  (usage against the weighted max-min fair share of the window's capacity,
  given each team's demand), averaged over the windows in which some demand
  waited.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from neurfly.core.cluster import ClusterConfig
from neurfly.sim.results import JobOutcome, JobRecord, SimulationResult, StepSeries

DEFAULT_WINDOW_S = 3600.0


def jain_index(values: Sequence[float]) -> float:
    """Return Jain's fairness index of non-negative values (1.0 when all are equal).

    Raises:
        ValueError: ``values`` is empty, has a negative value, or is all zeros.
    """
    if len(values) == 0:
        raise ValueError("Jain's index needs at least one value")
    if any(value < 0 for value in values):
        raise ValueError(f"Jain's index needs values of 0 or more, got {list(values)}")
    square_sum = sum(value * value for value in values)
    if square_sum == 0:
        raise ValueError("Jain's index is undefined when every value is 0")
    return sum(values) ** 2 / (len(values) * square_sum)


@dataclass(frozen=True, slots=True)
class Distribution:
    """Summary of a sample of durations in seconds; ``None`` fields for an empty sample."""

    count: int
    mean: float | None
    median: float | None
    p95: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Distribution:
        if len(values) == 0:
            return cls(0, None, None, None)
        array = np.asarray(values, dtype=float)
        return cls(len(array), float(array.mean()), float(np.median(array)), float(np.percentile(array, 95)))


@dataclass(frozen=True, slots=True)
class TeamMetrics:
    """One team's figures under one policy.

    Attributes:
        team: Team name.
        jobs: Jobs of the team in the trace.
        completed: Jobs that completed.
        completion_time: JCT of completed jobs.
        queueing_delay: Total pending time of jobs that started.
        device_hours: Device-hours held by its attempts.
        usage_share: Its device-hours over everyone's.
        entitlement_share: Its quota (or weight) over everyone's.
    """

    team: str
    jobs: int
    completed: int
    completion_time: Distribution
    queueing_delay: Distribution
    device_hours: float
    usage_share: float
    entitlement_share: float


@dataclass(frozen=True, slots=True)
class PolicyMetrics:
    """Every figure the report shows for one policy.

    Attributes:
        policy: Policy name.
        jobs: Jobs in the trace.
        completed: Jobs that completed.
        rejected: Jobs the policy rejected.
        rejected_device_hours: Work of rejected jobs, in device-hours.
        unfinished: Jobs neither completed nor rejected when no event was left.
        completion_time: JCT over completed jobs.
        queueing_delay: Pending time over jobs that started.
        utilisation: Held device-seconds over capacity times the span.
        jain_whole_run: Jain's index of usage share over entitlement share, whole run.
        jain_windowed: Mean per-window Jain's index over windows with waiting demand, or ``None``.
        contended_windows: Windows with waiting demand.
        window_s: Window length in seconds.
        preemptions: Attempts that exited by preemption.
        preempt_requests: Preempt decisions applied.
        lost_device_hours: Work thrown away by preemptions, in device-hours.
        top_class: Highest priority class present in the trace.
        top_class_time_to_start: Arrival to first start for jobs of ``top_class``.
        span_s: Seconds from the first arrival to the last event.
        schedule_calls: Calls of ``schedule``.
        events: Events processed.
        wall_s: Wall-clock seconds of the run.
        policy_wall_s: Wall-clock seconds inside ``schedule``.
        teams: Per-team figures, by team name.
    """

    policy: str
    jobs: int
    completed: int
    rejected: int
    rejected_device_hours: float
    unfinished: int
    completion_time: Distribution
    queueing_delay: Distribution
    utilisation: float
    jain_whole_run: float | None
    jain_windowed: float | None
    contended_windows: int
    window_s: float
    preemptions: int
    preempt_requests: int
    lost_device_hours: float
    top_class: str | None
    top_class_time_to_start: Distribution
    span_s: float
    schedule_calls: int
    events: int
    wall_s: float
    policy_wall_s: float
    teams: tuple[TeamMetrics, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return asdict(self)


def entitlement_shares(cluster: ClusterConfig, teams: Sequence[str]) -> dict[str, float]:
    """Return each team's share of quota over all pools, or of weight when no team has a quota."""
    configs = [cluster.team(name) for name in teams]
    quotas = [sum(config.quota.values()) for config in configs]
    basis = quotas if sum(quotas) > 0 else [config.weight for config in configs]
    total = sum(basis)
    if total == 0:
        return {name: 1.0 / len(teams) for name in teams}
    return {name: value / total for name, value in zip(teams, basis, strict=True)}


def summarize(
    result: SimulationResult, cluster: ClusterConfig, window_s: float = DEFAULT_WINDOW_S
) -> PolicyMetrics:
    """Compute every figure of ``result``.

    Raises:
        ValueError: ``window_s`` is not positive.
    """
    if window_s <= 0:
        raise ValueError(f"window_s must be more than 0, got {window_s}")

    jobs = result.jobs
    completed = [job for job in jobs if job.outcome is JobOutcome.COMPLETED]
    started = [job for job in jobs if job.first_start is not None]
    rejected = [job for job in jobs if job.outcome is JobOutcome.REJECTED]
    teams = list(result.devices_held_by_team)
    entitlement = entitlement_shares(cluster, teams)
    top_class = _top_class(cluster, {job.priority for job in jobs})
    span = result.end
    jain_windowed, contended_windows = windowed_jain(result, entitlement, window_s)

    return PolicyMetrics(
        policy=result.policy,
        jobs=len(jobs),
        completed=len(completed),
        rejected=len(rejected),
        rejected_device_hours=sum(job.devices * job.duration for job in rejected) / 3600.0,
        unfinished=sum(1 for job in jobs if job.outcome is JobOutcome.UNFINISHED),
        completion_time=Distribution.of([job.completion_time for job in completed]),
        queueing_delay=Distribution.of([job.wait_s for job in started]),
        utilisation=integral(result.devices_held, span) / (result.capacity * span) if span > 0 and result.capacity else 0.0,
        jain_whole_run=_jain_whole_run(result, entitlement, span),
        jain_windowed=jain_windowed,
        contended_windows=contended_windows,
        window_s=window_s,
        preemptions=sum(job.preemptions for job in jobs),
        preempt_requests=result.preempt_requests,
        lost_device_hours=sum(job.lost_work_s * job.devices for job in jobs) / 3600.0,
        top_class=top_class,
        top_class_time_to_start=Distribution.of(
            [job.first_start - job.arrival for job in started if job.priority == top_class]
        ),
        span_s=span,
        schedule_calls=result.schedule_calls,
        events=result.events,
        wall_s=result.wall_s,
        policy_wall_s=result.policy_wall_s,
        teams=_team_metrics(result, entitlement, span),
    )


def _top_class(cluster: ClusterConfig, present: set[str]) -> str | None:
    classes = [c for c in cluster.priority_classes if c.name in present]
    return max(classes, key=lambda c: c.value).name if classes else None


def _team_metrics(result: SimulationResult, entitlement: dict[str, float], span: float) -> tuple[TeamMetrics, ...]:
    device_hours = {team: integral(series, span) / 3600.0 for team, series in result.devices_held_by_team.items()}
    total = sum(device_hours.values())
    jobs_by_team: dict[str, list[JobRecord]] = {team: [] for team in result.devices_held_by_team}
    for job in result.jobs:
        jobs_by_team[job.team].append(job)

    metrics = []
    for team in sorted(result.devices_held_by_team):
        jobs = jobs_by_team[team]
        done = [job for job in jobs if job.outcome is JobOutcome.COMPLETED]
        metrics.append(
            TeamMetrics(
                team=team,
                jobs=len(jobs),
                completed=len(done),
                completion_time=Distribution.of([job.completion_time for job in done]),
                queueing_delay=Distribution.of([job.wait_s for job in jobs if job.first_start is not None]),
                device_hours=device_hours[team],
                usage_share=device_hours[team] / total if total else 0.0,
                entitlement_share=entitlement[team],
            )
        )
    return tuple(metrics)


def _jain_whole_run(result: SimulationResult, entitlement: dict[str, float], span: float) -> float | None:
    usage = {team: integral(series, span) for team, series in result.devices_held_by_team.items()}
    total = sum(usage.values())
    ratios = [usage[team] / total / entitlement[team] for team in usage if entitlement[team] > 0 and usage[team] > 0]
    return jain_index(ratios) if total > 0 and ratios else None


def windowed_jain(
    result: SimulationResult, entitlement: dict[str, float], window_s: float
) -> tuple[float | None, int]:
    """Return the mean per-window Jain's index over windows with waiting demand, and their count.

    In each window, a team's fair share is the weighted max-min (water-filling)
    share of ``capacity * window_s`` device-seconds given its demand (held plus
    waiting device-seconds), weighted by entitlement. Teams with neither demand
    nor a fair share in the window are left out.
    """
    edges = window_edges(result.end, window_s)
    if len(edges) < 2:
        return None, 0

    teams = list(result.devices_held_by_team)
    held = np.array([np.diff(cumulative(result.devices_held_by_team[team], edges)) for team in teams])
    waiting = np.array([np.diff(cumulative(result.demand_by_team[team], edges)) for team in teams])
    weights = np.array([entitlement[team] for team in teams])
    capacities = result.capacity * np.diff(edges)

    indices = []
    for window in np.flatnonzero(waiting.sum(axis=0) > 1e-9):
        demand = held[:, window] + waiting[:, window]
        fair = water_fill(capacities[window], demand, weights)
        active = fair > 1e-9
        if active.sum() > 0 and held[active, window].sum() > 0:
            indices.append(jain_index(list(held[active, window] / fair[active])))
    return (float(np.mean(indices)) if indices else None), len(indices)


def water_fill(capacity: float, demand: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Split ``capacity`` by weighted max-min fairness: no team gets more than its demand.

    Teams of weight 0 share what is left, equally, after every weighted team has its demand.
    """
    share = np.zeros_like(demand, dtype=float)
    open_teams = (demand > 0) & (weights > 0)
    remaining = float(capacity)
    while open_teams.any() and remaining > 1e-9:
        level = remaining / weights[open_teams].sum()
        satisfied = open_teams & (demand - share <= weights * level + 1e-12)
        if not satisfied.any():
            share[open_teams] += weights[open_teams] * level
            remaining = 0.0
            break
        remaining -= float((demand[satisfied] - share[satisfied]).sum())
        share[satisfied] = demand[satisfied]
        open_teams &= ~satisfied

    unweighted = (demand > 0) & (weights == 0)
    if unweighted.any() and remaining > 1e-9:
        share[unweighted] = np.minimum(demand[unweighted], remaining / unweighted.sum())
    return share


def window_edges(end: float, window_s: float) -> np.ndarray:
    """Return window boundaries from 0 to ``end``; the last window may be shorter."""
    if end <= 0:
        return np.array([0.0])
    edges = np.arange(0.0, end, window_s)
    return np.append(edges, end)


def cumulative(series: StepSeries, at: np.ndarray) -> np.ndarray:
    """Return the integral of ``series`` from 0 to each time in ``at`` (value 0 before its first time)."""
    if not series.times:
        return np.zeros(len(at))
    times = np.asarray(series.times, dtype=float)
    values = np.asarray(series.values, dtype=float)
    area = np.concatenate(([0.0], np.cumsum(values[:-1] * np.diff(times))))
    index = np.searchsorted(times, at, side="right") - 1
    before = index < 0
    index = np.clip(index, 0, None)
    result = area[index] + values[index] * (at - times[index])
    result[before] = 0.0
    return result


def integral(series: StepSeries, end: float) -> float:
    """Return the integral of ``series`` from 0 to ``end``."""
    return float(cumulative(series, np.array([end]))[0])


def binned_mean(series: StepSeries, end: float, window_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Return window start times and the time-averaged value of ``series`` in each window."""
    edges = window_edges(end, window_s)
    if len(edges) < 2:
        return np.array([]), np.array([])
    return edges[:-1], np.diff(cumulative(series, edges)) / np.diff(edges)


def ratio(value: float | None, baseline: float | None) -> float | None:
    """Return ``value / baseline``, or ``None`` when either is missing or the baseline is 0."""
    if value is None or baseline is None or baseline == 0 or math.isnan(baseline):
        return None
    return value / baseline


__all__ = [
    "DEFAULT_WINDOW_S",
    "Distribution",
    "PolicyMetrics",
    "TeamMetrics",
    "binned_mean",
    "cumulative",
    "entitlement_shares",
    "integral",
    "jain_index",
    "ratio",
    "summarize",
    "water_fill",
    "window_edges",
]
