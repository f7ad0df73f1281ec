"""Cluster state: pools, nodes, running attempts, per-team usage and utilisation over time.

Devices held by teams the caller cannot see are counted, so utilisation adds
up, but their team, search and attempt are hidden.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from neurfly.api.access import Access, Caller, Context, access, team_visible
from neurfly.api.queries import attempt_row, trial_numbers
from neurfly.api.schemas import ClusterState, Utilisation
from neurfly.auth import Principal
from neurfly.controller.lease import Lease
from neurfly.core.cluster import ClusterConfig
from neurfly.core.states import AttemptState
from neurfly.store import Attempt, Search

router = APIRouter(tags=["cluster"])

_OPEN_STATES = (AttemptState.STARTING.value, AttemptState.RUNNING.value)
# Maximum window of the usage views, in seconds.
MAX_WINDOW_S = 31 * 86400.0
MAX_BUCKETS = 500

WindowSeconds = Annotated[float, Query(ge=1.0, le=MAX_WINDOW_S, description="Length of the window, in seconds.")]


@router.get("/cluster", response_model=ClusterState, openapi_extra=access(Access.USER))
def cluster_state(ctx: Context, who: Caller, window_s: WindowSeconds = 3600.0) -> dict[str, Any]:
    """Show pools and nodes with the slots in use now, running attempts, per-team usage and the controller."""
    now = time.time()
    with ctx.store.session() as session:
        running = _attempts_in(session, now, now, open_only=True)
        recent = _attempts_in(session, now - window_s, now)
        numbers = trial_numbers(session, [a.trial_id for a, team in running if team_visible(who, team)])
        holder = Lease().holder(session, now)

    supervisor = ctx.supervisor
    return {
        "now": now,
        "window_s": window_s,
        "pools": _pools(ctx.cluster, running, who),
        "usage": _usage(running, recent, who, now - window_s, now),
        "running_attempts": [attempt_row(a, numbers.get(a.trial_id, -1)) for a, team in running if team_visible(who, team)],
        "controller": {
            "running": holder is not None,
            "holder": holder if who.platform_admin else None,
            "in_this_process": supervisor is not None and supervisor.leading,
        },
    }


@router.get("/cluster/utilisation", response_model=Utilisation, openapi_extra=access(Access.USER))
def utilisation(
    ctx: Context,
    who: Caller,
    window_s: WindowSeconds = 3600.0,
    buckets: Annotated[int, Query(ge=1, le=MAX_BUCKETS, description="Number of time buckets.")] = 60,
    until: Annotated[float | None, Query(ge=0, le=1e11, description="End of the window, seconds since the epoch; default: now.")] = None,
) -> dict[str, Any]:
    """Average devices in use per team and pool in each time bucket of a window."""
    end = time.time() if until is None else until
    start = end - window_s
    if start < 0:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"the window starts before 1970 ({start}); make window_s at most {end}")
    width = window_s / buckets
    with ctx.store.session() as session:
        rows = _attempts_in(session, start, end)

    totals: dict[tuple[str | None, str], list[float]] = defaultdict(lambda: [0.0] * buckets)
    for attempt, team in rows:
        series = totals[(team if team_visible(who, team) else None, attempt.pool)]
        _spread(series, attempt.devices, max(attempt.started_at, start), min(attempt.ended_at or end, end), start, width)
    return {
        "since": start,
        "until": end,
        "bucket_s": width,
        "buckets": [start + i * width for i in range(buckets)],
        "capacity": {pool.name: pool.devices for pool in ctx.cluster.pools},
        "series": [
            {"team": team, "pool": pool, "devices": [held / width for held in series]}
            for (team, pool), series in sorted(totals.items(), key=lambda item: (item[0][0] is None, item[0][0] or "", item[0][1]))
        ],
    }


def _spread(series: list[float], devices: int, begin: float, end: float, start: float, width: float) -> None:
    """Add ``devices`` x seconds held from ``begin`` to ``end`` into the buckets they overlap."""
    if end <= begin:
        return
    first = max(0, int((begin - start) // width))
    last = min(len(series) - 1, int(math.ceil((end - start) / width)) - 1)
    for index in range(first, last + 1):
        low = start + index * width
        overlap = min(end, low + width) - max(begin, low)
        if overlap > 0:
            series[index] += devices * overlap


def _attempts_in(session: Session, start: float, end: float, open_only: bool = False) -> list[tuple[Attempt, str]]:
    """Attempts that held devices at some time in [start, end], with their team."""
    query = select(Attempt, Search.team).join(Search, Search.id == Attempt.search_id)
    if open_only:
        query = query.where(Attempt.state.in_(_OPEN_STATES), Attempt.ended_at.is_(None))
    else:
        query = query.where(Attempt.started_at <= end, or_(Attempt.ended_at.is_(None), Attempt.ended_at >= start))
    return [(attempt, team) for attempt, team in session.execute(query.order_by(Attempt.id)).all()]


def _pools(cluster: ClusterConfig, running: list[tuple[Attempt, str]], who: Principal) -> list[dict[str, Any]]:
    by_node: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for attempt, team in running:
        shown = team_visible(who, team)
        for slot in attempt.slots:
            by_node[attempt.node].append({
                "slot": slot,
                "attempt_id": attempt.id if shown else None,
                "search_id": attempt.search_id if shown else None,
                "team": team if shown else None,
            })
    pools = []
    for pool in cluster.pools:
        nodes = [{"name": n.name, "devices": n.devices, "in_use": sorted(by_node.get(n.name, []), key=lambda u: u["slot"])} for n in pool.nodes]
        pools.append({
            "name": pool.name,
            "region": pool.region,
            "hardware": pool.hardware,
            "price_per_device_hour": pool.price_per_device_hour,
            "devices": pool.devices,
            "devices_in_use": sum(len(node["in_use"]) for node in nodes),
            "nodes": nodes,
        })
    return pools


def _usage(running: list[tuple[Attempt, str]], recent: list[tuple[Attempt, str]], who: Principal, start: float, end: float) -> list[dict[str, Any]]:
    in_use: dict[str | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    seconds: dict[str | None, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for attempt, team in running:
        in_use[team if team_visible(who, team) else None][attempt.pool] += attempt.devices
    for attempt, team in recent:
        held = min(attempt.ended_at or end, end) - max(attempt.started_at, start)
        seconds[team if team_visible(who, team) else None][attempt.pool] += attempt.devices * max(0.0, held)
    teams = sorted(set(in_use) | set(seconds), key=lambda t: (t is None, t or ""))
    return [{"team": t, "devices_in_use": dict(in_use.get(t, {})), "device_seconds": dict(seconds.get(t, {}))} for t in teams]
