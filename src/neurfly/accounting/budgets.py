"""Budgets in the store: set, remove, list, audit, and evaluate them.

Every change writes one row to the append-only ``budget_changes`` table
with the actor, the time and the budget before and after.
"""

from __future__ import annotations

import getpass
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from neurfly.accounting.budgeting import (
    DEFAULT_FORECAST_WINDOW_S,
    DEFAULT_THRESHOLDS,
    BudgetEvaluation,
    BudgetLevel,
    BudgetRule,
    PeriodKind,
    evaluate_records,
    format_time,
    scope_of,
)
from neurfly.accounting.models import Budget, BudgetChange, BudgetState
from neurfly.accounting.money import format_micros, format_money, parse_amount
from neurfly.accounting.pricing import pool_rates
from neurfly.accounting.records import controller_running, load_records, open_session
from neurfly.core.cluster import ClusterConfig, default_cluster
from neurfly.core.spec import NAME_PATTERN
from neurfly.errors import NeurflyError, NotFoundError
from neurfly.store import Search, Store

_logger = logging.getLogger(__name__)


class BudgetError(NeurflyError, ValueError):
    """A budget change is invalid; the message names the value and the fix."""


class ChangeAction(str, Enum):
    CREATED = "created"
    UPDATED = "updated"
    REMOVED = "removed"


# Marks an argument of ``set_budget`` that keeps the stored value (or the default, for a new budget).
KEEP: Any = object()


def default_actor() -> str:
    """Return the OS user name, the actor of a change when none is given."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def rule_of(row: Budget) -> BudgetRule:
    """Return the budget rule a stored row describes."""
    return BudgetRule(
        id=row.id,
        team=row.team,
        amount_micros=row.amount_micros,
        period_kind=PeriodKind(row.period),
        search_id=row.search_id,
        custom_start=row.period_start,
        custom_end=row.period_end,
        thresholds=tuple(float(t) for t in row.thresholds),
        soft_limit_percent=row.soft_limit_percent,
        hard_limit_percent=row.hard_limit_percent,
    )


def budget_dict(row: Budget) -> dict[str, Any]:
    """Describe a stored budget as JSON-ready values (amounts as decimal text)."""
    return {
        "id": row.id,
        "scope": row.scope,
        "team": row.team,
        "search_id": row.search_id,
        "amount": format_micros(row.amount_micros, 6),
        "period": row.period,
        "period_start": format_time(row.period_start) if row.period_start is not None else None,
        "period_end": format_time(row.period_end) if row.period_end is not None else None,
        "thresholds": list(row.thresholds),
        "soft_limit_percent": row.soft_limit_percent,
        "hard_limit_percent": row.hard_limit_percent,
        "updated_at": format_time(row.updated_at),
        "updated_by": row.updated_by,
    }


def set_budget(
    session_or_store: Session | Store,
    team: str,
    amount: str | int | Decimal,
    *,
    search_id: int | None = None,
    period: PeriodKind | str = KEEP,
    period_start: float | None = KEEP,
    period_end: float | None = KEEP,
    thresholds: Sequence[float] = KEEP,
    soft_limit_percent: float | None = KEEP,
    hard_limit_percent: float | None = KEEP,
    actor: str | None = None,
    reason: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Create or change the budget of ``team`` (or of one of its searches) and audit the change.

    Arguments left at ``KEEP`` keep the stored value. A new budget gets a
    calendar month, thresholds of 50, 80 and 100 percent, and a soft limit
    at 100 percent with no hard limit.

    Args:
        session_or_store: A store, or a session that the caller commits.
        team: Team name.
        amount: Budget per period, e.g. ``"1250.50"``.
        search_id: Limit only this search of the team.
        period: ``month`` or ``custom``.
        period_start: Start of a custom period, seconds since the epoch.
        period_end: End of a custom period (exclusive).
        thresholds: Alert thresholds, percent of the amount.
        soft_limit_percent: Spend at which the soft limit acts, or ``None``.
        hard_limit_percent: Spend at which the hard limit acts, or ``None``.
        actor: Who makes the change; the OS user when ``None``.
        reason: Why, for the audit log.
        now: Time of the change; the clock when ``None``.

    Returns:
        The budget as ``budget_dict`` describes it.

    Raises:
        BudgetError: A value is invalid.
        NotFoundError: ``search_id`` names no search of ``team``.
    """
    now = time.time() if now is None else now
    actor = actor or default_actor()
    _check_team(team)
    micros = _amount(amount)

    with open_session(session_or_store) as session:
        if search_id is not None:
            _check_search(session, team, search_id)
        scope = scope_of(team, search_id)
        row = session.scalars(select(Budget).where(Budget.scope == scope)).first()
        values = _values(row, micros, period, period_start, period_end, thresholds, soft_limit_percent, hard_limit_percent)
        _validate(team, search_id, values)
        before = budget_dict(row) if row is not None else None
        if row is not None and all(getattr(row, name) == value for name, value in values.items()):
            _logger.info("budget %d (%s) unchanged; nothing recorded", row.id, scope)
            return before

        if row is None:
            row = Budget(scope=scope, team=team, search_id=search_id, created_at=now, created_by=actor)
            session.add(row)
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_at, row.updated_by = now, actor
        session.flush()
        after = budget_dict(row)
        action = ChangeAction.CREATED if before is None else ChangeAction.UPDATED
        session.add(BudgetChange(budget_id=row.id, scope=scope, action=action.value, actor=actor, at=now, before=before, after=after, reason=reason))
        _commit_if_owned(session_or_store, session)
    _logger.info("budget %d (%s) %s by %s: %s per %s", after["id"], scope, action.value, actor, after["amount"], after["period"])
    return after


