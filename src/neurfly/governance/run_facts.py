"""Gathering the facts of OpenLineage events from the store's records."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from neurfly.core.states import AttemptState, SearchState
from neurfly.governance.emitter import LineageEmitter
from neurfly.governance.models import Artifact, AttemptInput, DataRole, Dataset, DatasetVersion
from neurfly.governance.openlineage import AttemptFacts, InputFact, OutputFact, SearchFacts, artifact_event
from neurfly.store import Attempt, Checkpoint, Search, Trial


def search_facts(search: Search, state: SearchState | None = None) -> SearchFacts:
    return SearchFacts(search.id, search.team, search.name, search.created_at, state or SearchState(search.state), search.message)


def attempt_facts(session: Session, attempt: Attempt) -> AttemptFacts:
    """Describe an attempt, including the earlier attempt it continues, if any."""
    trial = session.get(Trial, attempt.trial_id)
    return AttemptFacts(
        id=attempt.id, number=attempt.number, trial_id=attempt.trial_id, trial_number=trial.number, pool=attempt.pool,
        node=attempt.node, started_at=attempt.started_at, start_step=attempt.start_step, ended_at=attempt.ended_at,
        end_step=attempt.end_step, state=AttemptState(attempt.state), reason=attempt.reason, traceback=attempt.traceback,
        continues=_continues(session, attempt),
    )


def _continues(session: Session, attempt: Attempt) -> tuple[int, float] | None:
    previous = None
    if attempt.checkpoint_in_id is not None:
        checkpoint = session.get(Checkpoint, attempt.checkpoint_in_id)
        previous = session.get(Attempt, checkpoint.attempt_id) if checkpoint is not None else None
    if previous is None and attempt.number > 1:
        previous = session.scalars(select(Attempt).where(Attempt.trial_id == attempt.trial_id, Attempt.number == attempt.number - 1)).first()
    return (previous.id, previous.started_at) if previous is not None else None


def input_facts(session: Session, attempt: Attempt, include_reported: bool) -> list[InputFact]:
    """Return an attempt's inputs: the platform's, the trial's own reports (if asked) and its checkpoint."""
    facts = []
    roles = set()
    for row in session.scalars(select(AttemptInput).where(AttemptInput.attempt_id == attempt.id).order_by(AttemptInput.id)):
        if row.dataset_version_id is not None:
            version = session.get(DatasetVersion, row.dataset_version_id)
            dataset = session.get(Dataset, version.dataset_id)
            facts.append(InputFact(DataRole(row.role), "dataset", dataset.ref, version.version, dataset.sensitivity, tuple(dataset.tags or ())))
            roles.add(row.role)
        elif row.artifact_id is not None:
            artifact = session.get(Artifact, row.artifact_id)
            facts.append(InputFact(DataRole.WARM_START, "artifact", f"{artifact.team}/{artifact.name}", artifact.digest))
    if include_reported:
        facts.extend(_reported(attempt, roles))
    if attempt.checkpoint_in_id is not None:
        checkpoint = session.get(Checkpoint, attempt.checkpoint_in_id)
        if checkpoint is not None:
            facts.append(InputFact(DataRole.CHECKPOINT, "checkpoint", checkpoint.uri, checkpoint.digest))
    return facts


def _reported(attempt: Attempt, registered_roles: set[str]) -> list[InputFact]:
    facts = []
    for role_name, reported in sorted((attempt.data_versions or {}).items()):
        if role_name in registered_roles or role_name not in {r.value for r in DataRole} or not isinstance(reported, dict):
            continue
        name = str(reported.get("dataset", "unregistered"))
        facts.append(InputFact(DataRole(role_name), "dataset", f"unregistered/{name}", str(reported.get("version", "unknown")), registered=False))
    return facts


def output_facts(session: Session, attempt: Attempt) -> list[OutputFact]:
    """Return the final checkpoint an attempt wrote, if any."""
    if attempt.checkpoint_out_id is None:
        return []
    checkpoint = session.get(Checkpoint, attempt.checkpoint_out_id)
    return [OutputFact("checkpoint", checkpoint.uri, checkpoint.digest)] if checkpoint is not None else []


def emit_published(session: Session, artifact: Artifact, emitter: LineageEmitter | None = None, wait: bool = True) -> None:
    """Send an OTHER event that adds a just-published artifact to the outputs of the attempt that wrote it.

    With ``wait`` false, an event queued for HTTP is posted by the emitter's
    background thread after this returns; a long-lived server passes false.
    """
    import time

    emitter = emitter or LineageEmitter()
    attempt = session.get(Attempt, artifact.attempt_id)
    search = session.get(Search, artifact.search_id)
    event = artifact_event(search_facts(search), attempt_facts(session, attempt), f"{artifact.team}/{artifact.name}", artifact.digest,
                           emitter.settings.namespace, time.time())
    emitter.emit(search.id, event)
    if wait:
        emitter.flush()
