"""Users, teams, memberships and tokens in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select, text

from neurfly.auth import (
    AlreadyExistsError,
    AuthenticationError,
    Role,
    TokenRecord,
    UserRecord,
    authenticate,
    create_team,
    create_user,
    issue_token,
    list_tokens,
    remove_member,
    revoke_token,
    set_member,
    team_members,
)
from neurfly.errors import NotFoundError
from neurfly.store import Store


def _seed(store: Store) -> None:
    with store.session() as session:
        create_team(session, "team-a")
        create_team(session, "team-b")
        create_user(session, "alice")
        create_user(session, "root", platform_admin=True)
        set_member(session, "team-a", "alice", Role.MEMBER)
        set_member(session, "team-b", "alice", Role.VIEWER)
        session.commit()


def test_token_authenticates_its_user(any_store: Store) -> None:
    _seed(any_store)
    with any_store.session() as session:
        issued = issue_token(session, "alice", "laptop", expires_in_s=3600)
        session.commit()

    with any_store.session() as session:
        who = authenticate(session, issued.token)
        session.commit()

    assert who.user == "alice"
    assert not who.platform_admin
    assert dict(who.roles) == {"team-a": Role.MEMBER, "team-b": Role.VIEWER}
    assert who.can("team-a", Role.MEMBER)
    assert not who.can("team-b", Role.MEMBER)
    assert who.role_in("team-c") is None
    assert who.token_id == issued.key_id


def test_store_keeps_no_secret(any_store: Store) -> None:
    _seed(any_store)
    with any_store.session() as session:
        issued = issue_token(session, "alice")
        session.commit()
    secret = issued.token.split("_", 2)[2]

    with any_store.engine.connect() as connection:
        rows = [" ".join(str(value) for value in row) for row in connection.execute(text("SELECT * FROM api_tokens"))]

    assert len(rows) == 1
    assert secret not in rows[0]
    assert issued.token not in rows[0]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),
        lambda token: "nf_aaaaaaaaaaaa_" + token.split("_", 2)[2],
        lambda token: token.replace("nf_", "xx_", 1),
        lambda token: "",
        lambda token: token + "\x00",
    ],
    ids=["wrong-secret", "unknown-key", "wrong-prefix", "empty", "nul-byte"],
)
def test_bad_token_rejected(any_store: Store, mangle) -> None:  # noqa: ANN001 - a token transform
    _seed(any_store)
    with any_store.session() as session:
        issued = issue_token(session, "alice")
        session.commit()

    with any_store.session() as session, pytest.raises(AuthenticationError, match="invalid token"):
        authenticate(session, mangle(issued.token))


def test_revoked_and_expired_tokens_rejected(any_store: Store) -> None:
    _seed(any_store)
    now = time.time()
    with any_store.session() as session:
        revoked = issue_token(session, "alice", "old", now=now)
        expiring = issue_token(session, "alice", "short", expires_in_s=60, now=now)
        session.commit()
        revoke_token(session, revoked.key_id, now=now)
        revoke_token(session, revoked.key_id, now=now + 5)
        session.commit()

    with any_store.session() as session:
        with pytest.raises(AuthenticationError, match="revoked"):
            authenticate(session, revoked.token, now + 1)
        assert authenticate(session, expiring.token, now + 59).user == "alice"
        with pytest.raises(AuthenticationError, match="expired"):
            authenticate(session, expiring.token, now + 61)
        row = session.scalars(select(TokenRecord).where(TokenRecord.key_id == revoked.key_id)).one()
    assert row.revoked_at == pytest.approx(now)


def test_disabled_user_rejected(any_store: Store) -> None:
    _seed(any_store)
    with any_store.session() as session:
        issued = issue_token(session, "alice")
        session.scalars(select(UserRecord).where(UserRecord.name == "alice")).one().disabled = True
        session.commit()

    with any_store.session() as session, pytest.raises(AuthenticationError, match="disabled"):
        authenticate(session, issued.token)


def test_last_use_written_at_most_each_minute(any_store: Store) -> None:
    _seed(any_store)
    now = time.time()
    with any_store.session() as session:
        issued = issue_token(session, "alice", now=now)
        session.commit()

    for offset in (1.0, 30.0, 70.0):
        with any_store.session() as session:
            authenticate(session, issued.token, now + offset)
            session.commit()

    with any_store.session() as session:
        row, _ = list_tokens(session)[0]
    assert row.last_used_at == pytest.approx(now + 70.0)


def test_memberships_change_and_end(any_store: Store) -> None:
    _seed(any_store)
    with any_store.session() as session:
        set_member(session, "team-a", "alice", Role.ADMIN)
        session.commit()
        assert [(u.name, r) for u, r in team_members(session, "team-a")] == [("alice", Role.ADMIN)]
        remove_member(session, "team-a", "alice")
        session.commit()
        assert team_members(session, "team-a") == []
        with pytest.raises(NotFoundError, match="membership"):
            remove_member(session, "team-a", "alice")


@pytest.mark.parametrize("name", ["Alice", "", "a" * 64, "-lead", "a b", "a\x00b"])
def test_invalid_names_rejected(any_store: Store, name: str) -> None:
    with any_store.session() as session:
        with pytest.raises(ValueError, match="invalid"):
            create_user(session, name)
        with pytest.raises(ValueError, match="invalid"):
            create_team(session, name)


def test_duplicates_rejected(any_store: Store) -> None:
    _seed(any_store)
    with any_store.session() as session:
        with pytest.raises(AlreadyExistsError):
            create_user(session, "alice")
        with pytest.raises(AlreadyExistsError):
            create_team(session, "team-a")
        with pytest.raises(NotFoundError, match="user 'nobody'"):
            set_member(session, "team-a", "nobody", Role.VIEWER)
        with pytest.raises(NotFoundError, match="team 'team-z'"):
            set_member(session, "team-z", "alice", Role.VIEWER)
