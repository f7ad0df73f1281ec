"""``neurfly admin`` on the store: the bootstrap of users, teams, members and tokens."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import pytest

from neurfly.auth import AuthenticationError, Role, authenticate
from neurfly.cli import app
from neurfly.store import Store


def _invoke(db: str, *args: str):  # noqa: ANN202 - a typer result
    return CliRunner().invoke(app, [*args, "--db", db])


def test_admin_bootstrap_and_revoke(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"

    created = _invoke(db, "admin", "create-token", "--user", "root", "--platform-admin", "--json", "--expires-in-days", "0")
    added = _invoke(db, "admin", "add-user", "bob")
    member = _invoke(db, "admin", "add-member", "--team", "vision", "--user", "bob", "--role", "admin")
    bob = _invoke(db, "admin", "create-token", "--user", "bob", "--name", "laptop", "--json")
    users = _invoke(db, "admin", "list-users", "--json")

    assert created.exit_code == 0, created.output
    root_token = json.loads(created.output)
    assert root_token["expires_at"] is None
    assert added.exit_code == 0
    assert "team vision added" in member.output
    assert json.loads(users.output) == [
        {"name": "bob", "platform_admin": False, "disabled": False, "teams": {"vision": "admin"}},
        {"name": "root", "platform_admin": True, "disabled": False, "teams": {}},
    ]
    store = Store(db)
    with store.session() as session:
        who = authenticate(session, json.loads(bob.output)["token"])
    assert dict(who.roles) == {"vision": Role.ADMIN}

    tokens = json.loads(_invoke(db, "admin", "list-tokens", "--user", "bob", "--json").output)
    revoked = _invoke(db, "admin", "revoke-token", tokens[0]["key_id"])
    after = json.loads(_invoke(db, "admin", "list-tokens", "--user", "bob", "--json").output)
    assert [t["name"] for t in tokens] == ["laptop"]
    assert "token" not in tokens[0]
    assert revoked.exit_code == 0
    assert after[0]["active"] is False
    removed = _invoke(db, "admin", "remove-member", "--team", "vision", "--user", "bob")
    assert removed.exit_code == 0
    store.dispose()


def test_admin_rejects_bad_input(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"

    unknown_user = _invoke(db, "admin", "create-token", "--user", "nobody")
    bad_name = _invoke(db, "admin", "add-user", "Bad Name")
    bad_role = _invoke(db, "admin", "add-member", "--team", "t", "--user", "x", "--role", "owner")
    _invoke(db, "admin", "add-user", "alice")
    duplicate = _invoke(db, "admin", "add-user", "alice")

    for result in (unknown_user, bad_name, bad_role, duplicate):
        assert result.exit_code != 0
    assert "not found" in str(unknown_user.exception)
    assert "invalid" in str(bad_name.exception)
    assert "--role 'owner' is invalid" in str(bad_role.exception)
    assert "exists already" in str(duplicate.exception)


def test_admin_disables_and_enables_user(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    assert _invoke(db, "admin", "add-user", "carol").exit_code == 0
    token = json.loads(_invoke(db, "admin", "create-token", "--user", "carol", "--json").output)["token"]

    disabled = _invoke(db, "admin", "disable-user", "carol")
    listed = json.loads(_invoke(db, "admin", "list-users", "--json").output)

    assert disabled.exit_code == 0, disabled.output
    assert listed == [{"name": "carol", "platform_admin": False, "disabled": True, "teams": {}}]
    store = Store(db)
    with store.session() as session, pytest.raises(AuthenticationError):
        authenticate(session, token)

    enabled = _invoke(db, "admin", "disable-user", "carol", "--enable")

    assert enabled.exit_code == 0, enabled.output
    with store.session() as session:
        assert authenticate(session, token).user == "carol"
    unknown = _invoke(db, "admin", "disable-user", "nobody")
    assert unknown.exit_code != 0
    assert "nobody" in str(unknown.exception)
