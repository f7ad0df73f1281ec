"""Artifacts and leakage: warm starts across teams are admitted only when every dataset behind them may be used."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from neurfly.errors import SpecError
from neurfly.governance import (
    AccessDeniedError,
    ArtifactError,
    AuditRecord,
    DataRole,
    Dataset,
    ResourceKind,
    Sensitivity,
    find_artifact,
    grant_access,
    lineage_report,
    parse_ref,
    publish_artifact,
)
from neurfly.store import MetricRecord, Store
from gov_support import TEAM_A, TEAM_B, noop_spec, register_csv, run_searches, search_row, submit, trials_of, write_csv

pytestmark = pytest.mark.slow


def _publish(store: Store, trial: str, name: str, caller=TEAM_A) -> str:  # noqa: ANN001 - a Caller
    with store.session() as session:
        artifact = publish_artifact(session, caller, trial, name)
        session.commit()
        return f"{artifact.team}/{artifact.name}@{artifact.digest}"


def _grant_dataset(store: Store, name: str, roles: list[DataRole]) -> None:
    with store.session() as session:
        dataset = session.scalars(select(Dataset).where(Dataset.team == "team-a", Dataset.name == name)).one()
        grant_access(session, TEAM_A, ResourceKind.DATASET, dataset, "team-b", roles, expires_at=time.time() + 7 * 86400)
        session.commit()


def _steps(store: Store, search_id: int) -> list[int]:
    trial = trials_of(store, search_id)[0]
    with store.session() as session:
        return list(session.scalars(select(MetricRecord.step).where(MetricRecord.trial_id == trial.id, MetricRecord.name == "objective").order_by(MetricRecord.step)))


@pytest.fixture
def chain(store: Store, home: Path, tmp_path: Path) -> dict[str, str]:
    """team-a: base1 trained on pretrain with restricted holdout validation; base2 warm-started from base1."""
    register_csv(store, TEAM_A, "pretrain", write_csv(tmp_path / "pretrain.csv", 50), Sensitivity.INTERNAL)
    holdout = register_csv(store, TEAM_A, "holdout", write_csv(tmp_path / "holdout.csv", 20, seed=3), Sensitivity.RESTRICTED, tags=("PHI",))
    first = submit(store, noop_spec("pre1", "team-a", data={"training": "team-a/pretrain", "validation": "team-a/holdout"}))
    run_searches(store, home, [first])
    base1 = _publish(store, "pre1#0", "base1")
    second = submit(store, noop_spec("pre2", "team-a", data={"training": "team-a/pretrain"}, warm_start={"artifact": "team-a/base1"},
                                     budget={"max_trials": 1, "max_concurrent_trials": 1, "max_steps": 4}))
    run_searches(store, home, [second])
    base2 = _publish(store, "pre2#0", "base2")
    with store.session() as session:
        artifact = find_artifact(session, parse_ref("team-a/base2", "artifact"))
        grant_access(session, TEAM_A, ResourceKind.ARTIFACT, artifact, "team-b", [DataRole.WARM_START])
        session.commit()
    return {"base1": base1, "base2": base2, "holdout": holdout, "second": str(second)}


def test_warm_start_resumes_artifact_state(store: Store, chain: dict[str, str]) -> None:
    assert _steps(store, int(chain["second"])) == [3, 4]


def test_restricted_holdout_in_chain_rejected(store: Store, chain: dict[str, str]) -> None:
    _grant_dataset(store, "pretrain", [DataRole.WARM_START])

    with pytest.raises(SpecError) as caught:
        submit(store, noop_spec("consumer", "team-b", warm_start={"artifact": "team-a/base2"}))

    message = str(caught.value)
    assert "team-a/holdout@" + chain["holdout"].split("@")[1] in message
    assert "restricted, PHI, used for validation" in message
    base1, base2 = (chain[k].split("@")[0] + "@" + chain[k].split("@")[1][:19] for k in ("base1", "base2"))
    assert f"reached through {base2} -> {base1}" in message
    with store.session() as session:
        crossings = session.scalars(select(AuditRecord).where(AuditRecord.team == "team-b", AuditRecord.action == "cross")).all()
    assert {(r.resource, r.decision) for r in crossings} == {("team-a/holdout", "deny"), ("team-a/pretrain", "allow")}


def test_permitted_crossing_runs_audited(store: Store, home: Path, chain: dict[str, str]) -> None:
    _grant_dataset(store, "pretrain", [DataRole.WARM_START])
    _grant_dataset(store, "holdout", [DataRole.WARM_START])

    search_id = submit(store, noop_spec("consumer", "team-b", warm_start={"artifact": "team-a/base2"},
                                        budget={"max_trials": 1, "max_concurrent_trials": 1, "max_steps": 6}))
    run_searches(store, home, [search_id])

    assert search_row(store, search_id).state == "completed"
    assert _steps(store, search_id) == [5, 6]
    with store.session() as session:
        crossings = session.scalars(select(AuditRecord).where(AuditRecord.team == "team-b", AuditRecord.action == "cross")).all()
        report = lineage_report(session, TEAM_B, "consumer#0")
        session.commit()
    assert {(r.resource, r.decision, r.search_id) for r in crossings} == {("team-a/holdout", "allow", search_id), ("team-a/pretrain", "allow", search_id)}
    seen = {(d["dataset"], d["role"], len(d["via"])) for d in report["data"]}
    assert seen == {("team-a/pretrain", "training", 1), ("team-a/pretrain", "training", 2), ("team-a/holdout", "validation", 2)}
    assert [i["role"] for i in report["attempts"][0]["inputs"]] == ["warm_start"]


def test_artifact_use_needs_grant(store: Store, chain: dict[str, str]) -> None:
    with pytest.raises(SpecError, match="artifact team-a/base1 not found, or team team-b has no grant"):
        submit(store, noop_spec("consumer", "team-b", warm_start={"artifact": "team-a/base1"}))
    with store.session() as session, pytest.raises(AccessDeniedError, match="team team-b cannot publish"):
        publish_artifact(session, TEAM_B, "pre1#0", "stolen")


def test_publish_needs_ended_trial_with_checkpoint(store: Store, home: Path) -> None:
    search_id = submit(store, noop_spec("plain", "team-a", fixed={"sleep_s": 0.0, "checkpoint_every": 0}))
    run_searches(store, home, [search_id])

    with store.session() as session, pytest.raises(ArtifactError, match="has no checkpoint"):
        publish_artifact(session, TEAM_A, "plain#0", "empty")
