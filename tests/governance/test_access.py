"""Team isolation: a confidential dataset is invisible and unusable without a grant, and every decision is audited."""

from __future__ import annotations

import getpass
import json
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import delete, select, text, update

from neurfly.errors import SpecError
from neurfly.governance import (
    AccessDeniedError,
    AuditRecord,
    DataRole,
    Dataset,
    ResourceKind,
    Sensitivity,
    describe_dataset,
    grant_access,
    list_datasets,
    list_grants,
    read_dataset,
    revoke_grant,
    use_dataset,
)
from neurfly.store import Search, Store
from gov_support import TEAM_A, TEAM_B, noop_spec, register_csv, submit, write_csv
from support import run_cli


@pytest.fixture
def patients(store: Store, tmp_path: Path) -> str:
    return register_csv(store, TEAM_A, "patients", write_csv(tmp_path / "patients.csv", 60), Sensitivity.CONFIDENTIAL, tags=("PII",))


def _audit(store: Store, team: str, resource: str = "team-a/patients") -> list[AuditRecord]:
    with store.session() as session:
        return list(session.scalars(select(AuditRecord).where(AuditRecord.team == team, AuditRecord.resource == resource).order_by(AuditRecord.id)))


def _denials(store: Store, team: str) -> set[str]:
    return {r.action for r in _audit(store, team) if r.decision == "deny"}


def _dataset(store: Store) -> Dataset:
    with store.session() as session:
        return session.scalars(select(Dataset).where(Dataset.name == "patients")).one()


def _grant(store: Store, roles: list[DataRole], expires_at: float | None = None) -> int:
    with store.session() as session:
        grant = grant_access(session, TEAM_A, ResourceKind.DATASET, _dataset(store), "team-b", roles, expires_at=expires_at)
        session.commit()
        return grant.id


# -- Python API ---------------------------------------------------------------------------------


def test_api_denies_team_b_everything(store: Store, patients: str) -> None:
    with store.session() as session:
        assert [d.ref for d in list_datasets(session, TEAM_B)] == []
        session.commit()
    for call in (
        lambda s: describe_dataset(s, TEAM_B, "team-a/patients"),
        lambda s: read_dataset(s, TEAM_B, "team-a/patients"),
        lambda s: use_dataset(s, TEAM_B, "team-a/patients", DataRole.TRAINING),
        lambda s: use_dataset(s, TEAM_B, "team-a/patients", DataRole.VALIDATION),
    ):
        with store.session() as session, pytest.raises(AccessDeniedError, match="team-a/patients"):
            call(session)

    assert _denials(store, "team-b") == {"list", "read", "training", "validation"}
    assert len([r for r in _audit(store, "team-b") if r.decision == "deny"]) == 5


def test_owner_uses_own_dataset(store: Store, patients: str) -> None:
    with store.session() as session:
        dataset, version = use_dataset(session, TEAM_A, "team-a/patients", DataRole.TRAINING)
        preview = read_dataset(session, TEAM_A, "patients", rows=2)
        session.commit()

    assert f"{dataset.ref}@{version.version}" == patients
    assert preview["columns"] == ["f1", "f2", "label"]
    assert len(preview["rows"]) == 2
    assert {r.decision for r in _audit(store, "team-a")} == {"allow"}


def test_grant_allows_only_its_roles(store: Store, patients: str) -> None:
    _grant(store, [DataRole.TRAINING])

    with store.session() as session:
        assert [d.ref for d in list_datasets(session, TEAM_B)] == ["team-a/patients"]
        _, version = use_dataset(session, TEAM_B, "team-a/patients", DataRole.TRAINING)
        session.commit()
    with store.session() as session, pytest.raises(AccessDeniedError, match="allow training, not role validation"):
        use_dataset(session, TEAM_B, "team-a/patients", DataRole.VALIDATION)

    assert patients.endswith(version.version)
    decisions = [(r.action, r.decision) for r in _audit(store, "team-b")]
    assert ("list", "allow") in decisions
    assert ("training", "allow") in decisions
    assert ("validation", "deny") in decisions


