"""Alembic environment: runs migrations on the connection the store passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from neurfly.store.models import Base
import neurfly.monitoring.alerts  # noqa: F401 - registers the alerts table
import neurfly.governance.models  # noqa: F401 - registers the datasets, grants, artifacts, lineage and audit tables
import neurfly.accounting.models  # noqa: F401 - registers the budgets, budget_changes and budget_states tables
import neurfly.monitoring.records  # noqa: F401 - registers the monitoring tables
import neurfly.auth.models  # noqa: F401 - registers the users, teams, team_members and api_tokens tables

target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = engine_from_config(context.config.get_section(context.config.config_ini_section) or {}, prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as new_connection:
        _run(new_connection)


if context.is_offline_mode():
    context.configure(url=context.config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_online()
