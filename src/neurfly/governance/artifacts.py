"""Artifacts: a trial's final checkpoint published under a name, and the checks before another search starts from one.

Before a search may start from an artifact, its provenance is walked back
to every dataset version behind it, training and validation alike, through
any artifact it was itself built from. The consuming team must be allowed
to use each of them for ``warm_start``; a permitted crossing of team lines
is audited like any other decision.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from neurfly.core.states import TrialState
from neurfly.errors import NeurflyError
from neurfly.governance.access import AccessDeniedError, Caller, Ref, can_use_artifact, can_use_dataset, parse_ref
from neurfly.governance.audit import AuditEntry, record, record_after_transaction
from neurfly.governance.lineage import Exposure, artifact_label, exposures_of_artifact, exposures_of_checkpoint, find_trial
from neurfly.governance.models import (
    Artifact,
    ArtifactKind,
    AuditAction,
    DataRole,
    Dataset,
    DatasetVersion,
    Decision,
    ResourceKind,
)
from neurfly.store import Checkpoint, Search

_logger = logging.getLogger(__name__)


class ArtifactError(NeurflyError, ValueError):
    """An artifact cannot be published or found; the message names the value and the fix."""


def publish_artifact(
    session: Session,
    caller: Caller,
    trial_key: str,
    name: str,
    kind: ArtifactKind = ArtifactKind.CHECKPOINT,
    description: str = "",
    now: float | None = None,
) -> Artifact:
    """Publish a finished trial's final checkpoint as artifact ``name`` of the caller's team.

    Publishing the same checkpoint under the same name again returns the
    existing artifact. The artifact is visible only to the caller's team
    until it grants it to another team.

    Raises:
        NotFoundError: No such trial.
        AccessDeniedError: The trial belongs to another team's search.
        ArtifactError: The trial has not ended, or has no checkpoint.
    """
    now = time.time() if now is None else now
    trial = find_trial(session, trial_key)
    search = session.get(Search, trial.search_id)
    label = f"{caller.team}/{name}"
    if search.team != caller.team:
        reason = f"trial {trial_key} belongs to a search of team {search.team}; team {caller.team} cannot publish it"
        record_after_transaction(session, [AuditEntry(caller.user, caller.team, AuditAction.PUBLISH, ResourceKind.ARTIFACT, label, Decision.DENY, reason, at=now)])
        raise AccessDeniedError(reason, label, AuditAction.PUBLISH)
    parse_ref(label, "artifact")
    checkpoint = _final_checkpoint(session, trial, trial_key)

    existing = session.scalars(select(Artifact).where(Artifact.team == caller.team, Artifact.name == name, Artifact.digest == checkpoint.digest)).first()
    if existing is not None:
        return existing
    provenance = [e.as_dict() for e in exposures_of_checkpoint(session, checkpoint.id)]
    artifact = Artifact(
        team=caller.team, name=name, kind=ArtifactKind(kind).value, uri=checkpoint.uri, digest=checkpoint.digest,
        checkpoint_id=checkpoint.id, search_id=search.id, trial_id=trial.id, attempt_id=checkpoint.attempt_id, step=checkpoint.step,
        provenance=provenance, description=description, created_at=now, created_by=caller.user,
    )
    session.add(artifact)
    session.flush()
    record(session, AuditEntry(caller.user, caller.team, AuditAction.PUBLISH, ResourceKind.ARTIFACT, label, Decision.ALLOW,
                               f"checkpoint {checkpoint.id} of trial {trial.id} (search {search.id}) published", version=artifact.digest,
                               search_id=search.id, data={"datasets": sorted({p['dataset'] for p in provenance})}, at=now))
    _logger.info("artifact %s published from trial %d by %s", artifact_label(artifact), trial.id, caller.user)
    return artifact


def _final_checkpoint(session: Session, trial, trial_key: str) -> Checkpoint:  # noqa: ANN001 - a Trial row
    if not TrialState(trial.state).is_final and trial.state != TrialState.PAUSED.value:
        raise ArtifactError(f"trial {trial_key} is {trial.state}; publish it once it has ended")
    checkpoint = session.get(Checkpoint, trial.checkpoint_id) if trial.checkpoint_id is not None else None
    if checkpoint is None or checkpoint.deleted:
        raise ArtifactError(f"trial {trial_key} has no checkpoint to publish; its training code must call trial.save_checkpoint(...)")
    return checkpoint


def find_artifact(session: Session, ref: Ref) -> Artifact | None:
    """Return the artifact ``team/name`` (newest) or ``team/name@digest`` (a digest prefix works)."""
    query = select(Artifact).where(Artifact.team == ref.team, Artifact.name == ref.name).order_by(Artifact.id.desc())
    rows = list(session.scalars(query))
    if ref.version is None:
        return rows[0] if rows else None
    expected = ref.version if ":" in ref.version else f"sha256:{ref.version}"
    matches = [a for a in rows if a.digest.startswith(expected)]
    return matches[0] if len(matches) == 1 else None


def list_artifacts(session: Session, caller: Caller, now: float | None = None) -> list[Artifact]:
    """Return the artifacts of the caller's team and those granted to it."""
    now = time.time() if now is None else now
    rows = session.scalars(select(Artifact).order_by(Artifact.team, Artifact.name, Artifact.id))
    return [a for a in rows if can_use_artifact(session, caller.team, a, now).allowed]


