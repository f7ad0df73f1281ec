"""A cost report as JSON-ready values and as CSV line items for chargeback."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from neurfly.accounting.budgeting import format_time
from neurfly.accounting.money import format_micros
from neurfly.accounting.report import PLATFORM, CostReport

CSV_COLUMNS = (
    "period_start", "period_end", "kind", "team", "search_id", "search", "pool", "device_hours", "amount",
)


def _hours(device_seconds: Decimal) -> str:
    return f"{device_seconds / 3600:.6f}"


def _money(micros: int) -> str:
    return format_micros(micros, 6)


def report_to_dict(report: CostReport) -> dict[str, Any]:
    """Describe ``report`` as JSON-ready values, with amounts as decimal text of six decimals."""
    return {
        "since": format_time(report.since),
        "until": format_time(report.until),
        "end": format_time(report.end),
        "now": format_time(report.now),
        "idle_cost_policy": report.idle_cost_policy.value,
        "total": _money(report.total_micros),
        "platform_idle": _money(report.platform_idle_micros),
        "teams": [
            {
                "team": t.team, "device_hours": _hours(t.device_seconds), "usage": _money(t.usage_micros),
                "running": _money(t.running_micros), "idle_share": _money(t.idle_share_micros), "total": _money(t.total_micros),
                "waste_device_hours": _hours(t.waste_device_seconds), "waste": _money(t.waste_micros),
            }
            for t in report.teams
        ],
        "searches": [
            {
                "team": s["team"], "search_id": s["search_id"], "search": s["search"], "device_hours": _hours(s["device_seconds"]),
                "cost": _money(s["cost_micros"]), "running": _money(s["running_micros"]), "waste": _money(s["waste_micros"]),
                "attempts": s["attempts"],
            }
            for s in report.searches()
        ],
        "pools": [
            {
                "pool": p.pool, "hardware": p.hardware, "devices": p.devices, "price_per_device_hour": str(p.price_per_device_hour),
                "capacity_device_hours": _hours(p.capacity_device_seconds), "used_device_hours": _hours(p.used_device_seconds),
                "idle_device_hours": _hours(p.idle_device_seconds), "capacity": _money(p.capacity_micros),
                "used": _money(p.used_micros), "idle": _money(p.idle_micros),
            }
            for p in report.pools
        ],
        "usage": [
            {
                "team": u.team, "search_id": u.search_id, "search": u.search_name, "pool": u.pool,
                "device_hours": _hours(u.device_seconds), "cost": _money(u.cost_micros), "running": _money(u.running_micros),
                "waste_device_hours": _hours(u.waste_device_seconds), "waste": _money(u.waste_micros), "attempts": u.attempts,
            }
            for u in report.usage
        ],
        "waste": [
            {
                "team": w.team, "reason": w.reason.value, "cause_team": w.cause_team, "cause_priority": w.cause_priority,
                "device_hours": _hours(w.device_seconds), "cost": _money(w.cost_micros), "attempts": w.attempts,
            }
            for w in report.waste
        ],
        "warnings": list(report.warnings),
    }


def report_csv_rows(report: CostReport) -> list[dict[str, str]]:
    """Return the chargeback line items of ``report``, keyed by ``CSV_COLUMNS``.

    The ``amount`` column adds up to the capacity cost of every pool:
    ``usage`` rows per search and pool, ``idle_share`` rows per team and pool
    (``shared`` policy), and ``idle`` rows per pool that the platform keeps.
    """
    start, end = format_time(report.since), format_time(report.end)
    rows = []
    for u in report.usage:
        rows.append(_row(start, end, "usage", u.team, str(u.search_id), u.search_name, u.pool, _hours(u.device_seconds), u.cost_micros))
    for team in sorted(report.idle_shares):
        for pool, micros in sorted(report.idle_shares[team].items()):
            rows.append(_row(start, end, "idle_share", team, "", "", pool, "", micros))
    shared = {pool for shares in report.idle_shares.values() for pool in shares}
    for pool in report.pools:
        if pool.pool not in shared and pool.idle_micros != 0:
            rows.append(_row(start, end, "idle", PLATFORM, "", "", pool.pool, _hours(pool.idle_device_seconds), pool.idle_micros))
    return rows


def _row(start: str, end: str, kind: str, team: str, search_id: str, search: str, pool: str, hours: str, micros: int) -> dict[str, str]:
    values = (start, end, kind, team, search_id, search, pool, hours, _money(micros))
    return dict(zip(CSV_COLUMNS, values, strict=True))


__all__ = ["CSV_COLUMNS", "report_csv_rows", "report_to_dict"]
