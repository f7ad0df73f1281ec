"""Datasets, their versions and lineage, through neurfly.governance for one of the caller's teams.

Governance decides what a team may see (its own data, shared sensitivity
classes, and grants) and records each decision, with the requesting user, in
its audit log. Members register datasets and versions of their own team.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from neurfly.api.access import Access, Caller, Context, access, check_team
from neurfly.api.context import finite_json
from neurfly.api.datasources import version_info
from neurfly.api.queries import resolve_trial
from neurfly.api.routes import invalid
from neurfly.api.schemas import (
    MAX_ID,
    NAME_REGEX,
    DatasetOut,
    DatasetRequest,
    DatasetVersionOut,
    DatasetVersionRequest,
    LineageOut,
)
from neurfly.auth import Role
from neurfly.core.cluster import ClusterConfig
from neurfly.errors import NeurflyError, NotFoundError
from neurfly.governance.access import AccessDeniedError, can_see_dataset
from neurfly.governance.access import Caller as DataCaller
from neurfly.governance.models import AuditAction, Dataset, DatasetVersion
from neurfly.governance.registry import DatasetError, describe_dataset, list_datasets, own_ref, register_version
from neurfly.governance.report import lineage_report

_logger = logging.getLogger(__name__)

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


@router.post("/teams/{team}/datasets", response_model=DatasetOut, status_code=status.HTTP_201_CREATED, openapi_extra=access(Access.MEMBER))
def post_dataset(team: TeamName, body: DatasetRequest, ctx: Context, who: Caller) -> dict[str, Any]:
    """Register a dataset of the team with its first version; the registration is audited."""
    check_team(who, team, Role.MEMBER, f"team {team!r}")
    _check_regions(ctx.cluster, body.regions)
    with ctx.store.session() as session:
        if _find_dataset(session, team, body.name) is not None:
            raise _exists(team, body.name)
    info = version_info(body.version, ctx.settings.data_roots)

    now = time.time()
    with ctx.store.session() as session:
        try:
            version = register_version(
                session, DataCaller(team, who.user), body.name, info, sensitivity=body.sensitivity, tags=body.tags,
                regions=body.regions, description=body.description, now=now,
            )
            dataset = session.get(Dataset, version.dataset_id)
            if dataset.created_at != now:
                # Another request created the dataset between the check above and this registration.
                raise _exists(team, body.name)
            session.commit()
        except DatasetError as exc:
            raise invalid(("body",), str(exc)) from None
        except IntegrityError:
            raise _exists(team, body.name) from None
        _logger.info("user %s registered dataset %s with version %s", who.user, dataset.ref, version.version)
        return {**_dataset(dataset), "versions": [_version(version)]}


@router.get("/teams/{team}/datasets/{owner}/{name}/versions", response_model=list[DatasetVersionOut], openapi_extra=access(Access.VIEWER))
def get_dataset_versions(team: TeamName, owner: OwnerName, name: DatasetName, ctx: Context, who: Caller) -> list[dict[str, Any]]:
    """List the versions of a dataset the team may see, newest first."""
    check_team(who, team, Role.VIEWER, f"team {team!r}")
    with ctx.store.session() as session:
        try:
            _, versions = describe_dataset(session, DataCaller(team, who.user), f"{owner}/{name}")
        except AccessDeniedError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        session.commit()
        return [_version(v) for v in versions]


@router.post(
    "/teams/{team}/datasets/{owner}/{name}/versions",
    response_model=DatasetVersionOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": DatasetVersionOut, "description": "The dataset has a version of the same content; it is returned."}},
    openapi_extra=access(Access.MEMBER),
)
def post_dataset_version(
    team: TeamName, owner: OwnerName, name: DatasetName, body: DatasetVersionRequest, ctx: Context, who: Caller, response: Response,
) -> dict[str, Any]:
    """Register a version of a dataset of the team; the dataset keeps its sensitivity, tags and regions."""
    check_team(who, team, Role.MEMBER, f"team {team!r}")
    caller = DataCaller(team, who.user)
    with ctx.store.session() as session:
        _check_own_dataset(session, caller, owner, name)
    info = version_info(body.version, ctx.settings.data_roots)

    now = time.time()
    with ctx.store.session() as session:
        try:
            version = register_version(session, caller, f"{owner}/{name}", info, now=now)
            session.commit()
        except DatasetError as exc:
            raise invalid(("body", "version"), str(exc)) from None
        except IntegrityError:
            raise HTTPException(status.HTTP_409_CONFLICT, f"version {info.version} of {owner}/{name} was registered by another request at the same time; list the versions to see it") from None
        if version.created_at != now:
            response.status_code = status.HTTP_200_OK
        else:
            _logger.info("user %s registered version %s of dataset %s/%s", who.user, version.version, owner, name)
        return _version(version)


def _check_own_dataset(session: Session, caller: DataCaller, owner: str, name: str) -> None:
    """Raise 404 unless ``owner/name`` is a dataset the caller's team may see, and 403 unless the team owns it."""
    dataset = _find_dataset(session, owner, name)
    if dataset is None or not can_see_dataset(session, caller.team, dataset, time.time()).allowed:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"dataset {owner}/{name} not found; list the datasets of team {caller.team} with GET /api/v1/teams/{caller.team}/datasets")
    try:
        own_ref(session, caller, f"{owner}/{name}", AuditAction.REGISTER, time.time())
    except AccessDeniedError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{exc}; members of team {owner} register its versions") from None


def _find_dataset(session: Session, team: str, name: str) -> Dataset | None:
    return session.scalars(select(Dataset).where(Dataset.team == team, Dataset.name == name)).first()


def _exists(team: str, name: str) -> HTTPException:
    return HTTPException(
        status.HTTP_409_CONFLICT,
        f"dataset {team}/{name} exists; add a version with POST /api/v1/teams/{team}/datasets/{team}/{name}/versions",
    )


def _check_regions(cluster: ClusterConfig, regions: list[str]) -> None:
    known = sorted({pool.region for pool in cluster.pools})
    for index, region in enumerate(regions):
        if region not in known:
            raise invalid(("body", "regions", index), f"region {region!r} has no pool in this cluster; use one of {', '.join(known)}")


@router.get("/trials/{trial_id}/lineage", response_model=LineageOut, openapi_extra=access(Access.VIEWER))
def get_lineage(trial_id: Annotated[int, Path(ge=1, le=MAX_ID)], ctx: Context, who: Caller) -> dict[str, Any]:
    """Report which data versions, in which roles, a trial saw, directly or through artifacts."""
    with ctx.store.session() as session:
        search, _ = resolve_trial(session, who, trial_id)
        report = lineage_or_error(session, DataCaller(search.team, who.user), str(trial_id))
        session.commit()
    return finite_json(report)


def lineage_or_error(session: Session, caller: DataCaller, subject: str) -> dict[str, Any]:
    """Return ``lineage_report`` of ``subject``; 404 when the caller's team may not see it, 409 when it cannot be built."""
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
