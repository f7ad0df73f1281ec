"""Admission of searches: pinned versions, spec shape, and the controller's own check of unchecked searches."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from neurfly.core.spec import parse_spec
from neurfly.errors import SpecError
from neurfly.governance import (
    AuditRecord,
    DatasetError,
    DatasetVersion,
    SearchInput,
    Sensitivity,
    file_version,
    register_version,
    update_dataset,
)
from neurfly.service import submit_search
from neurfly.store import Store
from gov_support import TEAM_A, attempts_of, noop_spec, register_csv, run_controller, search_row, submit, write_csv


def _pinned(store: Store, search_id: int) -> dict[str, int | None]:
    with store.session() as session:
        return {row.role: row.dataset_version_id for row in session.scalars(select(SearchInput).where(SearchInput.search_id == search_id))}


def _version_id(store: Store, reference: str) -> int:
    digest = reference.split(":")[-1]
    with store.session() as session:
        return session.scalars(select(DatasetVersion.id).where(DatasetVersion.digest == digest)).one()


def test_submission_pins_newest_version(store: Store, tmp_path: Path) -> None:
    first = register_csv(store, TEAM_A, "clicks", write_csv(tmp_path / "v1.csv", 20), Sensitivity.INTERNAL)
    search_id = submit(store, noop_spec("pinned", "team-a", data={"training": "team-a/clicks"}))
    second = register_csv(store, TEAM_A, "clicks", write_csv(tmp_path / "v2.csv", 21), Sensitivity.INTERNAL)
    by_prefix = submit(store, noop_spec("by-prefix", "team-a", data={"training": "team-a/clicks@" + first.split(":")[-1][:10]}))

    assert first != second
    assert _pinned(store, search_id) == {"training": _version_id(store, first)}
    assert _pinned(store, by_prefix) == {"training": _version_id(store, first)}


@pytest.mark.parametrize(("data", "message"), [
    ({"dataset": "sklearn:iris", "training": "team-a/clicks"}, "keep one of them"),
    ({"validation": "team-a/clicks"}, "needs data.training"),
    ({"training": "team-a/clicks@sha256:ffffffff"}, "not found; its newest versions are"),
    ({"training": "team-a/nothing"}, "dataset team-a/nothing not found"),
])
def test_submission_shape_problems(store: Store, tmp_path: Path, data: dict, message: str) -> None:
    register_csv(store, TEAM_A, "clicks", write_csv(tmp_path / "v1.csv", 20), Sensitivity.INTERNAL)

    with pytest.raises(SpecError, match=message):
        submit(store, noop_spec("shape", "team-a", data=data))


def test_spec_rejects_bad_reference() -> None:
    with pytest.raises(SpecError, match="is not a dataset reference"):
        parse_spec(noop_spec("bad", "team-a", data={"training": "clicks"}))
    with pytest.raises(SpecError, match="is not an artifact reference"):
        parse_spec(noop_spec("bad", "team-a", warm_start={"artifact": "Team A/base"}))


def test_dataset_settings_change_audited(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "v1.csv", 20)
    register_csv(store, TEAM_A, "clicks", path, Sensitivity.INTERNAL)

    with store.session() as session:
        with pytest.raises(DatasetError, match="exists with other settings"):
            register_version(session, TEAM_A, "clicks", file_version(path), sensitivity=Sensitivity.RESTRICTED)
        dataset = update_dataset(session, TEAM_A, "clicks", sensitivity=Sensitivity.CONFIDENTIAL, regions=["eu-west"], tags=["pii"])
        session.commit()
        change = session.scalars(select(AuditRecord).where(AuditRecord.reason == "dataset settings changed")).one()

    assert (dataset.sensitivity, dataset.regions, dataset.tags) == ("confidential", ["eu-west"], ["PII"])
    assert change.data["before"]["sensitivity"] == "internal"
    assert change.data["after"]["regions"] == ["eu-west"]


@pytest.mark.slow
def test_controller_checks_unchecked_search(store: Store, home: Path, tmp_path: Path) -> None:
    register_csv(store, TEAM_A, "clicks", write_csv(tmp_path / "v1.csv", 20), Sensitivity.CONFIDENTIAL)
    document = noop_spec("sneaky", "team-b", data={"training": "team-a/clicks"})
    spec, _ = parse_spec(document)
    search_id = submit_search(store, spec, document, services=[]).search_id

    run_controller(store, home, [search_id])

    search = search_row(store, search_id)
    assert search.state == "failed"
    assert "rejected by data governance" in search.message
    assert "team-a/clicks" in search.message
    assert attempts_of(store, search_id) == []
    with store.session() as session:
        denial = session.scalars(select(AuditRecord).where(AuditRecord.team == "team-b")).one()
    assert (denial.action, denial.decision, denial.search_id) == ("training", "deny", search_id)
