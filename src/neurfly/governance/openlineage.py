"""OpenLineage run events for searches and attempts.

A search is a parent run of job ``TEAM.SEARCH``; each attempt of a trial is
a child run of job ``TEAM.SEARCH.trial-N`` with a ``parent`` facet. An
attempt that resumes another is linked to it in the standard
``jobDependencies`` run facet (upstream run), and the checkpoint it reads
is the dataset the other attempt wrote. Inputs carry the custom
``neurfly_dataRole`` input facet (training, validation, warm start or
checkpoint); attempts carry the custom ``neurfly_attempt`` run facet.

Run ids are UUIDv7 values derived from the start time and the record ids,
so the START and the final event of a run share an id across controller
restarts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlparse

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    BaseFacet,
    InputDatasetFacet,
    RunFacet,
    dataset_version_dataset,
    error_message_run,
    job_dependencies_run,
    job_type_job,
    parent_run,
    processing_engine_run,
)
from openlineage.client.uuid import generate_static_uuid

from neurfly.core.states import AttemptState, SearchState
from neurfly.governance.models import DataRole

_logger = logging.getLogger(__name__)

try:
    NEURFLY_VERSION = version("neurfly")
except PackageNotFoundError:  # running from a source tree that is not installed
    NEURFLY_VERSION = "0.0.0"

PRODUCER = f"urn:neurfly:{NEURFLY_VERSION}"
# The custom facets' JSON schemas are ``FACET_SCHEMAS`` below; their URLs name them, nothing is fetched.
FACET_SCHEMA_BASE = "urn:neurfly:openlineage:facets:1-0-0"
DATA_ROLE_FACET = "neurfly_dataRole"
ATTEMPT_FACET = "neurfly_attempt"


@attr.define
class DataRoleInputDatasetFacet(InputDatasetFacet):
    """The role an input played for a NeurFly attempt, and its governance class."""

    role: str
    sensitivity: str | None = attr.field(default=None)
    tags: list[str] | None = attr.field(default=None)
    registered: bool = attr.field(default=True)
    via: list[str] | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return f"{FACET_SCHEMA_BASE}:DataRoleInputDatasetFacet.json#/$defs/DataRoleInputDatasetFacet"


@attr.define
class AttemptRunFacet(RunFacet):
    """Run facet with the run's trial and attempt, its placement, and the attempt it continues."""

    searchId: int  # noqa: N815 - OpenLineage facets use camelCase field names
    trialId: int  # noqa: N815
    trialNumber: int  # noqa: N815
    attemptId: int  # noqa: N815
    attemptNumber: int  # noqa: N815
    pool: str
    node: str
    startStep: int  # noqa: N815
    endStep: int | None = attr.field(default=None)  # noqa: N815
    state: str | None = attr.field(default=None)
    continuesRunId: str | None = attr.field(default=None)  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return f"{FACET_SCHEMA_BASE}:AttemptRunFacet.json#/$defs/AttemptRunFacet"


_BASE = {"_producer": {"type": "string"}, "_schemaURL": {"type": "string"}}
FACET_SCHEMAS: dict[str, dict[str, Any]] = {
    "DataRoleInputDatasetFacet": {
        "type": "object",
        "required": ["_producer", "_schemaURL", "role"],
        "properties": {
            **_BASE,
            "role": {"type": "string", "enum": [r.value for r in DataRole]},
            "sensitivity": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "registered": {"type": "boolean"},
            "via": {"type": "array", "items": {"type": "string"}},
        },
    },
    "AttemptRunFacet": {
        "type": "object",
        "required": ["_producer", "_schemaURL", "searchId", "trialId", "trialNumber", "attemptId", "attemptNumber", "pool", "node", "startStep"],
        "properties": {
            **_BASE,
            **{key: {"type": "integer"} for key in ("searchId", "trialId", "trialNumber", "attemptId", "attemptNumber", "startStep", "endStep")},
            "pool": {"type": "string"}, "node": {"type": "string"}, "state": {"type": "string"},
            "continuesRunId": {"type": "string", "format": "uuid"},
        },
    },
}


