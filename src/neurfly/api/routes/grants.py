"""Grants of a team's datasets and artifacts to other teams, and the team's data audit log.

Admins of the owning team give and revoke grants through neurfly.governance,
which audits each decision with the requesting user.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from neurfly.api.access import Access, Caller, Context, access, check_team
from neurfly.api.routes import invalid
from neurfly.api.schemas import MAX_ID, NAME_REGEX, AuditRecordOut, GrantOut, GrantRequest
from neurfly.auth import Role, get_team
from neurfly.errors import NotFoundError
from neurfly.governance.access import REF_PATTERN, AccessDeniedError, Ref, grant_access, list_grants, parse_expiry, revoke_grant
from neurfly.governance.access import Caller as DataCaller
from neurfly.governance.artifacts import find_artifact
from neurfly.governance.audit import audit_trail
from neurfly.governance.models import Artifact, AuditRecord, DataRole, Dataset, Decision, Grant, ResourceKind

_logger = logging.getLogger(__name__)

router = APIRouter(tags=["data"])

TeamName = Annotated[str, Path(pattern=NAME_REGEX, description="The team the request acts for.")]
GrantId = Annotated[int, Path(ge=1, le=MAX_ID, description="Grant id.")]


@router.get("/teams/{team}/grants", response_model=list[GrantOut], openapi_extra=access(Access.VIEWER))
def get_grants(team: TeamName, ctx: Context, who: Caller) -> list[dict[str, Any]]:
    """List the grants a team gave or received, newest first."""
    check_team(who, team, Role.VIEWER, f"team {team!r}")
    with ctx.store.session() as session:
        return [_grant(row) for row in list_grants(session, team)]


@router.post("/teams/{team}/grants", response_model=GrantOut, status_code=status.HTTP_201_CREATED, openapi_extra=access(Access.ADMIN))
def post_grant(team: TeamName, body: GrantRequest, ctx: Context, who: Caller) -> dict[str, Any]:
    """Let another team use a dataset or artifact of the team in some roles until the expiry (default 90 days)."""
    check_team(who, team, Role.ADMIN, f"team {team!r}")
    try:
        expires_at = parse_expiry(body.expires)
    except ValueError as exc:
        raise invalid(("body", "expires"), str(exc)) from None
    caller = DataCaller(team, who.user)

    with ctx.store.session() as session:
        try:
            get_team(session, body.grantee_team)
        except NotFoundError:
            raise invalid(("body", "grantee_team"), f"team {body.grantee_team!r} not found; list teams with GET /api/v1/teams") from None
        kind, resource = _grant_target(session, team, body)
        roles = body.roles or ([DataRole.WARM_START] if kind is ResourceKind.ARTIFACT else [])
        try:
            grant = grant_access(session, caller, kind, resource, body.grantee_team, roles, expires_at, body.reason)
        except ValueError as exc:
            raise invalid(("body",), str(exc)) from None
        session.commit()
        _logger.info("user %s granted %s %s to team %s (grant %d)", who.user, kind.value, grant.resource, body.grantee_team, grant.id)
        return _grant(grant)


def _grant_target(session: Session, team: str, body: GrantRequest) -> tuple[ResourceKind, Dataset | Artifact]:
    if body.resource_kind == ResourceKind.DATASET.value:
        if body.version is not None:
            raise invalid(("body", "version"), "a dataset grant covers every version of the dataset; leave out 'version'")
        dataset = session.scalars(select(Dataset).where(Dataset.team == team, Dataset.name == body.resource)).first()
        if dataset is None:
            raise invalid(("body", "resource"), f"dataset {team}/{body.resource} not found; list the team's datasets with GET /api/v1/teams/{team}/datasets")
        return ResourceKind.DATASET, dataset

    artifact = find_artifact(session, Ref(team, body.resource, body.version))
    if artifact is None:
        named = f"{team}/{body.resource}" + (f"@{body.version}" if body.version else "")
        raise invalid(("body", "resource"), f"artifact {named} not found, or the version prefix matches several; list artifacts with GET /api/v1/teams/{team}/artifacts")
    return ResourceKind.ARTIFACT, artifact


@router.delete("/teams/{team}/grants/{grant_id}", response_model=GrantOut, openapi_extra=access(Access.ADMIN))
def delete_grant(team: TeamName, grant_id: GrantId, ctx: Context, who: Caller) -> dict[str, Any]:
    """Revoke a grant the team gave; searches admitted before keep running. Revoking twice changes nothing."""
    check_team(who, team, Role.ADMIN, f"team {team!r}")
    with ctx.store.session() as session:
        row = session.get(Grant, grant_id)
        if row is None or team not in (row.owner_team, row.grantee_team):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"grant {grant_id} not found; list the team's grants with GET /api/v1/teams/{team}/grants")
        try:
            grant = revoke_grant(session, DataCaller(team, who.user), grant_id)
        except AccessDeniedError as exc:
            raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
        session.commit()
        _logger.info("user %s revoked grant %d of %s", who.user, grant_id, grant.resource)
        return _grant(grant)


@router.get("/teams/{team}/audit", response_model=list[AuditRecordOut], openapi_extra=access(Access.VIEWER))
def get_audit(
    team: TeamName,
    ctx: Context,
    who: Caller,
    resource: Annotated[str | None, Query(pattern=REF_PATTERN.pattern, max_length=200, description="Only decisions about this TEAM/NAME.")] = None,
    decision: Annotated[Decision | None, Query(description="Only allowed or only denied decisions.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Maximum number of records to return, newest first.")] = 200,
) -> list[dict[str, Any]]:
    """List data access decisions the team made, or that concern the team's data, newest first."""
    check_team(who, team, Role.VIEWER, f"team {team!r}")
    with ctx.store.session() as session:
        return [_audit(row) for row in audit_trail(session, team=team, resource=resource, decision=decision, limit=limit)]


def _grant(row: Grant) -> dict[str, Any]:
    return {
        "id": row.id, "resource_kind": row.resource_kind, "resource": row.resource, "owner_team": row.owner_team,
        "grantee_team": row.grantee_team, "roles": list(row.roles), "expires_at": row.expires_at, "granted_by": row.granted_by,
        "granted_at": row.granted_at, "reason": row.reason or "", "revoked_at": row.revoked_at, "revoked_by": row.revoked_by,
    }


def _audit(row: AuditRecord) -> dict[str, Any]:
    return {
        "id": row.id, "at": row.at, "actor": row.actor, "team": row.team, "action": row.action, "resource_kind": row.resource_kind,
        "resource": row.resource, "version": row.version, "decision": row.decision, "reason": row.reason,
        "search_id": row.search_id, "data": dict(row.data or {}),
    }
