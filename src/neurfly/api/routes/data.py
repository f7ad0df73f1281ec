"""Datasets, grants and lineage, read through neurfly.governance for one of the caller's teams.

Governance decides what a team may see (its own data, shared sensitivity
classes, and grants) and records each decision in its audit log.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from sqlalchemy.orm import Session

from neurfly.api.access import Access, Caller, Context, access, check_team
from neurfly.api.context import finite_json
from neurfly.api.queries import resolve_trial
from neurfly.api.schemas import MAX_ID, NAME_REGEX, DatasetOut, GrantOut, LineageOut
from neurfly.auth import Role
from neurfly.errors import NeurflyError, NotFoundError
from neurfly.governance.access import AccessDeniedError
from neurfly.governance.access import Caller as DataCaller
from neurfly.governance.access import list_grants
from neurfly.governance.models import Dataset, DatasetVersion, Grant
from neurfly.governance.registry import describe_dataset, list_datasets
from neurfly.governance.report import lineage_report

router = APIRouter(tags=["data"])

TeamName = Annotated[str, Path(pattern=NAME_REGEX, description="The team the request acts for.")]
OwnerName = Annotated[str, Path(pattern=NAME_REGEX, description="Team that owns the dataset.")]
DatasetName = Annotated[str, Path(pattern=NAME_REGEX, description="Dataset name.")]


@router.get("/teams/{team}/datasets", response_model=list[DatasetOut], openapi_extra=access(Access.VIEWER))
def get_datasets(team: TeamName, ctx: Context, who: Caller) -> list[dict[str, Any]]:
    """List the datasets a team may see: its own, shared classes of other teams, and granted ones."""
    check_team(who, team, Role.VIEWER, f"team {team!r}")
    with ctx.store.session() as session:
        rows = list_datasets(session, DataCaller(team, who.user))
        session.commit()
        return [_dataset(row) for row in rows]


@router.get("/teams/{team}/datasets/{owner}/{name}", response_model=DatasetOut, openapi_extra=access(Access.VIEWER))
def get_dataset(team: TeamName, owner: OwnerName, name: DatasetName, ctx: Context, who: Caller) -> dict[str, Any]:
    """Show a dataset the team may see, with its versions, newest first."""
    check_team(who, team, Role.VIEWER, f"team {team!r}")
    with ctx.store.session() as session:
        try:
            dataset, versions = describe_dataset(session, DataCaller(team, who.user), f"{owner}/{name}")
        except AccessDeniedError as exc:
            session.commit()
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        session.commit()
        return {**_dataset(dataset), "versions": [_version(v) for v in versions]}


@router.get("/teams/{team}/grants", response_model=list[GrantOut], openapi_extra=access(Access.VIEWER))
def get_grants(team: TeamName, ctx: Context, who: Caller) -> list[dict[str, Any]]:
    """List the grants a team gave or received, newest first."""
    check_team(who, team, Role.VIEWER, f"team {team!r}")
    with ctx.store.session() as session:
        return [_grant(row) for row in list_grants(session, team)]


@router.get("/trials/{trial_id}/lineage", response_model=LineageOut, openapi_extra=access(Access.VIEWER))
def get_lineage(trial_id: Annotated[int, Path(ge=1, le=MAX_ID)], ctx: Context, who: Caller) -> dict[str, Any]:
    """Report which data versions, in which roles, a trial saw, directly or through artifacts."""
    with ctx.store.session() as session:
        search, _ = resolve_trial(session, who, trial_id)
        report = _lineage(session, DataCaller(search.team, who.user), str(trial_id))
        session.commit()
    return finite_json(report)


def _lineage(session: Session, caller: DataCaller, subject: str) -> dict[str, Any]:
    try:
        return lineage_report(session, caller, subject)
    except (AccessDeniedError, NotFoundError) as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except NeurflyError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


def _dataset(row: Dataset) -> dict[str, Any]:
    return {
        "ref": f"{row.team}/{row.name}", "team": row.team, "name": row.name, "sensitivity": row.sensitivity,
        "tags": list(row.tags or []), "regions": list(row.regions or []), "description": row.description or "",
        "created_at": row.created_at, "created_by": row.created_by,
    }


def _version(row: DatasetVersion) -> dict[str, Any]:
    return {
        "id": row.id, "algorithm": row.algorithm, "digest": row.digest, "source": row.source, "uri": row.uri,
        "format": row.format, "rows": row.rows, "size_bytes": row.size_bytes, "created_at": row.created_at, "created_by": row.created_by,
    }


def _grant(row: Grant) -> dict[str, Any]:
    return {
        "id": row.id, "resource_kind": row.resource_kind, "resource": row.resource, "owner_team": row.owner_team,
        "grantee_team": row.grantee_team, "roles": list(row.roles), "expires_at": row.expires_at, "granted_by": row.granted_by,
        "granted_at": row.granted_at, "reason": row.reason or "", "revoked_at": row.revoked_at, "revoked_by": row.revoked_by,
    }
