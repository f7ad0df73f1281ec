"""Load a trace and a cluster, and run one simulation per policy.

The CLI and the benchmark call these functions; each step logs what it did.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import yaml

from neurfly.core.cluster import ClusterConfig, parse_cluster
from neurfly.core.scheduling.base import policies
from neurfly.errors import NotFoundError, SpecError
from neurfly.sim.engine import PolicyContractError, SimulationConfig, Simulator
from neurfly.sim.philly import is_philly_csv, read_philly
from neurfly.sim.results import SimulationResult
from neurfly.sim.trace import TraceJob, read_trace

_logger = logging.getLogger(__name__)

ALL_POLICIES = "all"
PACKAGED_CLUSTERS = ("philly", "automl")


@dataclass(frozen=True, slots=True)
class PolicyRun:
    """One policy's outcome: a result, or the error that stopped it."""

    policy: str
    result: SimulationResult | None
    error: str = ""


def load_cluster(name_or_path: str | Path) -> tuple[ClusterConfig, str]:
    """Load a cluster file, or a packaged cluster by name (``philly``, ``automl``).

    Returns:
        The validated cluster and where it came from.

    Raises:
        NotFoundError: No such file and no packaged cluster of that name.
        SpecError: The file is not YAML or not a valid cluster.
    """
    path = Path(name_or_path)
    if path.is_file():
        text, source = path.read_text(encoding="utf-8"), str(path)
    elif str(name_or_path) in PACKAGED_CLUSTERS:
        resource = resources.files("neurfly.sim").joinpath("clusters", f"{name_or_path}.yaml")
        text, source = resource.read_text(encoding="utf-8"), f"packaged cluster {name_or_path!r}"
    else:
        raise NotFoundError("cluster file", str(name_or_path), f"give a path or one of {list(PACKAGED_CLUSTERS)}")

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError([f"not valid YAML: {exc}"], source) from None
    if not isinstance(document, dict):
        raise SpecError([f"expected a mapping at the top level, got {type(document).__name__}"], source)
    return parse_cluster(document, source), source


def load_trace(path: str | Path, limit: int | None = None) -> list[TraceJob]:
    """Read a neutral trace, or a Philly CSV (detected by its header) converted to the neutral format.

    Raises:
        TraceError: The file is missing or invalid.
        ValueError: ``limit`` is less than 1.
    """
    if is_philly_csv(path):
        _logger.info("%s has the Philly columns; converting it", path)
        return read_philly(path, limit)
    return read_trace(path, limit)


def scale_arrivals(jobs: Sequence[TraceJob], factor: float) -> list[TraceJob]:
    """Multiply every gap between the first arrival and a job's arrival by ``factor``.

    A factor of 0.5 submits the same jobs twice as fast, which doubles the load.

    Raises:
        ValueError: ``factor`` is not positive.
    """
    if factor <= 0:
        raise ValueError(f"arrival scale must be more than 0, got {factor}")
    if factor == 1 or not jobs:
        return list(jobs)
    first = min(job.arrival for job in jobs)
    return [replace(job, arrival=first + (job.arrival - first) * factor) for job in jobs]


def resolve_policies(names: Sequence[str]) -> list[str]:
    """Expand ``all`` to every registered policy and drop repeats, keeping order.

    Raises:
        NotFoundError: A name is not a registered policy; the message lists the known ones.
    """
    resolved: list[str] = []
    for name in names or ["default"]:
        for expanded in policies.names() if name == ALL_POLICIES else [name]:
            if expanded not in resolved:
                policies.get(expanded)
                resolved.append(expanded)
    return resolved


def run_policies(
    jobs: Sequence[TraceJob],
    cluster: ClusterConfig,
    policy_names: Sequence[str],
    config: SimulationConfig | None = None,
) -> list[PolicyRun]:
    """Simulate ``jobs`` once per policy; a policy that breaks its contract is reported, not raised.

    Args:
        jobs: Jobs with priority, search id and hardware filled in.
        cluster: The cluster to simulate.
        policy_names: Registered policy names, already resolved.
        config: Checkpoint interval, grace period and validation.

    Returns:
        One ``PolicyRun`` per name, in order.
    """
    runs = []
    for name in policy_names:
        policy = policies.get(name)()
        try:
            result = Simulator(cluster, policy, config, policy_name=name).run(jobs)
        except PolicyContractError as exc:
            _logger.error("policy %r stopped the simulation: %s", name, exc)
            runs.append(PolicyRun(name, None, str(exc)))
            continue
        runs.append(PolicyRun(name, result))
    return runs


__all__ = [
    "ALL_POLICIES",
    "PACKAGED_CLUSTERS",
    "PolicyRun",
    "load_cluster",
    "load_trace",
    "resolve_policies",
    "run_policies",
    "scale_arrivals",
]