@dataclass(frozen=True)
class SearchFacts:
    id: int
    team: str
    name: str
    created_at: float
    state: SearchState = SearchState.RUNNING
    message: str | None = None


@dataclass(frozen=True)
class InputFact:
    """One input of an attempt. ``kind`` is dataset, artifact or checkpoint; ``name`` is a ref or URI."""

    role: DataRole
    kind: str
    name: str
    version: str
    sensitivity: str | None = None
    tags: tuple[str, ...] = ()
    registered: bool = True


@dataclass(frozen=True)
class OutputFact:
    kind: str
    name: str
    version: str


@dataclass(frozen=True)
class AttemptFacts:
    id: int
    number: int
    trial_id: int
    trial_number: int
    pool: str
    node: str
    started_at: float
    start_step: int
    ended_at: float | None = None
    end_step: int | None = None
    state: AttemptState | None = None
    reason: str | None = None
    traceback: str | None = None
    # (attempt id, started_at) of the attempt this one continues.
    continues: tuple[int, float] | None = None


def _instant(at: float) -> datetime:
    return datetime.fromtimestamp(at, tz=timezone.utc)


def search_run_id(search: SearchFacts) -> str:
    return str(generate_static_uuid(_instant(search.created_at), f"neurfly:search:{search.id}".encode()))


def attempt_run_id(search: SearchFacts, attempt_id: int, started_at: float) -> str:
    return str(generate_static_uuid(_instant(started_at), f"neurfly:search:{search.id}:attempt:{attempt_id}".encode()))


def search_job_name(search: SearchFacts) -> str:
    return f"{search.team}.{search.name}"


def trial_job_name(search: SearchFacts, trial_number: int) -> str:
    return f"{search_job_name(search)}.trial-{trial_number}"


_SEARCH_END = {SearchState.COMPLETED: RunState.COMPLETE, SearchState.FAILED: RunState.FAIL, SearchState.CANCELLED: RunState.ABORT}
_ATTEMPT_END = {
    AttemptState.COMPLETED: RunState.COMPLETE, AttemptState.PAUSED: RunState.COMPLETE, AttemptState.PREEMPTED: RunState.COMPLETE,
    AttemptState.PRUNED: RunState.COMPLETE, AttemptState.FAILED: RunState.FAIL, AttemptState.LOST: RunState.FAIL,
    AttemptState.KILLED: RunState.ABORT,
}


def search_event(search: SearchFacts, namespace: str, at: float) -> RunEvent:
    """Return the START event of a running search, or its final event once it ended."""
    state = RunState.START if search.state is SearchState.RUNNING else _SEARCH_END[search.state]
    facets: dict[str, RunFacet] = {"processing_engine": processing_engine_run.ProcessingEngineRunFacet(version=NEURFLY_VERSION, name="neurfly")}
    if state is RunState.FAIL and search.message:
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(message=search.message, programmingLanguage="python")
    return RunEvent(
        eventType=state, eventTime=_instant(at).isoformat(), producer=PRODUCER,
        run=Run(runId=search_run_id(search), facets=facets),
        job=Job(namespace=namespace, name=search_job_name(search), facets={"jobType": _job_type("SEARCH")}),
    )


def attempt_event(search: SearchFacts, attempt: AttemptFacts, inputs: list[InputFact], outputs: list[OutputFact], namespace: str, at: float) -> RunEvent:
    """Return an attempt's START event (while it runs) or final event (once ``state`` is final)."""
    final = attempt.state is not None and attempt.state.is_final
    state = _ATTEMPT_END[attempt.state] if final else RunState.START
    return RunEvent(
        eventType=state, eventTime=_instant(at).isoformat(), producer=PRODUCER,
        run=Run(runId=attempt_run_id(search, attempt.id, attempt.started_at), facets=_attempt_facets(search, attempt, state, namespace)),
        job=Job(namespace=namespace, name=trial_job_name(search, attempt.trial_number), facets={"jobType": _job_type("TRIAL")}),
        inputs=[_input_dataset(fact, namespace) for fact in inputs],
        outputs=[_output_dataset(fact, namespace) for fact in outputs],
    )


