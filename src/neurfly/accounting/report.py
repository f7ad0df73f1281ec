"""The cost report of a window: cost by team, search and pool, idle cost and waste.

This module is pure: ``build_report`` takes metered attempts and pool rates
and returns values. Money is in integer micro-units (see ``money``), and
the report keeps one identity exactly, pool by pool::

    sum of usage cost + idle cost == capacity cost

where a pool's capacity cost is its devices times the window's length at
its price, rounded once. Usage cost is rounded per attempt, and idle cost is
the remainder, so the identity is exact to the micro-unit and hence to the cent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from neurfly.accounting.metering import MeteredAttempt, WasteReason
from neurfly.accounting.money import cost_micros, format_micros, split_proportionally, to_decimal
from neurfly.accounting.pricing import PoolRate
from neurfly.core.cluster import IdleCostPolicy

_logger = logging.getLogger(__name__)

_ZERO = Decimal(0)
# Team name of idle cost that no team pays.
PLATFORM = "(platform)"


@dataclass(frozen=True, slots=True)
class UsageLine:
    """Cost of one search's attempts on one pool.

    Attributes:
        team: Team of the search.
        search_id: Search id.
        search_name: Search name.
        pool: Pool name.
        device_seconds: Device-seconds billed inside the window.
        cost_micros: Cost of those device-seconds.
        running_micros: The part of ``cost_micros`` from attempts still running.
        waste_device_seconds: Wasted device-seconds of attempts that ended inside the window.
        waste_micros: Cost of that waste, shown apart (it is part of ``cost_micros``).
        attempts: Attempts that contributed.
    """

    team: str
    search_id: int
    search_name: str
    pool: str
    device_seconds: Decimal
    cost_micros: int
    running_micros: int
    waste_device_seconds: Decimal
    waste_micros: int
    attempts: int


@dataclass(frozen=True, slots=True)
class PoolLine:
    """Capacity, usage and idle cost of one pool over the window.

    ``idle_micros`` is ``capacity_micros - used_micros``. It is negative only
    when the records claim more device-seconds than the pool has, which the
    report lists under ``warnings``.
    """

    pool: str
    hardware: str
    devices: int
    price_per_device_hour: Decimal
    capacity_device_seconds: Decimal
    used_device_seconds: Decimal
    idle_device_seconds: Decimal
    capacity_micros: int
    used_micros: int
    idle_micros: int


@dataclass(frozen=True, slots=True)
class TeamLine:
    """A team's total over the window.

    ``total_micros`` is ``usage_micros + idle_share_micros``; the idle share
    is 0 unless the cluster's ``idle_cost_policy`` is ``shared``.
    """

    team: str
    device_seconds: Decimal
    usage_micros: int
    running_micros: int
    idle_share_micros: int
    total_micros: int
    waste_device_seconds: Decimal
    waste_micros: int


@dataclass(frozen=True, slots=True)
class WasteLine:
    """Wasted progress, by the team that lost it and by the request that caused it."""

    team: str
    reason: WasteReason
    cause_team: str
    cause_priority: str
    device_seconds: Decimal
    cost_micros: int
    attempts: int


@dataclass(frozen=True, slots=True)
class CostReport:
    """Costs of one window ``[since, end)``, where ``end = min(until, now)``.

    Attributes:
        since: Start of the window, seconds since the epoch.
        until: End of the window asked for.
        end: End of the metered part: ``until``, or ``now`` when the window has not ended yet.
        now: Time of the report; running attempts are metered up to it.
        idle_cost_policy: Who pays idle devices.
        teams: One line per team, by name.
        usage: One line per search and pool.
        pools: One line per pool of the cluster, plus pools only the records name.
        waste: One line per team, reason and cause.
        idle_shares: Idle cost shared to each team per pool (``shared`` policy only).
        platform_idle_micros: Idle cost that no team pays.
        warnings: Records the report could not price or that break an invariant.
    """

    since: float
    until: float
    end: float
    now: float
    idle_cost_policy: IdleCostPolicy
    teams: tuple[TeamLine, ...]
    usage: tuple[UsageLine, ...]
    pools: tuple[PoolLine, ...]
    waste: tuple[WasteLine, ...]
    idle_shares: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    platform_idle_micros: int = 0
    warnings: tuple[str, ...] = ()

    @property
    def total_micros(self) -> int:
        """Usage cost of every team plus every idle cost: the capacity cost of the cluster."""
        return sum(t.total_micros for t in self.teams) + self.platform_idle_micros

    def searches(self) -> list[dict[str, Any]]:
        """Return the usage lines summed over pools, one per search."""
        by_search: dict[int, dict[str, Any]] = {}
        for line in self.usage:
            row = by_search.setdefault(line.search_id, {
                "team": line.team, "search_id": line.search_id, "search": line.search_name,
                "device_seconds": _ZERO, "cost_micros": 0, "running_micros": 0, "waste_micros": 0, "attempts": 0,
            })
            row["device_seconds"] += line.device_seconds
            row["cost_micros"] += line.cost_micros
            row["running_micros"] += line.running_micros
            row["waste_micros"] += line.waste_micros
            row["attempts"] += line.attempts
        return [by_search[key] for key in sorted(by_search)]


def build_report(
    metered: Iterable[MeteredAttempt],
    rates: Mapping[str, PoolRate],
    since: float,
    until: float,
    now: float,
    idle_cost_policy: IdleCostPolicy = IdleCostPolicy.PLATFORM,
) -> CostReport:
    """Price metered attempts and add idle cost, pool by pool.

    Args:
        metered: Output of ``metering.meter`` for the same window and ``now``.
        rates: Rate of every pool of the cluster, by name.
        since: Start of the window.
        until: End of the window asked for.
        now: Time of the report.
        idle_cost_policy: ``platform`` keeps idle cost apart; ``shared``
            splits each pool's idle cost over the teams in proportion to
            their usage cost in that pool.

    Returns:
        The report. Attempts on a pool missing from ``rates`` are priced at 0 and named in ``warnings``.
    """
    metered = list(metered)
    end = max(since, min(until, now))
    warnings: list[str] = []
    usage = _usage_lines(metered, rates, warnings)
    pools = _pool_lines(usage, rates, to_decimal(end) - to_decimal(since), warnings)
    idle_shares, platform_idle = _idle_shares(usage, pools, idle_cost_policy, warnings)
    return CostReport(
        since=since,
        until=until,
        end=end,
        now=now,
        idle_cost_policy=idle_cost_policy,
        teams=_team_lines(usage, idle_shares),
        usage=tuple(sorted(usage, key=lambda u: (u.team, u.search_id, u.pool))),
        pools=pools,
        waste=_waste_lines(metered, rates),
        idle_shares=idle_shares,
        platform_idle_micros=platform_idle,
        warnings=tuple(warnings),
    )


def _price(rates: Mapping[str, PoolRate], pool: str) -> Decimal:
    rate = rates.get(pool)
    return rate.price_per_device_hour if rate is not None else _ZERO


def _usage_lines(metered: Iterable[MeteredAttempt], rates: Mapping[str, PoolRate], warnings: list[str]) -> list[UsageLine]:
    sums: dict[tuple[str, int, str], dict[str, Any]] = {}
    names: dict[int, str] = {}
    unpriced: set[str] = set()
    for item in metered:
        record = item.record
        if record.pool not in rates:
            unpriced.add(record.pool)
        price = _price(rates, record.pool)
        cost = cost_micros(item.device_seconds, price)
        names[record.search_id] = record.search_name
        entry = sums.setdefault((record.team, record.search_id, record.pool), {
            "device_seconds": _ZERO, "cost": 0, "running": 0, "waste_ds": _ZERO, "waste": 0, "attempts": 0,
        })
        entry["device_seconds"] += item.device_seconds
        entry["cost"] += cost
        entry["running"] += cost if item.running else 0
        entry["waste_ds"] += item.waste_device_seconds
        entry["waste"] += cost_micros(item.waste_device_seconds, price)
        entry["attempts"] += 1
    for pool in sorted(unpriced):
        warnings.append(f"pool {pool!r} is not in the cluster file, so its attempts are priced at 0; add the pool with its price_per_device_hour")

    return [
        UsageLine(team, search_id, names[search_id], pool, e["device_seconds"], e["cost"], e["running"], e["waste_ds"], e["waste"], e["attempts"])
        for (team, search_id, pool), e in sums.items()
    ]


def _pool_lines(usage: list[UsageLine], rates: Mapping[str, PoolRate], window_s: Decimal, warnings: list[str]) -> tuple[PoolLine, ...]:
    lines = []
    for name in sorted(set(rates) | {u.pool for u in usage}):
        rate = rates.get(name)
        devices = rate.devices if rate is not None else 0
        price = rate.price_per_device_hour if rate is not None else _ZERO
        capacity_ds = devices * window_s
        used_ds = sum((u.device_seconds for u in usage if u.pool == name), _ZERO)
        used = sum(u.cost_micros for u in usage if u.pool == name)
        capacity = cost_micros(capacity_ds, price)
        if used_ds > capacity_ds and rate is not None:
            warnings.append(
                f"pool {name!r}: the attempt records hold {used_ds:.0f} device-seconds but the pool has "
                f"{capacity_ds:.0f} in this window; check the pool's devices in the cluster file"
            )
        lines.append(PoolLine(
            pool=name, hardware=rate.hardware if rate is not None else "?", devices=devices, price_per_device_hour=price,
            capacity_device_seconds=capacity_ds, used_device_seconds=used_ds, idle_device_seconds=capacity_ds - used_ds,
            capacity_micros=capacity, used_micros=used, idle_micros=capacity - used,
        ))
    return tuple(lines)


def _idle_shares(
    usage: list[UsageLine], pools: tuple[PoolLine, ...], policy: IdleCostPolicy, warnings: list[str]
) -> tuple[dict[str, dict[str, int]], int]:
    """Split idle cost per the policy; return shares by team and pool, and the platform's part."""
    shares: dict[str, dict[str, int]] = {}
    platform = 0
    for pool in pools:
        weights: dict[str, int] = {}
        for line in usage:
            if line.pool == pool.pool and line.cost_micros > 0:
                weights[line.team] = weights.get(line.team, 0) + line.cost_micros
        if policy is not IdleCostPolicy.SHARED or not weights or pool.idle_micros <= 0:
            platform += pool.idle_micros
            if policy is IdleCostPolicy.SHARED and pool.idle_micros > 0 and not weights:
                _logger.debug("pool %s had no usage to share its idle cost over; the platform keeps it", pool.pool)
            continue
        for team, part in split_proportionally(pool.idle_micros, weights).items():
            shares.setdefault(team, {})[pool.pool] = part
    if policy is IdleCostPolicy.SHARED and platform > 0:
        warnings.append(f"idle cost of {format_micros(platform)} stays with the platform: no team used those pools in this window")
    return shares, platform