def test_expired_and_revoked_grants_deny(store: Store, patients: str) -> None:
    grant_id = _grant(store, [DataRole.TRAINING], expires_at=time.time() + 3600)
    later = time.time() + 7200

    with store.session() as session, pytest.raises(AccessDeniedError, match="has expired"):
        use_dataset(session, TEAM_B, "team-a/patients", DataRole.TRAINING, now=later)
    with store.session() as session:
        revoke_grant(session, TEAM_A, grant_id)
        session.commit()
    with store.session() as session, pytest.raises(AccessDeniedError, match="grant 1 of team-a/patients to team team-b was revoked"):
        use_dataset(session, TEAM_B, "team-a/patients", DataRole.TRAINING)


def test_grant_rules(store: Store, patients: str, tmp_path: Path) -> None:
    secret = register_csv(store, TEAM_A, "secret", write_csv(tmp_path / "s.csv", 10), Sensitivity.RESTRICTED)
    with store.session() as session:
        dataset = _dataset(store)
        with pytest.raises(AccessDeniedError, match="does not own"):
            grant_access(session, TEAM_B, ResourceKind.DATASET, dataset, "team-c", [DataRole.TRAINING])
        with pytest.raises(ValueError, match="owns this dataset"):
            grant_access(session, TEAM_A, ResourceKind.DATASET, dataset, "team-a", [DataRole.TRAINING])
        with pytest.raises(ValueError, match="cannot be granted"):
            grant_access(session, TEAM_A, ResourceKind.DATASET, dataset, "team-b", [DataRole.CHECKPOINT])
        with pytest.raises(ValueError, match="in the past"):
            grant_access(session, TEAM_A, ResourceKind.DATASET, dataset, "team-b", [DataRole.TRAINING], expires_at=time.time() - 1)
        restricted = session.scalars(select(Dataset).where(Dataset.name == "secret")).one()
        with pytest.raises(ValueError, match="within 90 days"):
            grant_access(session, TEAM_A, ResourceKind.DATASET, restricted, "team-b", [DataRole.TRAINING], expires_at=time.time() + 200 * 86400)

    assert secret.startswith("team-a/secret@sha256:")
    assert [(r.action, r.decision) for r in _audit(store, "team-b")] == [("grant", "deny")]


def test_submission_denied_for_each_role(store: Store, patients: str) -> None:
    for field, role in (("training", "training"), ("validation", "validation")):
        data = {"training": "team-b/own"} if field == "validation" else {}
        data[field] = "team-a/patients"
        document = noop_spec(f"probe-{role}", "team-b", data=data)

        with pytest.raises(SpecError, match=f"data.{role}: .*team-a/patients") as caught:
            submit(store, document)

        assert "grant" in str(caught.value)
    with store.session() as session:
        assert session.scalars(select(Search)).all() == []
    assert _denials(store, "team-b") == {"training", "validation"}


# -- CLI ----------------------------------------------------------------------------------------


def test_cli_isolation_and_audit(home: Path, store: Store, patients: str, tmp_path: Path) -> None:
    listed = run_cli(home, "dataset", "list", "--team", "team-b", "--json")
    read = run_cli(home, "dataset", "read", patients, "--team", "team-b")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(noop_spec("probe", "team-b", data={"training": "team-a/patients"})))
    trained = run_cli(home, "run", str(spec))
    spec.write_text(yaml.safe_dump(noop_spec("probe", "team-b", data={"training": "team-b/mine", "validation": "team-a/patients"})))
    validated = run_cli(home, "run", str(spec))

    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    for result in (read, trained, validated):
        assert result.returncode == 2
        assert "team-a/patients" in result.stderr
        assert "Traceback" not in result.stderr
    assert "data.training" in trained.stderr
    assert "data.validation" in validated.stderr
    assert _denials(store, "team-b") == {"list", "read", "training", "validation"}
    assert all(r.actor == getpass.getuser() for r in _audit(store, "team-b"))