def _attempt_facets(search: SearchFacts, attempt: AttemptFacts, state: RunState, namespace: str) -> dict[str, RunFacet]:
    continues = attempt_run_id(search, *attempt.continues) if attempt.continues else None
    facets: dict[str, RunFacet] = {
        "parent": parent_run.ParentRunFacet(
            run=parent_run.Run(runId=search_run_id(search)),
            job=parent_run.Job(namespace=namespace, name=search_job_name(search)),
        ),
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(version=NEURFLY_VERSION, name="neurfly"),
        ATTEMPT_FACET: AttemptRunFacet(
            searchId=search.id, trialId=attempt.trial_id, trialNumber=attempt.trial_number, attemptId=attempt.id,
            attemptNumber=attempt.number, pool=attempt.pool, node=attempt.node, startStep=attempt.start_step,
            endStep=attempt.end_step, state=attempt.state.value if attempt.state else None, continuesRunId=continues,
        ),
    }
    if continues is not None:
        facets["jobDependencies"] = job_dependencies_run.JobDependenciesRunFacet(upstream=[
            job_dependencies_run.JobDependency(
                job=job_dependencies_run.JobIdentifier(namespace=namespace, name=trial_job_name(search, attempt.trial_number)),
                run=job_dependencies_run.RunIdentifier(runId=continues),
                dependency_type="IMPLICIT_DEPENDENCY", sequence_trigger_rule="FINISH_TO_START",
            )
        ])
    if state is RunState.FAIL and attempt.reason:
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(message=attempt.reason, programmingLanguage="python", stackTrace=attempt.traceback)
    return facets


def _job_type(kind: str) -> job_type_job.JobTypeJobFacet:
    return job_type_job.JobTypeJobFacet(processingType="BATCH", integration="NEURFLY", jobType=kind)


def dataset_location(kind: str, name: str, namespace: str) -> tuple[str, str]:
    """Return the OpenLineage (namespace, name) of an input or output.

    Registered datasets and artifacts get logical names in the NeurFly
    namespace; checkpoints are named by their storage location (``file``
    with an absolute path, or ``scheme://bucket`` with a key).
    """
    if kind == "dataset":
        return namespace, f"datasets/{name}"
    if kind == "artifact":
        return namespace, f"artifacts/{name}"
    parsed = urlparse(name)
    if parsed.scheme in ("", "file"):
        return "file", parsed.path or name
    return f"{parsed.scheme}://{parsed.netloc}", parsed.path.lstrip("/")


def _input_dataset(fact: InputFact, namespace: str) -> InputDataset:
    dataset_namespace, name = dataset_location(fact.kind, fact.name, namespace)
    role = DataRoleInputDatasetFacet(role=fact.role.value, sensitivity=fact.sensitivity, tags=list(fact.tags) or None, registered=fact.registered)
    return InputDataset(
        namespace=dataset_namespace, name=name,
        facets={"version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=fact.version)},
        inputFacets={DATA_ROLE_FACET: role},
    )


def _output_dataset(fact: OutputFact, namespace: str) -> OutputDataset:
    dataset_namespace, name = dataset_location(fact.kind, fact.name, namespace)
    return OutputDataset(namespace=dataset_namespace, name=name, facets={"version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=fact.version)})


def artifact_event(search: SearchFacts, attempt: AttemptFacts, artifact_name: str, digest: str, namespace: str, at: float) -> RunEvent:
    """Return an OTHER event that adds a published artifact to the outputs of the attempt that wrote it."""
    return RunEvent(
        eventType=RunState.OTHER, eventTime=_instant(at).isoformat(), producer=PRODUCER,
        run=Run(runId=attempt_run_id(search, attempt.id, attempt.started_at)),
        job=Job(namespace=namespace, name=trial_job_name(search, attempt.trial_number)),
        outputs=[_output_dataset(OutputFact("artifact", artifact_name, digest), namespace)],
    )


__all__ = [
    "ATTEMPT_FACET",
    "AttemptFacts",
    "AttemptRunFacet",
    "BaseFacet",
    "DATA_ROLE_FACET",
    "DataRoleInputDatasetFacet",
    "FACET_SCHEMAS",
    "InputFact",
    "OutputFact",
    "SearchFacts",
    "artifact_event",
    "attempt_event",
    "search_event",
]
