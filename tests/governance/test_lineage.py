"""Lineage of a preempted and resumed trial, in the store and as OpenLineage events (file and HTTP)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neurfly.controller import Controller
from neurfly.governance import Sensitivity, lineage_report
from neurfly.store import Store
from gov_support import TEAM_A, TEAM_B, LineageServer, attempts_of, noop_spec, read_events, register_csv, run_controller, submit, trials_of, validate_openlineage, write_csv
from support import run_cli, wait_for

pytestmark = pytest.mark.slow


def _preempt_once(store: Store, search_id: int, done: list[int]):
    def on_tick(controller: Controller) -> None:
        if done:
            return
        for attempt in attempts_of(store, search_id):
            if attempt.ended_at is None and attempt.checkpoint_out_id is not None and (attempt.end_step or 0) >= 2:
                controller.preempt(attempt.id, "test preemption")
                done.append(attempt.id)

    return on_tick


def _key(dataset: dict) -> tuple[str, str, str]:
    return dataset["namespace"], dataset["name"], dataset["facets"]["version"]["datasetVersion"]


def test_preempted_trial_lineage(store: Store, home: Path, tmp_path: Path, lineage_server: LineageServer) -> None:
    training = register_csv(store, TEAM_A, "clicks", write_csv(tmp_path / "clicks.csv", 30), Sensitivity.INTERNAL, regions=("eu-west",))
    search_id = submit(store, noop_spec("resumable", "team-a", data={"training": "team-a/clicks"},
                                        budget={"max_trials": 1, "max_concurrent_trials": 1, "max_steps": 6}, fixed={"sleep_s": 0.15}))
    preempted: list[int] = []

    run_controller(store, home, [search_id], on_tick=_preempt_once(store, search_id, preempted))

    first, second = attempts_of(store, search_id)
    assert preempted == [first.id]
    assert first.state == "preempted"
    assert second.state == "completed"
    assert second.checkpoint_in_id == first.checkpoint_out_id
    assert {first.pool, second.pool} == {"eu-local"}

    with store.session() as session:
        report = lineage_report(session, TEAM_A, f"resumable#{trials_of(store, search_id)[0].number}")
        session.commit()
    assert [a["number"] for a in report["attempts"]] == [1, 2]
    resumed_from = [i for i in report["attempts"][1]["inputs"] if i["role"] == "checkpoint"]
    assert [i["from_attempt_id"] for i in resumed_from] == [first.id]
    assert [i["role"] for i in report["attempts"][0]["inputs"]] == ["training"]
    assert sorted(i["role"] for i in report["attempts"][1]["inputs"]) == ["checkpoint", "training"]
    assert [(d["role"], d["dataset"], d["version"], d["via"]) for d in report["data"]] == [("training", "team-a/clicks", training.split("@")[1], [])]

    events = read_events(home, search_id)
    for event in events:
        validate_openlineage(event)
    by_run: dict[str, list[dict]] = {}
    for event in events:
        by_run.setdefault(event["run"]["runId"], []).append(event)
    search_run = next(e for e in events if e["job"]["name"] == "team-a.resumable")["run"]["runId"]
    attempt_runs = {e["run"]["facets"]["neurfly_attempt"]["attemptId"]: e["run"]["runId"] for e in events if "neurfly_attempt" in e["run"].get("facets", {})}
    assert [e["eventType"] for e in by_run[search_run]] == ["START", "COMPLETE"]
    assert [e["eventType"] for e in by_run[attempt_runs[first.id]]] == ["START", "COMPLETE"]
    assert [e["eventType"] for e in by_run[attempt_runs[second.id]]] == ["START", "COMPLETE"]

    first_end = by_run[attempt_runs[first.id]][-1]
    second_end = by_run[attempt_runs[second.id]][-1]
    for event in (first_end, second_end):
        assert event["run"]["facets"]["parent"]["run"]["runId"] == search_run
        assert event["job"]["name"] == "team-a.resumable.trial-0"
    upstream = second_end["run"]["facets"]["jobDependencies"]["upstream"]
    assert [u["run"]["runId"] for u in upstream] == [attempt_runs[first.id]]
    assert second_end["run"]["facets"]["neurfly_attempt"]["continuesRunId"] == attempt_runs[first.id]
    checkpoint_in = [i for i in second_end["inputs"] if i["inputFacets"]["neurfly_dataRole"]["role"] == "checkpoint"]
    assert [_key(i) for i in checkpoint_in] == [_key(o) for o in first_end["outputs"]]
    roles = {i["inputFacets"]["neurfly_dataRole"]["role"] for i in second_end["inputs"]}
    assert roles == {"training", "checkpoint"}
    assert "jobDependencies" not in first_end["run"]["facets"]

    wait_for(lambda: len(lineage_server.events) >= len(events), timeout=30)
    assert sorted(json.dumps(e, sort_keys=True) for e in lineage_server.events) == sorted(json.dumps(e, sort_keys=True) for e in events)
    assert set(lineage_server.paths) == {"/api/v1/lineage"}


def test_lineage_cli_scoped_by_team(store: Store, home: Path, tmp_path: Path) -> None:
    register_csv(store, TEAM_A, "clicks", write_csv(tmp_path / "clicks.csv", 30), Sensitivity.INTERNAL)
    search_id = submit(store, noop_spec("small", "team-a", data={"training": "team-a/clicks"}))
    run_controller(store, home, [search_id])

    own = run_cli(home, "lineage", "small#0", "--team", "team-a", "--json")
    other = run_cli(home, "lineage", "small#0", "--team", "team-b")

    assert own.returncode == 0, own.stderr
    report = json.loads(own.stdout)
    assert {(d["role"], d["dataset"]) for d in report["data"]} == {("training", "team-a/clicks")}
    assert other.returncode == 2
    assert "belongs to team team-a" in other.stderr
    with store.session() as session, pytest.raises(Exception, match="belongs to team team-a"):
        lineage_report(session, TEAM_B, "small#0")

    published = run_cli(home, "artifact", "publish", "small#0", "--name", "small-model", "--kind", "model", "--team", "team-a", "--json")
    model = run_cli(home, "lineage", "team-a/small-model", "--team", "team-a", "--json")

    assert published.returncode == 0, published.stderr
    assert json.loads(published.stdout)["kind"] == "model"
    assert model.returncode == 0, model.stderr
    via = {tuple(d["via"]) for d in json.loads(model.stdout)["data"]}
    assert len(via) == 1
    assert next(iter(via))[0].startswith("team-a/small-model@sha256:")
    other = [e for e in read_events(home, search_id) if e["eventType"] == "OTHER"]
    assert [o["name"] for o in other[0]["outputs"]] == ["artifacts/team-a/small-model"]
    validate_openlineage(other[0])
