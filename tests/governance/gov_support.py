"""Helpers for governance tests: data files, registered datasets, in-process searches, an OpenLineage schema."""

from __future__ import annotations

import csv
import json
import threading
from datetime import datetime
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import select

from neurfly.cli.runner import drive
from neurfly.controller import Controller, ControllerSettings
from neurfly.core.cluster import default_cluster
from neurfly.core.spec import parse_spec
from neurfly.executors.local import LocalExecutor
from neurfly.governance import Caller, Sensitivity, file_version, register_version
from neurfly.service import find_search, submit_search
from neurfly.store import Attempt, Search, Store, Trial
from support import make_spec

TEAM_A = Caller("team-a", "alice")
TEAM_B = Caller("team-b", "bob")


def write_csv(path: Path, rows: int, seed: int = 0, change_row: int | None = None) -> Path:
    """Write ``rows`` rows of two features and a 0/1 label; ``change_row`` gets a different first feature."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["f1", "f2", "label"])
        for i in range(rows):
            f1 = ((i * 7919 + seed) % 1000) / 1000
            if i == change_row:
                f1 += 0.5
            writer.writerow([f"{f1:.3f}", f"{(i % 17) / 17:.3f}", i % 2])
    return path


def register_csv(store: Store, caller: Caller, name: str, path: Path, sensitivity: Sensitivity, regions: tuple[str, ...] = (), tags: tuple[str, ...] = ()) -> str:
    """Register ``path`` as a version of ``caller``'s dataset ``name``; returns ``team/name@version``."""
    with store.session() as session:
        version = register_version(session, caller, name, file_version(path), sensitivity=sensitivity, regions=regions, tags=tags)
        session.commit()
        return f"{caller.team}/{name}@{version.version}"


def noop_spec(name: str, team: str, **overrides: Any) -> dict[str, Any]:
    """A no-op search spec of one trial, with ``overrides`` replacing top-level fields."""
    spec = make_spec(name=name, team=team, budget={"max_trials": 1, "max_concurrent_trials": 1, "max_steps": 2}, fixed={"sleep_s": 0.0})
    spec.update(overrides)
    return spec


def submit(store: Store, document: dict[str, Any], new: bool = False) -> int:
    spec, _ = parse_spec(document)
    return submit_search(store, spec, document, new=new).search_id


def run_searches(store: Store, home: Path, search_ids: list[int]) -> None:
    """Drive the searches to their end in this process, as ``neurfly run`` does."""
    drive(store, default_cluster(), search_ids, Console(quiet=True), live_display=False, checkpoint_root=str(home / "checkpoints"))


def run_controller(store: Store, home: Path, search_ids: list[int], on_tick: Callable[[Controller], None] | None = None) -> None:
    """Run a controller in this process until the searches end, calling ``on_tick`` after each tick."""
    controller = Controller(store, default_cluster(), LocalExecutor(), settings=ControllerSettings(checkpoint_root=str(home / "checkpoints")))
    controller.start()
    try:
        controller.run(until=lambda: not any(sid in controller.searches for sid in search_ids),
                       on_tick=(lambda: on_tick(controller)) if on_tick else None)
    finally:
        controller.stop(grace_s=5.0)


def search_row(store: Store, search_id: int) -> Search:
    return find_search(store, search_id)


def attempts_of(store: Store, search_id: int) -> list[Attempt]:
    with store.session() as session:
        return list(session.scalars(select(Attempt).where(Attempt.search_id == search_id).order_by(Attempt.id)))


def trials_of(store: Store, search_id: int) -> list[Trial]:
    with store.session() as session:
        return list(session.scalars(select(Trial).where(Trial.search_id == search_id).order_by(Trial.number)))


# -- OpenLineage --------------------------------------------------------------------------------

# The required fields of OpenLineage 2-0-2 RunEvent and of the facets NeurFly
# emits, written from the published spec (spec/OpenLineage.json and
# spec/facets/*.json of the OpenLineage repository). Neither openlineage-python
# nor any installed package ships the schema files, so this is a transcription
# of what the spec requires, not the spec file itself.
_BASE_FACET = {"type": "object", "required": ["_producer", "_schemaURL"],
               "properties": {"_producer": {"type": "string", "format": "uri"}, "_schemaURL": {"type": "string", "format": "uri"}}}