def test_cli_grant_then_use(home: Path, store: Store, patients: str) -> None:
    granted = run_cli(home, "grant", "dataset", "patients", "--to", "team-b", "--role", "training", "--expires", "7d", "--team", "team-a", "--user", "alice")
    read = run_cli(home, "dataset", "read", "team-a/patients", "--rows", "2", "--team", "team-b", "--json")
    wrong_owner = run_cli(home, "grant", "revoke", "1", "--team", "team-b")

    assert granted.returncode == 0, granted.stderr
    assert read.returncode == 0, read.stderr
    assert len(json.loads(read.stdout)["rows"]) == 2
    assert wrong_owner.returncode == 2
    assert "only team team-a may revoke" in wrong_owner.stderr
    with store.session() as session:
        grants = list_grants(session, "team-b")
    assert [(g.roles, g.granted_by, g.revoked_at) for g in grants] == [(["training"], "alice", None)]


def test_cli_register_and_bad_input(home: Path) -> None:
    registered = run_cli(home, "dataset", "register", "iris", "--sklearn", "iris", "--sensitivity", "public", "--team", "team-a", "--json")
    no_source = run_cli(home, "dataset", "register", "x", "--team", "team-a")
    bad_role = run_cli(home, "grant", "dataset", "iris", "--to", "team-b", "--role", "everything", "--team", "team-a")

    assert registered.returncode == 0, registered.stderr
    assert json.loads(registered.stdout)["version"].startswith("sha256-ndarray:")
    assert no_source.returncode == 2
    assert "exactly one source" in no_source.stderr
    assert bad_role.returncode == 2
    assert "role 'everything' is invalid" in bad_role.stderr
    assert "Traceback" not in no_source.stderr + bad_role.stderr


def test_api_bad_input_messages(store: Store) -> None:
    from neurfly.governance import DatasetError, register_version, sklearn_version

    with store.session() as session:
        with pytest.raises(DatasetError, match="give its sensitivity"):
            register_version(session, TEAM_A, "x", sklearn_version("iris"))
        with pytest.raises(ValueError, match="TEAM/NAME"):
            describe_dataset(session, TEAM_A, "Not A Ref")
        with pytest.raises(AccessDeniedError, match="cannot change dataset team-b/x"):
            register_version(session, TEAM_A, "team-b/x", sklearn_version("iris"), sensitivity=Sensitivity.PUBLIC)


# -- the audit log is append-only ---------------------------------------------------------------


def test_audit_rows_cannot_change(store: Store, patients: str) -> None:
    with store.session() as session:
        row = session.scalars(select(AuditRecord)).first()
        row.reason = "rewritten"
        with pytest.raises(PermissionError, match="append-only"):
            session.flush()
        session.rollback()
        session.delete(session.scalars(select(AuditRecord)).first())
        with pytest.raises(PermissionError, match="append-only"):
            session.flush()
        session.rollback()

    for statement in (update(AuditRecord).values(reason="x"), delete(AuditRecord), text("DELETE FROM data_access_audit")):
        with store.engine.begin() as connection, pytest.raises(Exception, match="append-only"):
            connection.execute(statement)

    with store.session() as session:
        assert [r.reason for r in session.scalars(select(AuditRecord))] == ["version " + patients.split("@")[1] + " registered from file"]


def test_no_update_or_delete_path_in_code() -> None:
    import neurfly.governance as package

    source = "\n".join(path.read_text() for path in Path(package.__file__).parent.glob("*.py"))
    for forbidden in ("update(AuditRecord", "delete(AuditRecord", "UPDATE data_access_audit", "DELETE FROM data_access_audit", "session.delete("):
        assert forbidden not in source