# -- starting a search from an artifact ---------------------------------------------------------


@dataclass
class ArtifactCheck:
    """The outcome of checking a warm start from an artifact, not yet audited.

    Attributes:
        regions: Regions every dataset behind the artifact allows; ``None``
            when none of them is pinned to regions.
        datasets: Each registered dataset behind the artifact with the
            exposure that reached it, for residency messages.
    """

    ref: Ref
    artifact: Artifact | None = None
    entries: list[AuditEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    exposures: list[Exposure] = field(default_factory=list)
    datasets: list[tuple[Dataset, Exposure]] = field(default_factory=list)


def check_artifact_use(session: Session, caller: Caller, reference: str, search_id: int | None = None, now: float | None = None) -> ArtifactCheck:
    """Check that the caller's team may start from an artifact and use every dataset behind it; writes nothing."""
    now = time.time() if now is None else now
    try:
        ref = parse_ref(reference, "artifact")
    except ValueError as exc:
        return ArtifactCheck(Ref("?", "?"), problems=[f"warm_start.artifact: {exc}"])
    check = ArtifactCheck(ref)
    artifact = find_artifact(session, ref)
    verdict = can_use_artifact(session, caller.team, artifact, now) if artifact is not None else None
    if verdict is None or not verdict.allowed:
        reason = "no such artifact" if verdict is None else verdict.reason
        check.entries.append(AuditEntry(caller.user, caller.team, AuditAction.WARM_START, ResourceKind.ARTIFACT, ref.key, Decision.DENY, reason, search_id=search_id, at=now))
        check.problems.append(
            f"warm_start.artifact: artifact {ref} not found, or team {caller.team} has no grant for it; list artifacts with "
            f"'neurfly artifact list', or ask team {ref.team} for 'neurfly grant artifact {ref.key} --to {caller.team}'"
        )
        return check

    check.artifact = artifact
    check.entries.append(AuditEntry(caller.user, caller.team, AuditAction.WARM_START, ResourceKind.ARTIFACT, ref.key, Decision.ALLOW,
                                    verdict.reason, version=artifact.digest, search_id=search_id, at=now))
    check.exposures = exposures_of_artifact(session, artifact)
    for exposure in check.exposures:
        _check_exposure(session, caller, check, exposure, search_id, now)
    return check


def _check_exposure(session: Session, caller: Caller, check: ArtifactCheck, exposure: Exposure, search_id: int | None, now: float) -> None:
    if exposure.dataset_version_id is None:
        return
    version = session.get(DatasetVersion, exposure.dataset_version_id)
    dataset = session.get(Dataset, version.dataset_id)
    check.datasets.append((dataset, exposure))
    chain = " -> ".join(exposure.via)
    data = {"artifact": str(check.ref), "chain": list(exposure.via), "role": exposure.role.value, "attempt_id": exposure.attempt_id}
    verdict = can_use_dataset(session, caller.team, dataset, DataRole.WARM_START, now)
    if not verdict.allowed:
        check.entries.append(AuditEntry(caller.user, caller.team, AuditAction.CROSS, ResourceKind.DATASET, dataset.ref, Decision.DENY,
                                        verdict.reason, version=exposure.version, search_id=search_id, data=data, at=now))
        check.problems.append(
            f"warm_start.artifact: team {caller.team} may not use dataset {dataset.ref}@{exposure.version} "
            f"({dataset.sensitivity}{_tags(dataset)}, used for {exposure.role.value}), reached through {chain}: {verdict.reason}; "
            f"start from another artifact, or ask team {dataset.team} for a warm_start grant on {dataset.ref}"
        )
        return
    if dataset.team != caller.team:
        check.entries.append(AuditEntry(caller.user, caller.team, AuditAction.CROSS, ResourceKind.DATASET, dataset.ref, Decision.ALLOW,
                                        f"reached through {chain}: {verdict.reason}", version=exposure.version, search_id=search_id, data=data, at=now))


def _tags(dataset: Dataset) -> str:
    return f", {', '.join(dataset.tags)}" if dataset.tags else ""