def remove_budget(
    session_or_store: Session | Store,
    team: str,
    *,
    search_id: int | None = None,
    actor: str | None = None,
    reason: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Delete the budget of ``team`` (or of one of its searches) and audit the removal.

    Raises:
        NotFoundError: The scope has no budget.
    """
    now = time.time() if now is None else now
    actor = actor or default_actor()
    scope = scope_of(team, search_id)
    with open_session(session_or_store) as session:
        row = session.scalars(select(Budget).where(Budget.scope == scope)).first()
        if row is None:
            raise NotFoundError("budget", scope, "list budgets with 'neurfly budget list'")
        before = budget_dict(row)
        session.add(BudgetChange(budget_id=row.id, scope=scope, action=ChangeAction.REMOVED.value, actor=actor, at=now, before=before, after=None, reason=reason))
        session.delete(row)
        _commit_if_owned(session_or_store, session)
    _logger.info("budget %d (%s) removed by %s", before["id"], scope, actor)
    return before


def list_budgets(session_or_store: Session | Store, team: str | None = None) -> list[dict[str, Any]]:
    """Return every budget (of ``team`` only, when given), by id."""
    with open_session(session_or_store) as session:
        query = select(Budget).order_by(Budget.id)
        if team is not None:
            query = query.where(Budget.team == team)
        return [budget_dict(row) for row in session.scalars(query)]


def budget_history(session_or_store: Session | Store, team: str | None = None) -> list[dict[str, Any]]:
    """Return the audit log of budget changes, oldest first (of ``team`` only, when given)."""
    with open_session(session_or_store) as session:
        rows = session.scalars(select(BudgetChange).order_by(BudgetChange.id)).all()
    changes = []
    for row in rows:
        described = row.after or row.before or {}
        if team is not None and described.get("team") != team:
            continue
        changes.append({
            "id": row.id, "budget_id": row.budget_id, "scope": row.scope, "action": row.action, "actor": row.actor,
            "at": format_time(row.at), "before": row.before, "after": row.after, "reason": row.reason,
        })
    return changes


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """A budget with its live evaluation, and the controller's last recorded one.

    Attributes:
        budget: The budget as ``budget_dict`` describes it.
        evaluation: The evaluation at ``now``; ``None`` outside a custom period.
        recorded_level: Level the controller last recorded for the current period, if any.
        recorded_at: When it recorded it.
    """

    budget: dict[str, Any]
    evaluation: BudgetEvaluation | None
    recorded_level: BudgetLevel | None = None
    recorded_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        evaluation = self.evaluation
        described = dict(self.budget)
        if evaluation is None:
            described["active"] = False
            return described
        described.update({
            "active": True,
            "current_period": {"start": format_time(evaluation.period.start), "end": format_time(evaluation.period.end)},
            "spent": format_micros(evaluation.spent_micros, 6),
            "running": format_micros(evaluation.running_micros, 6),
            "committed": format_micros(evaluation.committed_micros, 6),
            "run_rate_per_hour": format_micros(evaluation.run_rate_micros_per_hour, 6),
            "forecast": format_micros(evaluation.forecast_micros, 6),
            "percent_spent": round(evaluation.percent_spent, 2),
            "percent_forecast": round(evaluation.percent_forecast, 2),
            "level": evaluation.level.value,
            "crossed": [f"{basis.value}:{percent:g}" for basis, percent in evaluation.crossed],
            "recorded_level": self.recorded_level.value if self.recorded_level else None,
            "recorded_at": format_time(self.recorded_at) if self.recorded_at else None,
        })
        return described


def budget_status(
    session_or_store: Session | Store,
    cluster: ClusterConfig | None = None,
    now: float | None = None,
    team: str | None = None,
    window_s: float = DEFAULT_FORECAST_WINDOW_S,
) -> list[BudgetStatus]:
    """Evaluate every budget (of ``team`` only, when given) from the attempt records at ``now``.

    Args:
        session_or_store: A store or a session.
        cluster: Prices; the embedded default cluster when ``None``.
        now: Time of the evaluation; the clock when ``None``.
        team: Only this team's budgets.
        window_s: Trailing window of the run rate, in seconds.

    Returns:
        One status per budget, by id. Open attempts count up to ``now``
        while a controller runs, and up to their last report otherwise.
    """
    now = time.time() if now is None else now
    rates = pool_rates(cluster or default_cluster())
    with open_session(session_or_store) as session:
        query = select(Budget).order_by(Budget.id)
        if team is not None:
            query = query.where(Budget.team == team)
        rows = session.scalars(query).all()
        states = {s.budget_id: s for s in session.scalars(select(BudgetState))}
        accrue_open = controller_running(session)
        statuses = [_status(session, row, states.get(row.id), rates, now, window_s, accrue_open) for row in rows]
    return statuses


def submission_problems(session: Session, team: str, now: float) -> list[str]:
    """Return the reasons that ``team`` may not start a new search now, one per team budget past a limit.

    The check uses the spend the controller last recorded for the current
    period, measured against the budget as it is now, so a raised budget
    lets new searches in at once.
    """
    problems = []
    rows = session.scalars(select(Budget).where(Budget.team == team, Budget.search_id.is_(None))).all()
    for row in rows:
        rule = rule_of(row)
        period = rule.period_at(now)
        state = session.get(BudgetState, row.id)
        if period is None or state is None or state.period_start != period.start:
            continue
        level = rule.level_for(state.spent_micros)
        if level is BudgetLevel.OK:
            continue
        problems.append(
            f"team {team!r} has spent {format_money(state.spent_micros)} of its {row.period} budget of "
            f"{format_money(row.amount_micros)} (budget {row.id}, {level.value} limit reached as of "
            f"{format_time(state.evaluated_at)}); new searches are rejected until the period ends on "
            f"{format_time(period.end)} or an admin raises it with 'neurfly budget set {team} --amount AMOUNT'"
        )
    return problems


def _status(session: Session, row: Budget, state: BudgetState | None, rates, now: float, window_s: float, accrue_open: bool) -> BudgetStatus:  # noqa: ANN001 - rates: dict[str, PoolRate]
    rule = rule_of(row)
    period = rule.period_at(now)
    evaluation = None
    if period is not None:
        since = min(period.start, now - window_s)
        records = load_records(session, since, now, team=rule.team, search_id=rule.search_id, accrue_open=accrue_open)
        evaluation = evaluate_records(rule, records, rates, now, window_s)
    recorded = state is not None and period is not None and state.period_start == period.start
    return BudgetStatus(
        budget=budget_dict(row),
        evaluation=evaluation,
        recorded_level=BudgetLevel(state.level) if recorded else None,
        recorded_at=state.evaluated_at if recorded else None,
    )


def _check_team(team: str) -> None:
    if not isinstance(team, str) or not NAME_PATTERN.match(team):
        raise BudgetError(
            f"team {team!r} is not a valid name; use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
        )


def _check_search(session: Session, team: str, search_id: int) -> None:
    search = session.get(Search, search_id)
    if search is None:
        raise NotFoundError("search", search_id, "list searches with 'neurfly status'")
    if search.team != team:
        raise BudgetError(f"search {search_id} belongs to team {search.team!r}, not {team!r}; set the budget for team {search.team!r}")


def _amount(amount: str | int | Decimal) -> int:
    try:
        micros = parse_amount(amount)
    except ValueError as exc:
        raise BudgetError(str(exc)) from None
    if micros <= 0:
        raise BudgetError(f"amount {amount!r} must be more than 0")
    return micros


def _values(row: Budget | None, micros: int, period, period_start, period_end, thresholds, soft, hard) -> dict[str, Any]:  # noqa: ANN001 - KEEP or a value
    period = _pick(row, "period", period, PeriodKind.MONTH.value)
    period = period.value if isinstance(period, PeriodKind) else period
    values = {
        "amount_micros": micros,
        "period": period,
        "period_start": _pick(row, "period_start", period_start, None),
        "period_end": _pick(row, "period_end", period_end, None),
        "thresholds": sorted(float(t) for t in _pick(row, "thresholds", thresholds, list(DEFAULT_THRESHOLDS))),
        "soft_limit_percent": _pick(row, "soft_limit_percent", soft, 100.0),
        "hard_limit_percent": _pick(row, "hard_limit_percent", hard, None),
    }
    if period == PeriodKind.MONTH.value:
        values["period_start"] = values["period_end"] = None
    return values


def _pick(row: Budget | None, name: str, value: Any, default: Any) -> Any:
    if value is not KEEP:
        return value
    return default if row is None else getattr(row, name)


def _validate(team: str, search_id: int | None, values: dict[str, Any]) -> None:
    try:
        period = PeriodKind(values["period"])
    except ValueError:
        raise BudgetError(f"period {values['period']!r} is invalid; use 'month' or 'custom'") from None
    if period is PeriodKind.CUSTOM and (values["period_start"] is None or values["period_end"] is None):
        raise BudgetError("a custom period needs both a start and an end; pass --start and --end")
    try:
        BudgetRule(
            id=0, team=team, amount_micros=values["amount_micros"], period_kind=period, search_id=search_id,
            custom_start=values["period_start"], custom_end=values["period_end"], thresholds=tuple(values["thresholds"]),
            soft_limit_percent=values["soft_limit_percent"], hard_limit_percent=values["hard_limit_percent"],
        )
    except ValueError as exc:
        raise BudgetError(str(exc).removeprefix("budget 0: ")) from None


def _commit_if_owned(session_or_store: Session | Store, session: Session) -> None:
    if not isinstance(session_or_store, Session):
        session.commit()


__all__ = [
    "KEEP",
    "BudgetError",
    "BudgetStatus",
    "ChangeAction",
    "budget_dict",
    "budget_history",
    "budget_status",
    "default_actor",
    "list_budgets",
    "remove_budget",
    "rule_of",
    "set_budget",
    "submission_problems",
]
