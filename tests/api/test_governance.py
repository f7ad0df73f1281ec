"""Datasets, versions, grants, artifacts and the data audit log over the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from neurfly.api import ApiSettings, create_app
from neurfly.core.cluster import default_cluster
from neurfly.governance.models import AuditRecord, Dataset, DatasetVersion, Grant
from api.conftest import Api

API = "/api/v1"
TEAM_A = f"{API}/teams/team-a"
LAKEFS = {"source": "lakefs", "uri": f"lakefs://lake/{'a' * 64}/train.csv"}


def dataset_body(name: str = "customers", **changes: Any) -> dict[str, Any]:
    return {"name": name, "sensitivity": "confidential", "tags": ["pii"], "regions": ["eu-west"], "version": LAKEFS, **changes}


def counts(api: Api) -> tuple[int, ...]:
    with api.store.session() as session:
        return tuple(session.scalar(select(func.count()).select_from(table)) for table in (Dataset, DatasetVersion, Grant))


def write_csv(path: Path, rows: int = 5) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x1,x2,label\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(rows)))
    return path


@pytest.fixture
def rooted(api: Api, tmp_path: Path) -> Iterator[tuple[Api, Path]]:
    """The same store served by an application that registers files under ``tmp_path/data``."""
    root = tmp_path / "data"
    root.mkdir()
    app = create_app(api.store, default_cluster(), ApiSettings(data_roots=(root,)))
    with TestClient(app) as client:
        yield Api(client, api.world, api.store), root


# -- datasets and versions ------------------------------------------------------------------------


def test_dataset_registered_with_version(api: Api) -> None:
    created = api.call("POST", f"{TEAM_A}/datasets", "a-member", json=dataset_body())
    shown = api.call("GET", f"{TEAM_A}/datasets/team-a/customers", "a-viewer")
    versions = api.call("GET", f"{TEAM_A}/datasets/team-a/customers/versions", "a-viewer")

    assert created.status_code == 201, created.text
    assert created.json()["ref"] == "team-a/customers"
    assert created.json()["tags"] == ["PII"]
    assert created.json()["created_by"] == "a-member"
    assert created.json()["versions"][0]["algorithm"] == "lakefs-commit"
    assert shown.json()["regions"] == ["eu-west"]
    assert [v["digest"] for v in versions.json()] == ["a" * 64]


def test_dataset_from_sklearn_set(api: Api) -> None:
    created = api.call("POST", f"{TEAM_A}/datasets", "a-member", json=dataset_body("digits", version={"source": "sklearn", "name": "digits"}))

    assert created.status_code == 201, created.text
    assert created.json()["versions"][0]["algorithm"] == "sha256-ndarray"
    assert created.json()["versions"][0]["rows"] == 1797


@pytest.mark.parametrize(
    ("changes", "status", "named"),
    [
        ({"sensitivity": "secret"}, 422, "sensitivity"),
        ({"regions": ["mars-1"]}, 422, "mars-1"),
        ({"tags": ["no spaces"]}, 422, "tags"),
        ({"name": "Bad Name"}, 422, "name"),
        ({"version": {"source": "lakefs", "uri": "lakefs://lake/main/train.csv"}}, 422, "branch or tag"),
        ({"version": {"source": "sklearn", "name": "mnist"}}, 422, "mnist"),
        ({"version": {"source": "ftp", "uri": "x"}}, 422, "source"),
        ({"version": {"source": "file", "path": "/etc/passwd"}}, 422, "--data-root"),
        ({"name": "alpha-data"}, 409, "exists"),
        ({"description": "x" * 3000}, 422, "description"),
    ],
)
def test_dataset_bad_input_rejected(api: Api, changes: dict[str, Any], status: int, named: str) -> None:
    before = counts(api)

    response = api.call("POST", f"{TEAM_A}/datasets", "a-member", json=dataset_body(**changes))

    assert response.status_code == status, response.text
    assert named in response.text
    assert counts(api) == before


def test_dataset_file_under_data_root(rooted: tuple[Api, Path]) -> None:
    api, root = rooted
    write_csv(root / "train.csv")

    created = api.call("POST", f"{TEAM_A}/datasets", "a-member", json=dataset_body(version={"source": "file", "path": "train.csv"}))
    again = api.call("POST", f"{TEAM_A}/datasets/team-a/customers/versions", "a-member", json={"version": {"source": "file", "path": str(root / "train.csv")}})
    write_csv(root / "train.csv", rows=7)
    changed = api.call("POST", f"{TEAM_A}/datasets/team-a/customers/versions", "a-member", json={"version": {"source": "file", "path": "train.csv"}})

    assert created.status_code == 201, created.text
    assert created.json()["versions"][0]["rows"] == 5
    assert again.status_code == 200
    assert again.json()["id"] == created.json()["versions"][0]["id"]
    assert changed.status_code == 201
    assert changed.json()["rows"] == 7


@pytest.mark.parametrize("path", ["../outside.csv", "/etc/hostname", "link.csv"])
def test_dataset_file_outside_root_rejected(rooted: tuple[Api, Path], path: str) -> None:
    api, root = rooted
    outside = write_csv(root.parent / "outside.csv")
    (root / "link.csv").symlink_to(outside)
    before = counts(api)

    response = api.call("POST", f"{TEAM_A}/datasets", "a-member", json=dataset_body(version={"source": "file", "path": path}))

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "version", "path"]
    assert "outside the server's data roots" in response.json()["detail"][0]["msg"]
    assert counts(api) == before


def test_dataset_missing_file_rejected(rooted: tuple[Api, Path]) -> None:
    api, _ = rooted

    response = api.call("POST", f"{TEAM_A}/datasets", "a-member", json=dataset_body(version={"source": "file", "path": "nothing.csv"}))

    assert response.status_code == 422
    assert "file not found" in response.text


def test_version_of_unknown_dataset_is_404(api: Api) -> None:
    response = api.call("POST", f"{TEAM_A}/datasets/team-a/nothing/versions", "a-member", json={"version": LAKEFS})

    assert response.status_code == 404
    assert "team-a/nothing" in response.json()["detail"]


def test_version_of_other_teams_dataset(api: Api) -> None:
    shared = api.call("POST", f"{API}/teams/team-b/datasets", "b-member", json=dataset_body("beta-open", sensitivity="internal", tags=[]))
    visible = api.call("POST", f"{TEAM_A}/datasets/team-b/beta-open/versions", "a-member", json={"version": LAKEFS})
    hidden = api.call("POST", f"{API}/teams/team-b/datasets/team-a/alpha-data/versions", "b-member", json={"version": LAKEFS})
    with api.store.session() as session:
        denials = session.scalars(select(AuditRecord).where(AuditRecord.decision == "deny", AuditRecord.resource == "team-b/beta-open")).all()

    assert shared.status_code == 201
    assert visible.status_code == 403
    assert "team-b" in visible.json()["detail"]
    assert hidden.status_code == 404
    assert "alpha-marker" not in hidden.text
    assert [(d.actor, d.action) for d in denials] == [("a-member", "register")]


def test_versions_of_hidden_dataset_are_404(api: Api) -> None:
    response = api.call("GET", f"{API}/teams/team-b/datasets/team-a/alpha-data/versions", "b-viewer")

    assert response.status_code == 404
    assert "alpha-marker" not in response.text


# -- grants ---------------------------------------------------------------------------------------


def test_grant_given_and_revoked(api: Api) -> None:
    given = api.call("POST", f"{TEAM_A}/grants", "a-admin", json={"resource": "alpha-data", "grantee_team": "team-b", "roles": ["training"], "expires": "30d", "reason": "joint model"})
    seen = api.call("GET", f"{API}/teams/team-b/datasets", "b-viewer").json()
    received = api.call("GET", f"{API}/teams/team-b/grants", "b-viewer").json()
    revoked = api.call("DELETE", f"{TEAM_A}/grants/{given.json()['id']}", "a-admin")
    again = api.call("DELETE", f"{TEAM_A}/grants/{given.json()['id']}", "a-admin")
    unseen = api.call("GET", f"{API}/teams/team-b/datasets", "b-viewer").json()

    assert given.status_code == 201, given.text
    assert given.json()["granted_by"] == "a-admin"
    assert given.json()["roles"] == ["training"]
    assert [d["ref"] for d in seen] == ["team-a/alpha-data"]
    assert [g["id"] for g in received] == [given.json()["id"]]
    assert revoked.status_code == 200
    assert revoked.json()["revoked_by"] == "a-admin"
    assert again.status_code == 200
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    assert unseen == []


def test_artifact_grant_defaults_to_warm_start(api: Api) -> None:
    given = api.call("POST", f"{TEAM_A}/grants", "a-admin", json={"resource_kind": "artifact", "resource": "alpha-model", "grantee_team": "team-b"})
    listed = api.call("GET", f"{API}/teams/team-b/artifacts", "b-viewer").json()

    assert given.status_code == 201, given.text
    assert given.json()["roles"] == ["warm_start"]
    assert [a["ref"] for a in listed] == ["team-a/alpha-model"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"resource": "alpha-data", "grantee_team": "team-z", "roles": ["training"]}, "team-z"),
        ({"resource": "alpha-data", "grantee_team": "team-a", "roles": ["training"]}, "another team"),
        ({"resource": "nothing", "grantee_team": "team-b", "roles": ["training"]}, "team-a/nothing"),
        ({"resource": "alpha-data", "grantee_team": "team-b", "roles": []}, "at least one role"),
        ({"resource": "alpha-data", "grantee_team": "team-b", "roles": ["checkpoint"]}, "checkpoint"),
        ({"resource": "alpha-data", "grantee_team": "team-b", "roles": ["training"], "expires": "soon"}, "soon"),
        ({"resource": "alpha-data", "grantee_team": "team-b", "roles": ["training"], "expires": "2001-01-01"}, "in the past"),
        ({"resource": "alpha-data", "version": "abc1234", "grantee_team": "team-b", "roles": ["training"]}, "version"),
        ({"resource_kind": "artifact", "resource": "alpha-model", "grantee_team": "team-b", "roles": ["training"]}, "training"),
        ({"resource": "alpha-data", "grantee_team": "team-b", "roles": ["training"], "extra": 1}, "extra"),
    ],
)
def test_grant_bad_input_rejected(api: Api, body: dict[str, Any], named: str) -> None:
    before = counts(api)

    response = api.call("POST", f"{TEAM_A}/grants", "a-admin", json=body)

    assert response.status_code == 422, response.text
    assert named in response.text
    assert counts(api) == before


def test_received_grant_cannot_be_revoked(api: Api) -> None:
    given = api.call("POST", f"{TEAM_A}/grants", "a-admin", json={"resource": "alpha-data", "grantee_team": "team-b", "roles": ["validation"]})
    by_grantee = api.call("DELETE", f"{API}/teams/team-b/grants/{given.json()['id']}", "b-admin")
    unknown = api.call("DELETE", f"{TEAM_A}/grants/99999", "a-admin")
    seeded_by_other = api.call("DELETE", f"{API}/teams/team-b/grants/{api.world.grants['a']}", "b-admin")

    assert by_grantee.status_code == 403
    assert "team-a" in by_grantee.json()["detail"]
    assert unknown.status_code == 404
    assert seeded_by_other.status_code == 404
    assert api.call("GET", f"{API}/teams/team-b/grants", "b-viewer").json()[0]["revoked_at"] is None


def test_audit_log_names_acting_user(api: Api) -> None:
    api.call("POST", f"{TEAM_A}/datasets", "a-member", json=dataset_body())
    api.call("GET", f"{API}/teams/team-b/datasets", "b-viewer")
    log = api.call("GET", f"{TEAM_A}/audit", "a-viewer").json()
    denied = api.call("GET", f"{TEAM_A}/audit?decision=deny", "a-viewer").json()
    one = api.call("GET", f"{TEAM_A}/audit?resource=team-a/customers", "a-viewer").json()
    other = api.call("GET", f"{API}/teams/team-b/audit", "b-viewer").json()
    bad = api.call("GET", f"{TEAM_A}/audit?resource=not-a-ref", "a-viewer")

    assert ("a-member", "register", "allow") in {(row["actor"], row["action"], row["decision"]) for row in one}
    assert [row["id"] for row in log] == sorted((row["id"] for row in log), reverse=True)
    assert {row["decision"] for row in denied} == {"deny"}
    assert ("b-viewer", "list") in {(row["actor"], row["action"]) for row in denied}
    assert {row["resource"] for row in one} == {"team-a/customers"}
    assert {row["team"] for row in other} == {"team-b"}
    assert "alpha-marker" not in json.dumps(other)
    assert bad.status_code == 422


# -- artifacts ------------------------------------------------------------------------------------


def test_artifact_published_listed_and_walked(api: Api, home: Path) -> None:
    trial = api.world.trials["a0"]

    published = api.call("POST", f"{TEAM_A}/artifacts", "a-member", json={"trial_id": trial, "name": "best-mlp", "kind": "model"})
    again = api.call("POST", f"{TEAM_A}/artifacts", "a-member", json={"trial_id": trial, "name": "best-mlp", "kind": "model"})
    listed = api.call("GET", f"{TEAM_A}/artifacts", "a-viewer").json()
    lineage = api.call("GET", f"{TEAM_A}/artifacts/team-a/best-mlp/lineage", "a-viewer")
    by_version = api.call("GET", f"{TEAM_A}/artifacts/team-a/best-mlp/lineage?version={published.json()['version'][:16]}", "a-viewer")

    assert published.status_code == 201, published.text
    assert published.json()["created_by"] == "a-member"
    assert published.json()["kind"] == "model"
    assert again.status_code == 200
    assert [a["name"] for a in listed] == ["alpha-model", "best-mlp"]
    assert lineage.status_code == 200, lineage.text
    assert lineage.json()["kind"] == "artifact"
    assert [a["number"] for a in lineage.json()["attempts"]] == [1]
    assert by_version.status_code == 200
    assert list((home / "openlineage").glob("search-*.jsonl"))


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        ({"trial_key": "a2", "name": "live"}, 409, "running"),
        ({"trial_key": "b0", "name": "stolen"}, 404, "not found"),
        ({"trial_id": 99999, "name": "ghost"}, 404, "99999"),
        ({"trial_key": "a0", "name": "Bad Name"}, 422, "name"),
        ({"trial_key": "a0", "name": "ok", "kind": "dataset"}, 422, "kind"),
        ({"trial_id": "seven", "name": "ok"}, 422, "trial_id"),
    ],
)
def test_artifact_bad_input_rejected(api: Api, body: dict[str, Any], status: int, named: str) -> None:
    if "trial_key" in body:
        trial_key = body["trial_key"]
        body = {key: value for key, value in body.items() if key != "trial_key"} | {"trial_id": api.world.trials[trial_key]}

    response = api.call("POST", f"{TEAM_A}/artifacts", "a-member", json=body)

    assert response.status_code == status, response.text
    assert named in response.text
    assert len(api.call("GET", f"{TEAM_A}/artifacts", "a-viewer").json()) == 1


def test_artifact_from_other_team_trial(api: Api) -> None:
    api.call("PUT", f"{API}/teams/team-b/members/a-member", "root", json={"role": "member"})

    response = api.call("POST", f"{TEAM_A}/artifacts", "a-member", json={"trial_id": api.world.trials["b0"], "name": "crossed"})

    assert response.status_code == 403
    assert "team-b" in response.json()["detail"]


def test_artifact_lineage_hidden_from_other_team(api: Api) -> None:
    hidden = api.call("GET", f"{API}/teams/team-b/artifacts/team-a/alpha-model/lineage", "b-viewer")
    unknown = api.call("GET", f"{TEAM_A}/artifacts/team-a/nothing/lineage", "a-viewer")

    assert hidden.status_code == 404
    assert "alpha-marker" not in hidden.text
    assert unknown.status_code == 404
