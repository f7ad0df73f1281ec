"""Lineage: which data versions, in which roles, reached a checkpoint, trial or artifact.

The walk reads only records the controller already keeps: each attempt's
inputs (``attempt_data_inputs``), the data versions the trial reported
(``attempts.data_versions``), and the checkpoint it resumed from
(``attempts.checkpoint_in_id``). A warm start from an artifact continues
the walk through the artifact's checkpoint, so data seen by any model an
artifact was built from is found at any depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from neurfly.errors import NotFoundError
from neurfly.governance.models import Artifact, AttemptInput, DataRole, Dataset, DatasetVersion
from neurfly.store import Attempt, Checkpoint, Search, Trial


@dataclass(frozen=True)
class Exposure:
    """One dataset version that reached a model, in one role.

    Attributes:
        dataset: ``team/name`` of a registered dataset, or the name a trial
            reported for unregistered data (``sklearn:digits``).
        version: ``algorithm:digest`` of the registered version, or what the
            trial reported.
        role: The role the data played for the attempt that read it.
        attempt_id: The attempt that read it.
        via: Artifacts the data came through, nearest first; empty when the
            subject's own attempts read it.
        dataset_version_id: Row id of the registered version; ``None`` for
            unregistered data.
    """

    dataset: str
    version: str
    role: DataRole
    attempt_id: int
    via: tuple[str, ...] = ()
    dataset_version_id: int | None = None

    @property
    def key(self) -> tuple[str, str, str, tuple[str, ...]]:
        return (self.dataset, self.version, self.role.value, self.via)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset, "version": self.version, "role": self.role.value, "attempt_id": self.attempt_id,
            "via": list(self.via), "registered": self.dataset_version_id is not None,
        }


@dataclass
class _Walk:
    session: Session
    seen_attempts: set[tuple[int, tuple[str, ...]]] = field(default_factory=set)
    found: dict[tuple[str, str, str, tuple[str, ...]], Exposure] = field(default_factory=dict)

    def attempt(self, attempt_id: int, via: tuple[str, ...]) -> None:
        if (attempt_id, via) in self.seen_attempts:
            return
        self.seen_attempts.add((attempt_id, via))
        attempt = self.session.get(Attempt, attempt_id)
        if attempt is None:
            return

        registered_roles = set()
        for row in self.session.scalars(select(AttemptInput).where(AttemptInput.attempt_id == attempt_id)):
            if row.dataset_version_id is not None:
                self._add_registered(row.dataset_version_id, DataRole(row.role), attempt_id, via)
                registered_roles.add(row.role)
            elif row.artifact_id is not None:
                self.artifact(row.artifact_id, via)
        self._add_reported(attempt, registered_roles, via)
        if attempt.checkpoint_in_id is not None:
            self.checkpoint(attempt.checkpoint_in_id, via)

    def checkpoint(self, checkpoint_id: int, via: tuple[str, ...]) -> None:
        checkpoint = self.session.get(Checkpoint, checkpoint_id)
        if checkpoint is not None:
            self.attempt(checkpoint.attempt_id, via)

    def artifact(self, artifact_id: int, via: tuple[str, ...]) -> None:
        artifact = self.session.get(Artifact, artifact_id)
        if artifact is None or artifact_label(artifact) in via:
            return
        self.checkpoint(artifact.checkpoint_id, (*via, artifact_label(artifact)))

    def _add_registered(self, version_id: int, role: DataRole, attempt_id: int, via: tuple[str, ...]) -> None:
        version = self.session.get(DatasetVersion, version_id)
        dataset = self.session.get(Dataset, version.dataset_id) if version is not None else None
        if dataset is None:
            return
        self._add(Exposure(dataset.ref, version.version, role, attempt_id, via, version.id))

    def _add_reported(self, attempt: Attempt, registered_roles: set[str], via: tuple[str, ...]) -> None:
        for role_name, reported in (attempt.data_versions or {}).items():
            if role_name in registered_roles:
                continue
            try:
                role = DataRole(role_name)
            except ValueError:
                continue
            if isinstance(reported, dict):
                name, version = str(reported.get("dataset", "?")), str(reported.get("version", "?"))
            else:
                name, version = "unregistered", str(reported)
            self._add(Exposure(name, version, role, attempt.id, via))

    def _add(self, exposure: Exposure) -> None:
        self.found.setdefault(exposure.key, exposure)


def artifact_label(artifact: Artifact) -> str:
    """Return ``team/name@algorithm:digest-prefix``, how an artifact appears in a chain."""
    algorithm, _, digest = artifact.digest.partition(":")
    return f"{artifact.team}/{artifact.name}@{algorithm}:{digest[:12]}"


def exposures_of_checkpoint(session: Session, checkpoint_id: int) -> list[Exposure]:
    """Return every data version behind a checkpoint, through earlier attempts and artifacts."""
    walk = _Walk(session)
    walk.checkpoint(checkpoint_id, ())
    return _sorted(walk.found.values())


def exposures_of_trial(session: Session, trial_id: int) -> list[Exposure]:
    """Return every data version any attempt of a trial saw."""
    walk = _Walk(session)
    for attempt_id in session.scalars(select(Attempt.id).where(Attempt.trial_id == trial_id).order_by(Attempt.number)):
        walk.attempt(attempt_id, ())
    return _sorted(walk.found.values())


def exposures_of_artifact(session: Session, artifact: Artifact) -> list[Exposure]:
    """Return every data version behind an artifact; each chain starts with the artifact itself."""
    walk = _Walk(session)
    walk.artifact(artifact.id, ())
    return _sorted(walk.found.values())


def _sorted(exposures: Any) -> list[Exposure]:
    return sorted(exposures, key=lambda e: (len(e.via), e.via, e.dataset, e.role.value, e.attempt_id))


# -- the lineage of a trial or artifact, for people ---------------------------------------------


def attempt_records(session: Session, trial_id: int) -> list[dict[str, Any]]:
    """Describe each attempt of a trial with its inputs by role and its outputs."""
    attempts = session.scalars(select(Attempt).where(Attempt.trial_id == trial_id).order_by(Attempt.number)).all()
    return [_attempt_record(session, attempt) for attempt in attempts]


def _attempt_record(session: Session, attempt: Attempt) -> dict[str, Any]:
    inputs = []
    for row in session.scalars(select(AttemptInput).where(AttemptInput.attempt_id == attempt.id).order_by(AttemptInput.id)):
        inputs.append(_input_record(session, row))
    registered = {i["role"] for i in inputs if i["kind"] == "dataset"}
    for role, reported in (attempt.data_versions or {}).items():
        if role not in registered and isinstance(reported, dict):
            inputs.append({"role": role, "kind": "dataset", "name": reported.get("dataset"), "version": reported.get("version"), "registered": False})
    if attempt.checkpoint_in_id is not None:
        checkpoint = session.get(Checkpoint, attempt.checkpoint_in_id)
        inputs.append({"role": DataRole.CHECKPOINT.value, "kind": "checkpoint", "name": checkpoint.uri if checkpoint else None,
                       "version": checkpoint.digest if checkpoint else None, "checkpoint_id": attempt.checkpoint_in_id,
                       "from_attempt_id": checkpoint.attempt_id if checkpoint else None})

    outputs = []
    for checkpoint in session.scalars(select(Checkpoint).where(Checkpoint.attempt_id == attempt.id).order_by(Checkpoint.id)):
        outputs.append({"kind": "checkpoint", "name": checkpoint.uri, "version": checkpoint.digest, "step": checkpoint.step,
                        "checkpoint_id": checkpoint.id, "final": checkpoint.id == attempt.checkpoint_out_id})
    for artifact in session.scalars(select(Artifact).where(Artifact.attempt_id == attempt.id).order_by(Artifact.id)):
        outputs.append({"kind": artifact.kind, "name": f"{artifact.team}/{artifact.name}", "version": artifact.digest, "artifact_id": artifact.id})
    return {
        "id": attempt.id, "number": attempt.number, "state": attempt.state, "pool": attempt.pool, "node": attempt.node,
        "start_step": attempt.start_step, "end_step": attempt.end_step, "inputs": inputs, "outputs": outputs,
    }


def _input_record(session: Session, row: AttemptInput) -> dict[str, Any]:
    if row.dataset_version_id is not None:
        version = session.get(DatasetVersion, row.dataset_version_id)
        dataset = session.get(Dataset, version.dataset_id)
        return {"role": row.role, "kind": "dataset", "name": dataset.ref, "version": version.version, "registered": True}
    artifact = session.get(Artifact, row.artifact_id)
    return {"role": row.role, "kind": "artifact", "name": f"{artifact.team}/{artifact.name}", "version": artifact.digest, "artifact_id": artifact.id}


def find_trial(session: Session, key: str) -> Trial:
    """Return the trial named ``SEARCH#NUMBER`` (search id, name or team/name) or by numeric id.

    Raises:
        NotFoundError: No such trial.
    """
    if key.isdigit():
        trial = session.get(Trial, int(key))
    elif "#" in key:
        search_key, _, number = key.rpartition("#")
        trial = None
        if number.isdigit():
            search = _find_search(session, search_key)
            if search is not None:
                trial = session.scalars(select(Trial).where(Trial.search_id == search.id, Trial.number == int(number))).first()
    else:
        trial = None
    if trial is None:
        raise NotFoundError("trial", key, "name it SEARCH#NUMBER (e.g. digits-tpe#3) or by its numeric id; list trials with 'neurfly trials SEARCH'")
    return trial


def _find_search(session: Session, key: str) -> Search | None:
    if key.isdigit():
        return session.get(Search, int(key))
    team, _, name = key.rpartition("/")
    query = select(Search).where(Search.name == name).order_by(Search.id.desc())
    if team:
        query = query.where(Search.team == team)
    return session.scalars(query).first()
