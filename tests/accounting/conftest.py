"""Helpers for accounting tests: controllers with a fast accounting service, and store queries.

Test modules get them through the ``acct`` fixture, since ``conftest`` itself
is not importable under a unique name.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from neurfly.accounting import AccountingService, PeriodKind, set_budget
from neurfly.controller import Controller, ControllerSettings
from neurfly.controller.usage import UsageService
from neurfly.core.cluster import default_cluster
from neurfly.core.scheduling.snapshot import PolicySettings
from neurfly.executors.local import LocalExecutor
from neurfly.monitoring.alerts import Alert
from neurfly.service import load_spec, submit_search
from neurfly.store import Attempt, Store
from store.pgtools import postgres_server, postgres_template, postgres_url  # noqa: F401 - fixtures

# Seconds between the service's budget refreshes in tests; actual spend is checked every tick anyway.
FAST_INTERVAL_S = 0.2


def submit(store: Store, write_spec: Callable[..., Path], filename: str, **overrides) -> int:
    """Write a spec, validate it against the default cluster and submit it; return the search id."""
    spec, document, _ = load_spec(write_spec(filename, **overrides), default_cluster())
    return submit_search(store, spec, document).search_id


def make_controller(store: Store, home: Path) -> tuple[Controller, AccountingService]:
    """A controller on the default cluster with usage and accounting services; preemption allowed at once."""
    accounting = AccountingService(interval_s=FAST_INTERVAL_S)
    settings = ControllerSettings(checkpoint_root=str(home / "checkpoints"), policy=PolicySettings(min_runtime_s=0.0))
    controller = Controller(store, default_cluster(), LocalExecutor(), settings=settings, services=[UsageService(), accounting])
    return controller, accounting


def hour_budget(store: Store, team: str, amount: str, **options) -> int:
    """Set a budget of ``team`` for the custom period of the hour around now; return its id."""
    now = time.time()
    budget = set_budget(store, team, amount, period=PeriodKind.CUSTOM, period_start=now - 1800, period_end=now + 1800,
                        actor="test", **options)
    return budget["id"]


def attempts_of(store: Store, search_id: int | None = None) -> list[Attempt]:
    with store.session() as session:
        query = select(Attempt).order_by(Attempt.id)
        if search_id is not None:
            query = query.where(Attempt.search_id == search_id)
        return list(session.scalars(query))


def budget_alerts(store: Store) -> list[Alert]:
    with store.session() as session:
        return list(session.scalars(select(Alert).where(Alert.key.like("budget:%")).order_by(Alert.id)))


def lifetime_device_seconds(rows: list[Attempt]) -> Decimal:
    """Sum of devices times (ended_at - started_at) over ended attempt rows, exactly."""
    return sum((row.devices * (Decimal(repr(row.ended_at)) - Decimal(repr(row.started_at))) for row in rows), Decimal(0))


@pytest.fixture
def acct() -> SimpleNamespace:
    """The helpers of this module, by name."""
    return SimpleNamespace(
        FAST_INTERVAL_S=FAST_INTERVAL_S, submit=submit, make_controller=make_controller, hour_budget=hour_budget,
        attempts_of=attempts_of, budget_alerts=budget_alerts, lifetime_device_seconds=lifetime_device_seconds,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, home: Path) -> Iterator[Store]:
    """A migrated, empty store on SQLite and on this machine's PostgreSQL server."""
    if request.param == "sqlite":
        opened = Store.open(f"sqlite:///{home / 'neurfly.db'}")
    else:
        opened = Store(request.getfixturevalue("postgres_url"))
    yield opened
    opened.dispose()
