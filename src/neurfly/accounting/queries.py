"""Cost reports from the store: the entry point for the CLI, the API and monitoring."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from neurfly.accounting.budgeting import month_period
from neurfly.accounting.metering import meter
from neurfly.accounting.pricing import pool_rates
from neurfly.accounting.records import controller_running, load_causes, load_records, open_session
from neurfly.accounting.report import CostReport, build_report
from neurfly.core.cluster import ClusterConfig, default_cluster
from neurfly.store import Store

_logger = logging.getLogger(__name__)


def to_timestamp(value: float | int | datetime | str) -> float:
    """Convert seconds since the epoch, a ``datetime`` or ISO 8601 text to seconds since the epoch.

    Text and ``datetime`` values without a time zone are read as UTC; a date
    alone (``2026-12-01``) means its midnight, UTC.

    Raises:
        ValueError: ``value`` is text that is not ISO 8601.
        TypeError: ``value`` is of another type.
    """
    if isinstance(value, bool):
        raise TypeError(f"expected seconds, a datetime or ISO 8601 text, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"time {value!r} is not ISO 8601; write it like 2026-12-01 or 2026-12-01T08:00:00Z") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    raise TypeError(f"expected seconds, a datetime or ISO 8601 text, got {type(value).__name__}")


def cost_report(
    session_or_store: Session | Store,
    since: float | datetime | str | None = None,
    until: float | datetime | str | None = None,
    now: float | None = None,
    *,
    cluster: ClusterConfig | None = None,
    team: str | None = None,
) -> CostReport:
    """Meter and price every attempt of the window ``[since, until)``.

    Args:
        session_or_store: A store, or a session of one.
        since: Start of the window; the start of the calendar month (UTC) of ``now`` when ``None``.
        until: End of the window (exclusive); the end of that month when ``None``.
        now: Time of the report; the clock when ``None``. Running attempts
            are billed up to it, and the window is metered up to it.
        cluster: Pools, prices, billing weights and idle cost policy; the embedded default cluster when ``None``.
        team: Only this team's lines: its usage, its idle share, and the
            waste it lost or caused. Pool lines and the platform's idle cost,
            which describe every team together, are left out.

    Returns:
        The report. While no controller holds the store's lease, an open
        attempt is billed up to its last report, as a restarted controller will record it.

    Raises:
        ValueError: ``until`` is before ``since``, or a time is not ISO 8601.
    """
    now = time.time() if now is None else now
    month = month_period(now)
    start = to_timestamp(since) if since is not None else month.start
    end = to_timestamp(until) if until is not None else month.end
    if end < start:
        raise ValueError(f"the report ends ({datetime.fromtimestamp(end, UTC):%Y-%m-%d %H:%M}) before it starts "
                         f"({datetime.fromtimestamp(start, UTC):%Y-%m-%d %H:%M}); pass --until after --since")
    cluster = cluster or default_cluster()
    rates = pool_rates(cluster)

    with open_session(session_or_store) as session:
        records = load_records(session, start, end, accrue_open=controller_running(session))
        causes = load_causes(session, [r.attempt_id for r in records if r.progress_lost > 0])
    report = build_report(meter(records, start, end, now, causes), rates, start, end, now, cluster.idle_cost_policy)
    if team is not None:
        report = _scoped(report, team)
    _logger.debug("cost report %s..%s: %d attempts, total %d micro-units", start, end, len(records), report.total_micros)
    return report


def _scoped(report: CostReport, team: str) -> CostReport:
    return replace(
        report,
        teams=tuple(t for t in report.teams if t.team == team),
        usage=tuple(u for u in report.usage if u.team == team),
        pools=(),
        waste=tuple(w for w in report.waste if team in (w.team, w.cause_team)),
        idle_shares={t: shares for t, shares in report.idle_shares.items() if t == team},
        platform_idle_micros=0,
    )


__all__ = ["cost_report", "to_timestamp"]
