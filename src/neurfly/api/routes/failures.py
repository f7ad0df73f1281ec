"""Classified failures of attempts, with the party responsible for each, for the caller's teams."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from neurfly.api.access import Access, Caller, Context, access
from neurfly.api.context import finite_json
from neurfly.api.queries import resolve_search
from neurfly.api.routes.searches import SearchKey
from neurfly.api.schemas import MAX_ID, NAME_REGEX, FailureRow
from neurfly.auth import Role
from neurfly.monitoring.failures import FailureCategory
from neurfly.monitoring.queries import list_failures
from neurfly.monitoring.records import AttemptFailure

router = APIRouter(tags=["monitoring"])

CategoryFilter = Annotated[FailureCategory | None, Query(description="Only failures of this class.")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Maximum number of failures to return: the newest ones, listed oldest first.")]


@router.get("/failures", response_model=list[FailureRow], openapi_extra=access(Access.VIEWER))
def get_failures(
    ctx: Context,
    who: Caller,
    team: Annotated[str | None, Query(pattern=NAME_REGEX, description="Only failures of this team's searches.")] = None,
    search_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only failures of this search.")] = None,
    category: CategoryFilter = None,
    limit: Limit = 200,
) -> list[dict[str, Any]]:
    """List failed attempts of the caller's teams with their class (user code, configuration, data, infrastructure) and owner."""
    teams = who.visible_teams()
    if team is not None:
        teams = {team} if teams is None or team in teams else set()
    with ctx.store.session() as session:
        rows = list_failures(session, teams=teams, search_id=search_id, category=category, limit=limit)
    return [failure_row(failure, trial_id) for failure, trial_id in rows]


@router.get("/searches/{search}/failures", response_model=list[FailureRow], openapi_extra=access(Access.VIEWER))
def get_search_failures(search: SearchKey, ctx: Context, who: Caller, category: CategoryFilter = None, limit: Limit = 200) -> list[dict[str, Any]]:
    """List the failed attempts of one search with their class and owner."""
    with ctx.store.session() as session:
        row = resolve_search(session, who, search, None, Role.VIEWER)
        rows = list_failures(session, search_id=row.id, category=category, limit=limit)
    return [failure_row(failure, trial_id) for failure, trial_id in rows]


def failure_row(row: AttemptFailure, trial_id: int) -> dict[str, Any]:
    evidence = finite_json(dict(row.evidence or {}))
    reason = evidence.get("reason")
    return {
        "attempt_id": row.attempt_id, "search_id": row.search_id, "trial_id": trial_id, "team": row.team,
        "category": row.category, "cause": row.cause, "owner": row.owner, "reason": reason if isinstance(reason, str) else None,
        "evidence": evidence, "classified_at": row.classified_at,
    }
