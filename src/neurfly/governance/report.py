"""The lineage of a trial or artifact as a team may see it."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.orm import Session

from neurfly.errors import NotFoundError
from neurfly.governance.access import AccessDeniedError, Caller, can_use_artifact, parse_ref
from neurfly.governance.artifacts import find_artifact
from neurfly.governance.audit import AuditEntry, record, record_after_transaction
from neurfly.governance.lineage import artifact_label, attempt_records, exposures_of_artifact, exposures_of_trial, find_trial
from neurfly.governance.models import AuditAction, Decision, ResourceKind
from neurfly.store import Search


def lineage_report(session: Session, caller: Caller, subject: str, now: float | None = None) -> dict[str, Any]:
    """Describe which data versions, in which roles, a trial or artifact saw, directly or through artifacts.

    Args:
        subject: A trial (``SEARCH#NUMBER`` or its numeric id) or an
            artifact (``team/name`` or ``team/name@version``).

    Returns:
        ``{"subject", "kind", "data", "attempts"}``. ``data`` lists each
        dataset version with its role and the artifacts it came through.
        ``attempts`` lists the trial's attempts (or those of the trial that
        produced the artifact) with their inputs and outputs.

    Raises:
        NotFoundError: No such trial or artifact.
        AccessDeniedError: The caller's team does not own the trial's search,
            nor own or hold a grant for the artifact.
    """
    now = time.time() if now is None else now
    if "/" in subject and "#" not in subject:
        return _artifact_report(session, caller, subject, now)
    trial = find_trial(session, subject)
    search = session.get(Search, trial.search_id)
    resource = f"{search.team}/{search.name}#{trial.number}"
    if search.team != caller.team:
        reason = f"trial {subject} belongs to team {search.team}"
        record_after_transaction(session, [AuditEntry(caller.user, caller.team, AuditAction.LINEAGE, ResourceKind.TRIAL, resource, Decision.DENY, reason, at=now)])
        raise AccessDeniedError(f"{reason}; team {caller.team} may not see its lineage", resource, AuditAction.LINEAGE)
    record(session, AuditEntry(caller.user, caller.team, AuditAction.LINEAGE, ResourceKind.TRIAL, resource, Decision.ALLOW, "owner team", search_id=search.id, at=now))
    return {
        "subject": f"trial {trial.number} of search {search.id} ({search.team}/{search.name})",
        "kind": "trial",
        "trial_id": trial.id,
        "data": [e.as_dict() for e in exposures_of_trial(session, trial.id)],
        "attempts": attempt_records(session, trial.id),
    }


def _artifact_report(session: Session, caller: Caller, subject: str, now: float) -> dict[str, Any]:
    ref = parse_ref(subject, "artifact")
    artifact = find_artifact(session, ref)
    verdict = can_use_artifact(session, caller.team, artifact, now) if artifact is not None else None
    if verdict is None or not verdict.allowed:
        reason = "no such artifact" if verdict is None else verdict.reason
        record_after_transaction(session, [AuditEntry(caller.user, caller.team, AuditAction.LINEAGE, ResourceKind.ARTIFACT, ref.key, Decision.DENY, reason, at=now)])
        raise NotFoundError("artifact", str(ref), f"or team {caller.team} has no grant for it; list artifacts with 'neurfly artifact list'")
    record(session, AuditEntry(caller.user, caller.team, AuditAction.LINEAGE, ResourceKind.ARTIFACT, ref.key, Decision.ALLOW, verdict.reason, version=artifact.digest, at=now))
    return {
        "subject": f"artifact {artifact_label(artifact)} ({artifact.kind}, trial {artifact.trial_id} of search {artifact.search_id})",
        "kind": "artifact",
        "artifact_id": artifact.id,
        "data": [e.as_dict() for e in exposures_of_artifact(session, artifact)],
        "attempts": attempt_records(session, artifact.trial_id),
    }
