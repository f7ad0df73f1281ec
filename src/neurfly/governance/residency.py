"""Data residency: the regions a search's data allows, and the pools that can serve it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from neurfly.core.cluster import ClusterConfig, PoolConfig
from neurfly.core.states import AttemptState
from neurfly.store import Attempt


@dataclass(frozen=True)
class Pinning:
    """One dataset's region constraint, and the route by which the search reaches it (for messages)."""

    dataset: str
    regions: tuple[str, ...]
    reached_as: str


def allowed_regions(pinnings: Iterable[Pinning]) -> frozenset[str] | None:
    """Return the regions every pinned dataset allows; ``None`` when no dataset is pinned."""
    allowed: frozenset[str] | None = None
    for pinning in pinnings:
        if not pinning.regions:
            continue
        regions = frozenset(pinning.regions)
        allowed = regions if allowed is None else allowed & regions
    return allowed


def residency_problems(pinnings: list[Pinning], cluster: ClusterConfig, hardware: str) -> list[str]:
    """Return why no pool of ``cluster`` may run this data, or an empty list when one may."""
    regions = allowed_regions(pinnings)
    if regions is None:
        return []
    pinned = [p for p in pinnings if p.regions]
    described = "; ".join(f"dataset {p.dataset} ({p.reached_as}) may be processed only in {', '.join(p.regions)}" for p in pinned)
    if not regions:
        return [f"data: the datasets share no region: {described}; use datasets with a common region"]
    if eligible_pools(cluster, hardware, regions):
        return []
    available = ", ".join(f"{p.name} ({p.region}, {p.hardware})" for p in cluster.pools)
    return [f"data: no {hardware} pool is in an allowed region: {described}; the pools available are {available}"]


def eligible_pools(cluster: ClusterConfig, hardware: str, regions: frozenset[str] | None) -> list[PoolConfig]:
    """Return the pools of ``hardware`` in ``regions`` (every region when ``None``)."""
    return [p for p in cluster.pools if p.hardware == hardware and (regions is None or p.region in regions)]


def busy_problems(session: Session, pinnings: list[Pinning], cluster: ClusterConfig, hardware: str, devices: int) -> list[str]:
    """Return why the search is rejected when every allowed pool lacks ``devices`` free devices now.

    Devices in use are those of attempts the store shows starting or running.
    """
    regions = allowed_regions(pinnings)
    if regions is None:
        return []
    pools = eligible_pools(cluster, hardware, regions)
    used = dict(session.execute(
        select(Attempt.pool, func.sum(Attempt.devices))
        .where(Attempt.state.in_([AttemptState.STARTING.value, AttemptState.RUNNING.value]))
        .group_by(Attempt.pool)
    ).all())
    free = {p.name: p.devices - int(used.get(p.name) or 0) for p in pools}
    if not pools or any(count >= devices for count in free.values()):
        return []
    states = ", ".join(f"{p.name} ({p.region}) {p.devices - free[p.name]}/{p.devices} devices in use" for p in pools)
    datasets = ", ".join(sorted({p.dataset for p in pinnings if p.regions}))
    return [
        f"data: every pool allowed for {datasets} is busy ({states}) and data.when_pools_busy is reject; "
        "submit again later, or set data.when_pools_busy: wait to queue until a pool frees up"
    ]
