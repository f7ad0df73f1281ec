"""Artifacts: publish a trial's final checkpoint, list the team's and granted ones, walk their provenance."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from sqlalchemy.exc import IntegrityError

from neurfly.api.access import Access, Caller, Context, access, check_team
from neurfly.api.context import finite_json
from neurfly.api.queries import resolve_trial
from neurfly.api.routes.data import TeamName, lineage_or_error
from neurfly.api.schemas import ARTIFACT_VERSION_REGEX, NAME_REGEX, ArtifactOut, ArtifactRequest, LineageOut
from neurfly.auth import Role
from neurfly.errors import NotFoundError
from neurfly.governance.access import AccessDeniedError
from neurfly.governance.access import Caller as DataCaller
from neurfly.governance.artifacts import ArtifactError, list_artifacts, publish_artifact
from neurfly.governance.models import Artifact
from neurfly.governance.run_facts import emit_published

_logger = logging.getLogger(__name__)

router = APIRouter(tags=["data"])

OwnerName = Annotated[str, Path(pattern=NAME_REGEX, description="Team that owns the artifact.")]
ArtifactName = Annotated[str, Path(pattern=NAME_REGEX, description="Artifact name.")]


@router.get("/teams/{team}/artifacts", response_model=list[ArtifactOut], openapi_extra=access(Access.VIEWER))
def get_artifacts(team: TeamName, ctx: Context, who: Caller) -> list[dict[str, Any]]:
    """List the team's artifacts and those granted to it, by team and name."""
    check_team(who, team, Role.VIEWER, f"team {team!r}")
    with ctx.store.session() as session:
        return [_artifact(row) for row in list_artifacts(session, DataCaller(team, who.user))]


@router.post(
    "/teams/{team}/artifacts",
    response_model=ArtifactOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": ArtifactOut, "description": "The checkpoint is already published under this name; it is returned."}},
    openapi_extra=access(Access.MEMBER),
)
def post_artifact(team: TeamName, body: ArtifactRequest, ctx: Context, who: Caller, response: Response) -> dict[str, Any]:
    """Publish an ended trial's final checkpoint as an artifact of the team, with the provenance of its data."""
    check_team(who, team, Role.MEMBER, f"team {team!r}")
    now = time.time()
    with ctx.store.session() as session:
        resolve_trial(session, who, body.trial_id)
        try:
            artifact = publish_artifact(session, DataCaller(team, who.user), str(body.trial_id), body.name, body.kind, body.description, now=now)
            session.commit()
        except AccessDeniedError as exc:
            raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
        except NotFoundError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        except ArtifactError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        except IntegrityError:
            raise HTTPException(status.HTTP_409_CONFLICT, f"artifact {team}/{body.name} was published by another request at the same time; list artifacts to see it") from None

        if artifact.created_at != now:
            response.status_code = status.HTTP_200_OK
            return _artifact(artifact)
        _logger.info("user %s published artifact %s/%s from trial %d", who.user, team, body.name, body.trial_id)
        emit_published(session, artifact, ctx.lineage_emitter(), wait=False)
        return _artifact(artifact)


@router.get("/teams/{team}/artifacts/{owner}/{artifact}/lineage", response_model=LineageOut, openapi_extra=access(Access.VIEWER))
def get_artifact_lineage(
    team: TeamName,
    owner: OwnerName,
    artifact: ArtifactName,
    ctx: Context,
    who: Caller,
    version: Annotated[str | None, Query(pattern=ARTIFACT_VERSION_REGEX, description="Digest or digest prefix; default: the newest version.")] = None,
) -> dict[str, Any]:
    """Walk an artifact's provenance: every dataset version behind it, directly or through other artifacts, and the attempts that made it."""
    check_team(who, team, Role.VIEWER, f"team {team!r}")
    subject = f"{owner}/{artifact}" + (f"@{version}" if version is not None else "")
    with ctx.store.session() as session:
        report = lineage_or_error(session, DataCaller(team, who.user), subject)
        session.commit()
    return finite_json(report)


def _artifact(row: Artifact) -> dict[str, Any]:
    return {
        "ref": f"{row.team}/{row.name}", "team": row.team, "name": row.name, "version": row.digest, "kind": row.kind, "uri": row.uri,
        "search_id": row.search_id, "trial_id": row.trial_id, "step": row.step, "provenance": finite_json(list(row.provenance or [])),
        "description": row.description or "", "created_at": row.created_at, "created_by": row.created_by,
    }
