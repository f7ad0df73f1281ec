"""OpenLineage events built from attempt facts, the schema check itself, and emission when the endpoint is down."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import jsonschema
import pytest
from openlineage.client.serde import Serde

from neurfly.core.states import AttemptState, SearchState
from neurfly.governance import DataRole, LineageEmitter, LineageSettings
from neurfly.governance.openlineage import AttemptFacts, InputFact, OutputFact, SearchFacts, attempt_event, search_event
from gov_support import validate_openlineage

SEARCH = SearchFacts(7, "team-a", "digits", 1_790_000_000.0)
RESUMED = AttemptFacts(12, 2, 30, 4, "eu-local", "eu-node-1", 1_790_000_100.0, 3, ended_at=1_790_000_200.0, end_step=6,
                       state=AttemptState.COMPLETED, continues=(11, 1_790_000_010.0))
INPUTS = [
    InputFact(DataRole.TRAINING, "dataset", "team-a/clicks", "sha256:" + "a" * 64, "confidential", ("PII",)),
    InputFact(DataRole.CHECKPOINT, "checkpoint", "/tmp/ckpt/x.pkl", "sha256:" + "b" * 64),
]


def _event_dict(event: object) -> dict:
    return json.loads(Serde.to_json(event))


def test_events_match_schema() -> None:
    events = [
        search_event(SEARCH, "neurfly", SEARCH.created_at),
        search_event(SearchFacts(7, "team-a", "digits", SEARCH.created_at, SearchState.FAILED, "3 trials failed"), "neurfly", 1_790_000_300.0),
        attempt_event(SEARCH, RESUMED, INPUTS, [OutputFact("checkpoint", "s3://bucket/ckpt/y.pkl", "sha256:" + "c" * 64)], "neurfly", 1_790_000_200.0),
    ]

    for event in events:
        validate_openlineage(_event_dict(event))

    failed = _event_dict(events[1])
    attempt = _event_dict(events[2])
    assert failed["eventType"] == "FAIL"
    assert failed["run"]["facets"]["errorMessage"]["message"] == "3 trials failed"
    assert attempt["outputs"][0]["namespace"] == "s3://bucket"
    assert attempt["outputs"][0]["name"] == "ckpt/y.pkl"
    assert attempt["inputs"][0]["name"] == "datasets/team-a/clicks"
    assert attempt["inputs"][1]["namespace"] == "file"


def test_run_ids_stable_across_restarts() -> None:
    start = _event_dict(attempt_event(SEARCH, AttemptFacts(12, 2, 30, 4, "eu-local", "eu-node-1", RESUMED.started_at, 3), INPUTS, [], "neurfly", 1.0))
    end = _event_dict(attempt_event(SEARCH, RESUMED, INPUTS, [], "neurfly", 2.0))

    assert start["eventType"] == "START"
    assert start["run"]["runId"] == end["run"]["runId"]


@pytest.mark.parametrize(("path", "value"), [
    (("run", "runId"), "attempt-12"),
    (("eventTime",), "yesterday"),
    (("run", "facets", "neurfly_attempt", "attemptNumber"), "two"),
    (("inputs", 0, "inputFacets", "neurfly_dataRole", "role"), "test"),
])
def test_schema_check_catches_bad_values(path: tuple, value: object) -> None:
    event = _event_dict(attempt_event(SEARCH, RESUMED, INPUTS, [], "neurfly", 2.0))
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    with pytest.raises(jsonschema.ValidationError):
        validate_openlineage(event)


@pytest.mark.parametrize("missing", ["producer", "schemaURL", "job", "run"])
def test_schema_check_catches_missing_fields(missing: str) -> None:
    event = _event_dict(search_event(SEARCH, "neurfly", 1.0))
    del event[missing]

    with pytest.raises(jsonschema.ValidationError):
        validate_openlineage(event)


def test_emitter_survives_dead_endpoint(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    emitter = LineageEmitter(LineageSettings(directory=tmp_path, url=f"http://127.0.0.1:{port}", timeout_s=0.5, retries=0))

    emitter.emit(7, search_event(SEARCH, "neurfly", 1.0))

    assert emitter.flush(timeout_s=30)
    lines = (tmp_path / "search-7.jsonl").read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["job"]["name"] == "team-a.digits"