def _team_lines(usage: list[UsageLine], idle_shares: Mapping[str, Mapping[str, int]]) -> tuple[TeamLine, ...]:
    lines = []
    for team in sorted({u.team for u in usage} | set(idle_shares)):
        own = [u for u in usage if u.team == team]
        usage_micros = sum(u.cost_micros for u in own)
        idle_share = sum(idle_shares.get(team, {}).values())
        lines.append(TeamLine(
            team=team,
            device_seconds=sum((u.device_seconds for u in own), _ZERO),
            usage_micros=usage_micros,
            running_micros=sum(u.running_micros for u in own),
            idle_share_micros=idle_share,
            total_micros=usage_micros + idle_share,
            waste_device_seconds=sum((u.waste_device_seconds for u in own), _ZERO),
            waste_micros=sum(u.waste_micros for u in own),
        ))
    return tuple(lines)


def _waste_lines(metered: Iterable[MeteredAttempt], rates: Mapping[str, PoolRate]) -> tuple[WasteLine, ...]:
    sums: dict[tuple[str, WasteReason, str, str], list] = {}
    for item in metered:
        if item.cause is None or item.waste_device_seconds <= 0:
            continue
        key = (item.record.team, item.cause.reason, item.cause.team, item.cause.priority)
        entry = sums.setdefault(key, [_ZERO, 0, 0])
        entry[0] += item.waste_device_seconds
        entry[1] += cost_micros(item.waste_device_seconds, _price(rates, item.record.pool))
        entry[2] += 1
    return tuple(
        WasteLine(team, reason, cause_team, cause_priority, ds, cost, count)
        for (team, reason, cause_team, cause_priority), (ds, cost, count) in sorted(sums.items(), key=lambda kv: (kv[0][0], kv[0][1].value, kv[0][2], kv[0][3]))
    )


__all__ = ["PLATFORM", "CostReport", "PoolLine", "TeamLine", "UsageLine", "WasteLine", "build_report"]
