"""Alembic migrations on SQLite and PostgreSQL: fresh, in place from an older schema, and back."""

from __future__ import annotations

import time

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, select, text

from neurfly.store import MIGRATIONS, Search, Store

AUTH_TABLES = {"teams", "users", "team_members", "api_tokens"}


def _config(connection) -> Config:  # noqa: ANN001 - SQLAlchemy connection
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    names = set(inspect(engine).get_table_names())
    engine.dispose()
    return names


def _versions(store: Store) -> set[str]:
    with store.engine.connect() as connection:
        return {row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))}


def test_fresh_store_reaches_every_head(empty_url: str) -> None:
    store = Store.open(empty_url)

    heads = set(ScriptDirectory.from_config(_config(None)).get_heads())
    assert _versions(store) == heads
    assert "0005" in heads
    assert AUTH_TABLES <= _tables(empty_url)
    assert {"searches", "trials", "attempts", "metrics", "events"} <= _tables(empty_url)
    store.dispose()


def test_old_store_upgraded_in_place(empty_url: str) -> None:
    engine = create_engine(empty_url)
    with engine.begin() as connection:
        command.upgrade(_config(connection), "0001")
    with engine.begin() as connection:
        connection.execute(
            Search.__table__.insert().values(
                name="kept", team="team-a", state="completed", spec={"name": "kept"}, strategy="random",
                objective_metric="loss", direction="minimize", max_trials=1, priority="search",
                cancel_requested=False, created_at=time.time(),
            )
        )
    engine.dispose()
    assert not AUTH_TABLES & _tables(empty_url)

    store = Store.open(empty_url)

    assert AUTH_TABLES <= _tables(empty_url)
    with store.session() as session:
        rows = session.scalars(select(Search)).all()
    assert [(row.name, row.spec) for row in rows] == [("kept", {"name": "kept"})]
    assert "0005" in _versions(store)
    store.dispose()


def test_auth_branch_downgrades_alone(empty_url: str) -> None:
    store = Store.open(empty_url)

    with store.engine.begin() as connection:
        command.downgrade(_config(connection), "auth@-1")

    tables = _tables(empty_url)
    assert not AUTH_TABLES & tables
    assert "searches" in tables
    assert "0005" not in _versions(store)
    store.dispose()
    reopened = Store.open(empty_url)
    assert AUTH_TABLES <= _tables(empty_url)
    reopened.dispose()
