"""Alerts of the caller's teams; platform-owned alerts without a team are shown to platform admins."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from sqlalchemy import select

from neurfly.api.access import Access, Caller, Context, access, check_team, visible
from neurfly.api.context import finite_json
from neurfly.api.schemas import MAX_ID, NAME_REGEX, AlertRow
from neurfly.auth import Principal, Role
from neurfly.errors import NeurflyError
from neurfly.monitoring.alerts import Alert, AlertCategory, AlertState, Severity, acknowledge_alert, resolve_alert

router = APIRouter(tags=["alerts"])

AlertId = Annotated[int, Path(ge=1, le=MAX_ID, description="Alert id.")]


@router.get("/alerts", response_model=list[AlertRow], openapi_extra=access(Access.VIEWER))
def list_alerts(
    ctx: Context,
    who: Caller,
    team: Annotated[str | None, Query(pattern=NAME_REGEX, description="Only alerts of this team.")] = None,
    state: Annotated[AlertState | None, Query(description="Only alerts in this state.")] = None,
    category: Annotated[AlertCategory | None, Query(description="Only alerts of this category.")] = None,
    severity: Annotated[Severity | None, Query(description="Only alerts of this severity.")] = None,
    search_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only alerts about this search.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """List alerts, most recent first."""
    conditions = [visible(who, Alert.team)]
    if who.platform_admin and team is None:
        conditions = []
    for column, value in ((Alert.team, team), (Alert.search_id, search_id)):
        if value is not None:
            conditions.append(column == value)
    for column, enum_value in ((Alert.state, state), (Alert.category, category), (Alert.severity, severity)):
        if enum_value is not None:
            conditions.append(column == enum_value.value)
    with ctx.store.session() as session:
        rows = session.scalars(select(Alert).where(*conditions).order_by(Alert.last_at.desc(), Alert.id.desc()).limit(limit)).all()
    return [alert_row(row) for row in rows]


@router.get("/alerts/{alert_id}", response_model=AlertRow, openapi_extra=access(Access.VIEWER))
def get_alert(alert_id: AlertId, ctx: Context, who: Caller) -> dict[str, Any]:
    """Show one alert with its evidence."""
    with ctx.store.session() as session:
        return alert_row(_visible_alert(session, who, alert_id, Role.VIEWER))


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertRow, openapi_extra=access(Access.MEMBER))
def post_acknowledge(alert_id: AlertId, ctx: Context, who: Caller) -> dict[str, Any]:
    """Acknowledge a firing alert: its repeats and escalation stop for this episode."""
    with ctx.store.session() as session:
        _visible_alert(session, who, alert_id, Role.MEMBER)
        try:
            row = acknowledge_alert(session, alert_id, who.user, time.time())
        except NeurflyError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        session.commit()
        return alert_row(row)


@router.post("/alerts/{alert_id}/resolve", response_model=AlertRow, openapi_extra=access(Access.MEMBER))
def post_resolve(alert_id: AlertId, ctx: Context, who: Caller) -> dict[str, Any]:
    """Resolve an alert; the same finding firing again opens a new episode."""
    with ctx.store.session() as session:
        _visible_alert(session, who, alert_id, Role.MEMBER)
        row = resolve_alert(session, alert_id, who.user, time.time())
        session.commit()
        return alert_row(row)


def _visible_alert(session: Any, who: Principal, alert_id: int, required: Role) -> Alert:
    row = session.get(Alert, alert_id)
    if row is None or (row.team is None and not who.platform_admin):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id} not found")
    if row.team is not None:
        check_team(who, row.team, required, f"alert {alert_id}")
    return row


def alert_row(row: Alert) -> dict[str, Any]:
    return {
        "id": row.id,
        "category": row.category,
        "severity": row.severity,
        "state": row.state,
        "owner": row.owner,
        "team": row.team,
        "search_id": row.search_id,
        "trial_id": row.trial_id,
        "message": row.message,
        "evidence": finite_json(row.evidence or {}),
        "count": row.count,
        "first_at": row.first_at,
        "last_at": row.last_at,
    }
