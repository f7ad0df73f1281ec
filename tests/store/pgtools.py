"""Throwaway PostgreSQL databases on this machine's server, for tests that run on both backends.

The server is found at ``$NEURFLY_TEST_POSTGRES`` (a SQLAlchemy URL of a
database whose user may create databases), by default
``postgresql+psycopg://postgres@127.0.0.1/postgres``. A session creates one
migrated template database, and each test gets a copy of it or an empty
database. Every database made here is dropped at the end of the session.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from neurfly.store import Store

ADMIN_URL = os.environ.get("NEURFLY_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1/postgres")


class PostgresServer:
    """Creates and drops databases through an autocommit connection to the server."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.prefix = f"neurfly_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.created: list[str] = []

    def create(self, template: str | None = None) -> str:
        name = f"{self.prefix}_{len(self.created)}"
        clause = f' TEMPLATE "{template}"' if template else ""
        with self.engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        self.created.append(name)
        return name

    def drop(self, name: str) -> None:
        with self.engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def url(self, name: str) -> str:
        return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The PostgreSQL server; the test is skipped, naming the URL, when it is unreachable."""
    engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any connection failure means there is no server to test against
        engine.dispose()
        shown = make_url(ADMIN_URL).render_as_string(hide_password=True)
        pytest.skip(f"PostgreSQL is unreachable at {shown} ({type(exc).__name__}); start it (.ci/run does) or set NEURFLY_TEST_POSTGRES")
    server = PostgresServer(engine)
    yield server
    for name in server.created:
        server.drop(name)
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> str:
    """Name of a database migrated to every head, copied by ``postgres_url``."""
    name = postgres_server.create()
    store = Store.open(postgres_server.url(name))
    store.dispose()
    return name


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, postgres_template: str) -> Iterator[str]:
    """URL of a fresh, migrated and empty database for one test."""
    name = postgres_server.create(template=postgres_template)
    yield postgres_server.url(name)
    postgres_server.drop(name)


@pytest.fixture
def empty_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """URL of a fresh database with no tables for one test."""
    name = postgres_server.create()
    yield postgres_server.url(name)
    postgres_server.drop(name)