OPENLINEAGE_RUN_EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {
        "BaseFacet": _BASE_FACET,
        "Dataset": {
            "type": "object", "required": ["namespace", "name"],
            "properties": {"namespace": {"type": "string"}, "name": {"type": "string"},
                           "facets": {"type": "object", "additionalProperties": {"$ref": "#/$defs/BaseFacet"}}},
        },
        "InputDataset": {"allOf": [{"$ref": "#/$defs/Dataset"}, {"type": "object", "properties": {
            "inputFacets": {"type": "object", "additionalProperties": {"$ref": "#/$defs/BaseFacet"}}}}]},
        "OutputDataset": {"allOf": [{"$ref": "#/$defs/Dataset"}, {"type": "object", "properties": {
            "outputFacets": {"type": "object", "additionalProperties": {"$ref": "#/$defs/BaseFacet"}}}}]},
        "ParentRunFacet": {"allOf": [{"$ref": "#/$defs/BaseFacet"}, {
            "type": "object", "required": ["run", "job"],
            "properties": {
                "run": {"type": "object", "required": ["runId"], "properties": {"runId": {"type": "string", "format": "uuid"}}},
                "job": {"type": "object", "required": ["namespace", "name"], "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}}},
            }}]},
    },
    "type": "object",
    "required": ["eventTime", "producer", "schemaURL", "run", "job"],
    "properties": {
        "eventType": {"type": "string", "enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": {"type": "string", "format": "date-time"},
        "producer": {"type": "string", "format": "uri"},
        "schemaURL": {"type": "string", "format": "uri"},
        "run": {"type": "object", "required": ["runId"], "properties": {
            "runId": {"type": "string", "format": "uuid"},
            "facets": {"type": "object", "properties": {"parent": {"$ref": "#/$defs/ParentRunFacet"}},
                       "additionalProperties": {"$ref": "#/$defs/BaseFacet"}},
        }},
        "job": {"type": "object", "required": ["namespace", "name"], "properties": {
            "namespace": {"type": "string"}, "name": {"type": "string"},
            "facets": {"type": "object", "additionalProperties": {"$ref": "#/$defs/BaseFacet"}},
        }},
        "inputs": {"type": "array", "items": {"$ref": "#/$defs/InputDataset"}},
        "outputs": {"type": "array", "items": {"$ref": "#/$defs/OutputDataset"}},
    },
}


def validate_openlineage(event: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``event`` meets the RunEvent schema and NeurFly's facet schemas."""
    import jsonschema

    from neurfly.governance.openlineage import ATTEMPT_FACET, DATA_ROLE_FACET, FACET_SCHEMAS

    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    jsonschema.validate(event, OPENLINEAGE_RUN_EVENT_SCHEMA, format_checker=checker)
    # jsonschema checks "date-time" only with the optional rfc3339-validator package, so check it here.
    try:
        datetime.fromisoformat(event["eventTime"])
    except ValueError:
        raise jsonschema.ValidationError(f"eventTime {event['eventTime']!r} is not an ISO 8601 date-time") from None
    if "T" not in event["eventTime"]:
        raise jsonschema.ValidationError(f"eventTime {event['eventTime']!r} has no time")
    facet = event["run"].get("facets", {}).get(ATTEMPT_FACET)
    if facet is not None:
        jsonschema.validate(facet, FACET_SCHEMAS["AttemptRunFacet"], format_checker=checker)
    for dataset in event.get("inputs", []):
        jsonschema.validate(dataset["inputFacets"][DATA_ROLE_FACET], FACET_SCHEMAS["DataRoleInputDatasetFacet"], format_checker=checker)


def read_events(home: Path, search_id: int) -> list[dict[str, Any]]:
    path = home / "openlineage" / f"search-{search_id}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class LineageServer:
    """An OpenLineage HTTP endpoint on 127.0.0.1 that keeps every event posted to it."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server method name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.paths.append(self.path)
                server.events.append(json.loads(body))
                self.send_response(201)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LineageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
