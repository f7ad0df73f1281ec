"""The history of one budget scope: its audited changes, the alerts it raised and the actions it took."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from neurfly.accounting.budgeting import alert_key_prefix, scope_of
from neurfly.accounting.budgets import budget_history
from neurfly.accounting.records import BUDGET_LEVEL_EVENT, PREEMPTING_EVENT
from neurfly.monitoring.alerts import Alert, AlertCategory
from neurfly.store import Event, Search


@dataclass(frozen=True)
class BudgetTimeline:
    """The history of the budget of one scope, across every budget that scope has had.

    Attributes:
        scope: ``team:<team>`` or ``search:<id>``.
        budget_ids: Ids of the budgets the scope has had; a removed and re-created budget gets a new id.
        changes: Audited changes as ``budget_history`` describes them, oldest first.
        alerts: Threshold alerts of those budgets, newest first.
        actions: ``budget.level`` events and attempts stopped by a hard limit, oldest first.
    """

    scope: str
    budget_ids: tuple[int, ...]
    changes: list[dict[str, Any]]
    alerts: list[Alert]
    actions: list[Event]


def budget_timeline(session: Session, team: str, search_id: int | None = None) -> BudgetTimeline | None:
    """Return the history of the budget of ``team`` (or of one of its searches); ``None`` when the scope never had one."""
    scope = scope_of(team, search_id)
    changes = [change for change in budget_history(session, team=team) if change["scope"] == scope]
    if not changes:
        return None

    budget_ids = tuple(sorted({change["budget_id"] for change in changes}))
    alert_query = (
        select(Alert)
        .where(Alert.category == AlertCategory.BUDGET.value, or_(*(Alert.key.startswith(alert_key_prefix(i), autoescape=True) for i in budget_ids)))
        .order_by(Alert.last_at.desc(), Alert.id.desc())
    )
    alerts = list(session.scalars(alert_query))
    return BudgetTimeline(scope, budget_ids, changes, alerts, _actions(session, team, budget_ids))


def _actions(session: Session, team: str, budget_ids: tuple[int, ...]) -> list[Event]:
    team_searches = select(Search.id).where(Search.team == team)
    query = (
        select(Event)
        .where(or_(
            Event.kind == BUDGET_LEVEL_EVENT,
            (Event.kind == PREEMPTING_EVENT) & Event.search_id.in_(team_searches),
        ))
        .order_by(Event.id)
    )
    # Both kinds carry the budget id in ``data``; JSON is filtered here so the query runs on SQLite and PostgreSQL alike.
    return [row for row in session.scalars(query) if (row.data or {}).get("budget_id") in budget_ids]


__all__ = ["BudgetTimeline", "budget_timeline"]
