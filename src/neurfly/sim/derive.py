"""Fill in what a trace lacks (priority class, search, hardware) by a stated, seeded rule.

Values the trace gives are kept. The rule, in order:

1. Search: jobs of one team with the same device count form one search while
   each is submitted at most ``search_gap_s`` seconds after the previous one
   (a hyperparameter sweep submits its jobs in a burst). A job that starts no
   such chain is a search of its own.
2. Priority: a job in a search of two or more jobs gets ``search_class``.
   Every other job gets ``production_class`` with probability
   ``production_fraction``, drawn per job from a generator seeded with
   ``seed`` in trace order, and ``single_class`` otherwise.
3. Hardware: the hardware type of the cluster's pools with the most devices.

``Derivation.describe()`` states the rule with its numbers for the report.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from neurfly.core.cluster import ClusterConfig
from neurfly.sim.trace import TraceError, TraceJob

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DerivationRule:
    """Numbers of the rule that fills missing priorities, searches and hardware.

    Attributes:
        seed: Seed of the generator that draws production jobs.
        production_fraction: Probability that a job outside a multi-job search becomes production.
        search_gap_s: Maximum seconds between consecutive jobs of one derived search.
        production_class: Class name given to production jobs.
        search_class: Class name given to jobs of a multi-job search.
        single_class: Class name given to the other jobs.
    """

    seed: int = 0
    production_fraction: float = 0.10
    search_gap_s: float = 300.0
    production_class: str = "production"
    search_class: str = "search"
    single_class: str = "interactive"

    def __post_init__(self) -> None:
        if not 0.0 <= self.production_fraction <= 1.0:
            raise ValueError(f"production_fraction must be between 0 and 1, got {self.production_fraction}")
        if self.search_gap_s < 0:
            raise ValueError(f"search_gap_s must be 0 or more, got {self.search_gap_s}")


@dataclass(frozen=True, slots=True)
class Derivation:
    """Summary of the values the rule filled in, for the report.

    Attributes:
        rule: The rule applied.
        hardware: Hardware type given to jobs without one (``None`` if all had one).
        searches_derived: Number of searches formed for jobs without a search id.
        jobs_in_derived_searches: Jobs placed in a derived search of two or more jobs.
        priorities_derived: Count of derived priorities per class name.
    """

    rule: DerivationRule
    hardware: str | None
    searches_derived: int
    jobs_in_derived_searches: int
    priorities_derived: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """State the rule and what it filled in, as Markdown."""
        if not self.searches_derived and not self.priorities_derived and self.hardware is None:
            return "- Nothing was derived: the trace gives a priority, a search and a hardware type for every job."

        rule = self.rule
        lines = [
            f"- Search: jobs of one team with the same device count, each submitted at most "
            f"{rule.search_gap_s:g} s after the previous one, form one search; "
            f"{self.searches_derived} searches were derived, {self.jobs_in_derived_searches} jobs are in "
            "searches of two or more jobs.",
            f"- Priority: jobs in a search of two or more jobs get `{rule.search_class}`; each other job gets "
            f"`{rule.production_class}` with probability {rule.production_fraction:g} (seed {rule.seed}, drawn "
            f"in trace order), else `{rule.single_class}`. Derived: "
            + (", ".join(f"`{name}` {count}" for name, count in sorted(self.priorities_derived.items())) or "none")
            + ".",
        ]
        if self.hardware is not None:
            lines.append(f"- Hardware: jobs without one get `{self.hardware}`, the type with the most devices.")
        return "\n".join(lines)


def derive_missing(
    jobs: Sequence[TraceJob], cluster: ClusterConfig, rule: DerivationRule | None = None
) -> tuple[list[TraceJob], Derivation]:
    """Fill each job's missing search, priority and hardware by ``rule``.

    Args:
        jobs: Jobs in arrival order.
        cluster: The cluster whose priority classes and pools the jobs must match.
        rule: The rule; the defaults of ``DerivationRule`` when ``None``.

    Returns:
        The completed jobs, in the same order, and what was filled in.

    Raises:
        TraceError: A priority or hardware type (given or derived) is not in the cluster.
    """
    rule = rule or DerivationRule()
    search_ids, derived_searches = _derive_searches(jobs, rule)
    search_sizes = Counter(search_ids)
    hardware = _main_hardware(cluster) if any(job.hardware is None for job in jobs) else None
    draws = np.random.default_rng(rule.seed).random(len(jobs))

    completed: list[TraceJob] = []
    derived_priorities: Counter[str] = Counter()
    for index, job in enumerate(jobs):
        priority = job.priority
        if priority is None:
            priority = _derive_priority(search_sizes[search_ids[index]], draws[index], rule)
            derived_priorities[priority] += 1
        completed.append(
            replace(job, priority=priority, search_id=search_ids[index], hardware=job.hardware or hardware)
        )

    _check_against_cluster(completed, cluster)
    derivation = Derivation(
        rule=rule,
        hardware=hardware,
        searches_derived=len(derived_searches),
        jobs_in_derived_searches=sum(search_sizes[sid] for sid in derived_searches if search_sizes[sid] > 1),
        priorities_derived=dict(derived_priorities),
    )
    _logger.info("derived %d searches and %d priorities", len(derived_searches), sum(derived_priorities.values()))
    return completed, derivation


def _derive_searches(jobs: Sequence[TraceJob], rule: DerivationRule) -> tuple[list[str], set[str]]:
    """Return each job's search id (given or derived) and the set of derived ids."""
    search_ids = [job.search_id or "" for job in jobs]
    last_of_chain: dict[tuple[str, int], tuple[float, str]] = {}
    derived: set[str] = set()
    for index, job in enumerate(jobs):
        if job.search_id is not None:
            continue
        key = (job.team, job.devices)
        previous = last_of_chain.get(key)
        if previous is not None and job.arrival - previous[0] <= rule.search_gap_s:
            search_id = previous[1]
        else:
            search_id = f"derived-{len(derived) + 1}"
            derived.add(search_id)
        search_ids[index] = search_id
        last_of_chain[key] = (job.arrival, search_id)
    return search_ids, derived


def _derive_priority(search_size: int, draw: float, rule: DerivationRule) -> str:
    if search_size > 1:
        return rule.search_class
    if draw < rule.production_fraction:
        return rule.production_class
    return rule.single_class


def _main_hardware(cluster: ClusterConfig) -> str:
    devices: Counter[str] = Counter()
    for pool in cluster.pools:
        devices[pool.hardware] += pool.devices
    return min(devices, key=lambda hardware: (-devices[hardware], hardware))


def _check_against_cluster(jobs: Sequence[TraceJob], cluster: ClusterConfig) -> None:
    classes = {priority_class.name for priority_class in cluster.priority_classes}
    hardware_types = {pool.hardware for pool in cluster.pools}
    unknown_classes = sorted({job.priority for job in jobs if job.priority not in classes})
    unknown_hardware = sorted({job.hardware for job in jobs if job.hardware not in hardware_types})

    problems = []
    if unknown_classes:
        problems.append(f"priority class(es) {unknown_classes} are not in the cluster; it has {sorted(classes)}")
    if unknown_hardware:
        problems.append(
            f"hardware type(s) {unknown_hardware} match no pool of the cluster; its pools have {sorted(hardware_types)}"
        )
    if problems:
        raise TraceError("(after derivation)", problems)


__all__ = ["Derivation", "DerivationRule", "derive_missing"]
