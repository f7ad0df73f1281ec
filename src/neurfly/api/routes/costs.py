"""Costs and budgets, read from neurfly.accounting; platform admins set and remove budgets."""

from __future__ import annotations

import csv
import io
import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from neurfly.accounting import (
    BudgetError,
    CostReport,
    budget_status,
    budget_timeline,
    cost_report,
    remove_budget,
    report_csv_rows,
    report_to_dict,
    set_budget,
)
from neurfly.accounting.export import CSV_COLUMNS
from neurfly.api.access import Access, Caller, Context, PlatformAdmin, access, check_team
from neurfly.api.routes import ERROR_RESPONSES
from neurfly.api.routes.alerts import alert_row
from neurfly.api.schemas import MAX_ID, NAME_REGEX, BudgetHistoryOut, BudgetOut, BudgetRequest, BudgetStatusOut, CostReportOut
from neurfly.auth import Principal, Role
from neurfly.errors import NeurflyError

_logger = logging.getLogger(__name__)

router = APIRouter(tags=["costs"])

TeamFilter = Annotated[str | None, Query(pattern=NAME_REGEX, description="Team; required unless the caller sees exactly one team or is a platform admin.")]
TimeText = Annotated[str | None, Query(max_length=40, pattern=r"^[0-9A-Za-z:.+\- ]+$", description="ISO 8601 time or seconds since the epoch.")]
TeamName = Annotated[str, Path(pattern=NAME_REGEX, description="Team name.")]


@router.get("/costs", response_model=CostReportOut, openapi_extra=access(Access.VIEWER))
def get_costs(ctx: Context, who: Caller, team: TeamFilter = None, since: TimeText = None, until: TimeText = None) -> dict[str, Any]:
    """Cost report of a window (default: this calendar month, UTC): usage, idle share and waste.

    A team's report leaves out pool lines and the platform's idle cost, which
    describe every team together; platform admins may ask without a team.
    """
    return report_to_dict(_report(ctx, who, team, since, until))


class CsvResponse(Response):
    media_type = "text/csv"


# The errors of a CSV route are JSON like those of every other route. FastAPI would document
# them with the route's response class, as text/csv, so they are spelled out here.
_JSON_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": response["description"], "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
    for code, response in ERROR_RESPONSES.items()
}


@router.get(
    "/costs.csv",
    response_class=CsvResponse,
    responses={
        **_JSON_ERRORS,
        200: {"description": "Chargeback line items, one per row, with a header row.", "content": {"text/csv": {"schema": {"type": "string"}}}},
    },
    openapi_extra=access(Access.VIEWER),
)
def get_costs_csv(ctx: Context, who: Caller, team: TeamFilter = None, since: TimeText = None, until: TimeText = None) -> CsvResponse:
    """Chargeback line items of the report that GET /costs returns for the same filters, as CSV.

    The ``amount`` column adds up to what the teams in the report were charged:
    usage per search and pool, and idle shares. Platform admins asking without
    a team also get the idle cost the platform keeps.
    """
    report = _report(ctx, who, team, since, until)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(report_csv_rows(report))
    filename = f"costs-{team or 'all'}-{report_to_dict(report)['since'][:10]}.csv"
    return CsvResponse(buffer.getvalue(), headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _report(ctx: Any, who: Principal, team: str | None, since: str | None, until: str | None) -> CostReport:
    team = _team_for(who, team)
    try:
        with ctx.store.session() as session:
            return cost_report(session, _time(since), _time(until), cluster=ctx.cluster, team=team)
    except ValueError as exc:
        raise HTTPException(422, [{"loc": ["query"], "msg": str(exc), "type": "value_error"}]) from None


@router.get("/budgets", response_model=list[BudgetStatusOut], openapi_extra=access(Access.VIEWER))
def get_budgets(ctx: Context, who: Caller, team: Annotated[str | None, Query(pattern=NAME_REGEX, description="Only this team's budgets.")] = None) -> list[dict[str, Any]]:
    """Budgets of the caller's teams with spend, forecast and level for the current period."""
    if team is not None:
        check_team(who, team, Role.VIEWER, f"team {team!r}")
    with ctx.store.session() as session:
        statuses = budget_status(session, ctx.cluster, team=team)
    return [s.to_dict() for s in statuses if who.role_in(s.budget["team"]) is not None]


@router.put("/budgets/{team}", response_model=BudgetOut, openapi_extra=access(Access.PLATFORM_ADMIN))
def put_budget(team: TeamName, body: BudgetRequest, ctx: Context, who: PlatformAdmin) -> dict[str, Any]:
    """Create or change the budget of a team, or of one of its searches; the change is audited."""
    changes = {
        key: value
        for key, value in body.model_dump(exclude={"amount", "search_id", "reason"}).items()
        if value is not None
    }
    try:
        with ctx.store.session() as session:
            budget = set_budget(session, team, body.amount, search_id=body.search_id, actor=who.user, reason=body.reason, **changes)
            session.commit()
    except (BudgetError, ValueError) as exc:
        raise HTTPException(422, [{"loc": ["body"], "msg": str(exc), "type": "invalid_budget"}]) from None
    except NeurflyError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    _logger.info("user %s set budget of %s%s to %s", who.user, team, f" search {body.search_id}" if body.search_id else "", body.amount)
    return budget


@router.delete("/budgets/{team}", response_model=BudgetOut, openapi_extra=access(Access.PLATFORM_ADMIN))
def delete_budget(
    team: TeamName,
    ctx: Context,
    who: PlatformAdmin,
    search_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Remove the budget of this search instead of the team's.")] = None,
) -> dict[str, Any]:
    """Remove the budget of a team or of one of its searches; the removal is audited."""
    try:
        with ctx.store.session() as session:
            budget = remove_budget(session, team, search_id=search_id, actor=who.user)
            session.commit()
    except (BudgetError, ValueError) as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except NeurflyError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return budget


@router.get("/budgets/{team}/history", response_model=BudgetHistoryOut, openapi_extra=access(Access.VIEWER))
def get_budget_history(
    team: TeamName,
    ctx: Context,
    who: Caller,
    search_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="The budget of this search instead of the team's.")] = None,
) -> dict[str, Any]:
    """History of a budget: its audited changes, the threshold alerts it raised, and its level changes and stopped attempts."""
    check_team(who, team, Role.VIEWER, f"team {team!r}")
    with ctx.store.session() as session:
        timeline = budget_timeline(session, team, search_id)
        if timeline is None:
            what = f"search {search_id} of team {team!r}" if search_id is not None else f"team {team!r}"
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{what} has never had a budget; list budgets with GET /api/v1/budgets")
        return {
            "scope": timeline.scope,
            "changes": timeline.changes,
            "alerts": [alert_row(row) for row in timeline.alerts],
            "actions": [_action(row) for row in timeline.actions],
        }


def _action(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "at": row.at, "kind": row.kind, "search_id": row.search_id, "trial_id": row.trial_id,
        "attempt_id": row.attempt_id, "message": row.message, "data": dict(row.data or {}),
    }


def _team_for(who: Principal, team: str | None) -> str | None:
    if team is not None:
        check_team(who, team, Role.VIEWER, f"team {team!r}")
        return team
    if who.platform_admin:
        return None
    if len(who.roles) == 1:
        return next(iter(who.roles))
    teams = ", ".join(sorted(who.roles)) or "none"
    raise HTTPException(422, [{"loc": ["query", "team"], "msg": f"give the team of the report; your teams: {teams}", "type": "missing"}])


def _time(text: str | None) -> float | str | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text
