"""A seeded generator of AutoML workloads: ASHA searches mixed with long production jobs.

Searches arrive as a Poisson process. Each search submits all its trials at
once with a ``max_concurrent`` limit, as a search with a fixed number of
workers does, so the policy's search limit decides how many run at a time.
A trial's duration follows ASHA (asynchronous successive halving): rungs sit
at ``min_epochs * reduction_factor ** k`` epochs up to ``max_epochs``, and a
trial that reached rung ``k`` goes on to the next with probability
``1 / reduction_factor``. Most trials stop at the first rung and a few run to
the maximum. A promoted trial is modelled as running straight on to the rung
where it stops, without a pause in between.

Production jobs arrive as a second Poisson process, need several devices,
and run for hours (log-normal durations).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from neurfly.sim.trace import TraceJob

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AutoMLWorkload:
    """Shape of a generated AutoML workload.

    Attributes:
        teams: Teams that own searches and production jobs, chosen uniformly.
        horizon_s: Seconds during which searches and production jobs arrive.
        searches_per_hour: Mean arrival rate of searches.
        trials_per_search: Trials each search submits.
        max_concurrent: Running attempts allowed per search.
        trial_devices: Devices each trial needs.
        epoch_s: Mean seconds per epoch of a trial; each trial draws its own within +-20 %.
        min_epochs: Epochs at the first rung.
        max_epochs: Epochs of a trial that is never stopped early.
        reduction_factor: ASHA's reduction factor (eta), 2 or more.
        production_per_hour: Mean arrival rate of production jobs.
        production_devices: Device counts of production jobs, chosen uniformly.
        production_median_s: Median duration of a production job.
        production_sigma: Sigma of the log-normal production duration.
        search_class: Priority class of trials.
        production_class: Priority class of production jobs.
        hardware: Hardware type of every job, or ``None`` to leave it to derivation.
    """

    teams: tuple[str, ...] = ("vision", "speech", "ranking", "research")
    horizon_s: float = 2 * 24 * 3600.0
    searches_per_hour: float = 3.0
    trials_per_search: int = 64
    max_concurrent: int = 16
    trial_devices: int = 1
    epoch_s: float = 300.0
    min_epochs: int = 1
    max_epochs: int = 27
    reduction_factor: int = 3
    production_per_hour: float = 1.5
    production_devices: tuple[int, ...] = (4, 8)
    production_median_s: float = 6 * 3600.0
    production_sigma: float = 0.8
    search_class: str = "search"
    production_class: str = "production"
    hardware: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if not self.teams:
            problems.append("teams must not be empty")
        for name in ("horizon_s", "epoch_s"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be more than 0, got {getattr(self, name)}")
        for name in ("searches_per_hour", "production_per_hour", "production_sigma"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be 0 or more, got {getattr(self, name)}")
        for name in ("trials_per_search", "max_concurrent", "trial_devices", "min_epochs"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be 1 or more, got {getattr(self, name)}")
        if self.max_epochs < self.min_epochs:
            problems.append(f"max_epochs ({self.max_epochs}) must be at least min_epochs ({self.min_epochs})")
        if self.reduction_factor < 2:
            problems.append(f"reduction_factor must be 2 or more, got {self.reduction_factor}")
        if not self.production_devices or min(self.production_devices) < 1:
            problems.append(f"production_devices must be counts of 1 or more, got {self.production_devices}")
        if problems:
            raise ValueError("invalid AutoML workload: " + "; ".join(problems))

    def rungs(self) -> list[int]:
        """Return the epochs at each rung, from ``min_epochs`` up to ``max_epochs``."""
        rungs = [self.min_epochs]
        while rungs[-1] * self.reduction_factor < self.max_epochs:
            rungs.append(rungs[-1] * self.reduction_factor)
        if rungs[-1] != self.max_epochs:
            rungs.append(self.max_epochs)
        return rungs


def generate_automl_trace(workload: AutoMLWorkload | None = None, seed: int = 0) -> list[TraceJob]:
    """Generate searches and production jobs in the neutral format, sorted by arrival.

    Args:
        workload: The workload shape; the defaults of ``AutoMLWorkload`` when ``None``.
        seed: Seed of the random generator; equal seeds give equal traces.

    Returns:
        The jobs, arrivals in seconds from 0, with ``search_id``, ``priority`` and ``max_concurrent`` set.
    """
    workload = workload or AutoMLWorkload()
    rng = np.random.default_rng(seed)
    jobs = _searches(workload, rng) + _production_jobs(workload, rng)
    jobs.sort(key=lambda job: (job.arrival, job.job_id))
    _logger.info("generated %d AutoML jobs (seed %d)", len(jobs), seed)
    return jobs


def _poisson_times(rate_per_hour: float, horizon_s: float, rng: np.random.Generator) -> list[float]:
    if rate_per_hour == 0:
        return []
    count = rng.poisson(rate_per_hour * horizon_s / 3600.0)
    return sorted(float(time) for time in rng.uniform(0.0, horizon_s, size=count))


def _searches(workload: AutoMLWorkload, rng: np.random.Generator) -> list[TraceJob]:
    rungs = workload.rungs()
    stop_probabilities = _rung_stop_probabilities(len(rungs), workload.reduction_factor)
    jobs: list[TraceJob] = []
    for number, arrival in enumerate(_poisson_times(workload.searches_per_hour, workload.horizon_s, rng), start=1):
        team = workload.teams[rng.integers(len(workload.teams))]
        stop_rungs = rng.choice(len(rungs), size=workload.trials_per_search, p=stop_probabilities)
        epoch_lengths = workload.epoch_s * rng.uniform(0.8, 1.2, size=workload.trials_per_search)
        for trial, (rung, epoch_s) in enumerate(zip(stop_rungs, epoch_lengths, strict=True), start=1):
            jobs.append(
                TraceJob(
                    arrival=round(arrival, 3),
                    team=team,
                    devices=workload.trial_devices,
                    duration=round(rungs[rung] * float(epoch_s), 3),
                    priority=workload.search_class,
                    search_id=f"search-{number}",
                    hardware=workload.hardware,
                    max_concurrent=workload.max_concurrent,
                    job_id=f"search-{number}-trial-{trial}",
                )
            )
    return jobs


def _rung_stop_probabilities(rung_count: int, reduction_factor: int) -> list[float]:
    """Return the probability that a trial stops at each rung under ASHA's promotion rate."""
    promote = 1.0 / reduction_factor
    probabilities = [(1.0 - promote) * promote**rung for rung in range(rung_count - 1)]
    probabilities.append(promote ** (rung_count - 1))
    return probabilities


def _production_jobs(workload: AutoMLWorkload, rng: np.random.Generator) -> list[TraceJob]:
    jobs: list[TraceJob] = []
    mu = math.log(workload.production_median_s)
    for number, arrival in enumerate(_poisson_times(workload.production_per_hour, workload.horizon_s, rng), start=1):
        team = workload.teams[rng.integers(len(workload.teams))]
        devices = workload.production_devices[rng.integers(len(workload.production_devices))]
        duration = float(rng.lognormal(mu, workload.production_sigma))
        jobs.append(
            TraceJob(
                arrival=round(arrival, 3),
                team=team,
                devices=int(devices),
                duration=round(max(duration, 1.0), 3),
                priority=workload.production_class,
                search_id=f"production-{number}",
                hardware=workload.hardware,
                job_id=f"production-{number}",
            )
        )
    return jobs


__all__ = ["AutoMLWorkload", "generate_automl_trace"]
