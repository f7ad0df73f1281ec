"""The store: the single source of truth, in SQLite by default or PostgreSQL.

``Store.open(url)`` creates or upgrades the schema with Alembic and returns a
store whose ``session()`` gives SQLAlchemy sessions.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from neurfly.store.models import (
    Attempt,
    Base,
    Checkpoint,
    ControllerLease,
    Event,
    MetricRecord,
    Search,
    Trial,
)

_logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def default_home() -> Path:
    """Folder of the embedded store and checkpoints: ``$NEURFLY_HOME`` or ``./.neurfly``."""
    return Path(os.environ.get("NEURFLY_HOME", ".neurfly")).resolve()


def default_url() -> str:
    return os.environ.get("NEURFLY_DATABASE_URL") or f"sqlite:///{default_home() / 'neurfly.db'}"


class Store:
    """An engine and a session factory over a migrated database.

    Args:
        url: SQLAlchemy URL, for example ``sqlite:///path/neurfly.db`` or
            ``postgresql+psycopg://user@host/db``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _create_engine(url)
        self.session = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str | None = None) -> Store:
        """Open the store at ``url`` (default: the embedded SQLite file), upgrading its schema."""
        url = url or default_url()
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        store = cls(url)
        store.migrate()
        return store

    def migrate(self) -> None:
        """Upgrade the schema to every newest Alembic revision.

        Each feature's tables come in a migration branch of their own, so the
        upgrade goes to all heads.
        """
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "heads")
        _logger.debug("store %s migrated to head", _redact(self.url))

    def new_session(self) -> Session:
        return self.session()

    def dispose(self) -> None:
        self.engine.dispose()


def _create_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)

    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API connection
        cursor = dbapi_connection.cursor()
        # WAL lets readers (the CLI) run while the controller writes; NORMAL
        # sync in WAL mode loses nothing when a process is killed.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def _redact(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


__all__ = [
    "Attempt",
    "Base",
    "Checkpoint",
    "ControllerLease",
    "Event",
    "MetricRecord",
    "Search",
    "Store",
    "Trial",
    "default_home",
    "default_url",
]
