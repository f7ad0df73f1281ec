"""Budgets in the store on SQLite and PostgreSQL: changes, audit log, status and submission checks."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError

from neurfly.accounting import (
    BudgetChange,
    BudgetError,
    BudgetLevel,
    BudgetState,
    PeriodKind,
    budget_history,
    budget_status,
    list_budgets,
    month_period,
    remove_budget,
    set_budget,
)
from neurfly.accounting.budgets import submission_problems
from neurfly.core.cluster import default_cluster
from neurfly.errors import NotFoundError
from neurfly.store import Attempt, Search, Store, Trial

NOW = time.time()


def _search(store: Store, team: str, name: str = "probe") -> int:
    with store.session() as session:
        row = Search(name=name, team=team, state="running", spec={"budget": {"max_steps": 10}}, strategy="random",
                     objective_metric="objective", direction="minimize", max_trials=1, priority="search",
                     cancel_requested=False, created_at=NOW - 600)
        session.add(row)
        session.commit()
        return row.id


def _attempt(store: Store, search_id: int, started: float, ended: float | None, pool: str = "eu-local", devices: int = 1) -> None:
    with store.session() as session:
        number = session.query(Trial).filter(Trial.search_id == search_id).count()
        trial = Trial(search_id=search_id, number=number, params={"x": number}, config_key=str(number), state="running",
                      created_at=started, queued_at=started)
        session.add(trial)
        session.flush()
        session.add(Attempt(trial_id=trial.id, search_id=search_id, number=1, state="completed" if ended else "running",
                            executor="local", pool=pool, node="eu-node-1", slots=[0], devices=devices, started_at=started,
                            ended_at=ended, start_step=0, progress_lost=0, data_versions={}))
        session.commit()


def test_set_creates_then_keeps_options(any_store: Store) -> None:
    created = set_budget(any_store, "team-a", "100", thresholds=[90, 50], hard_limit_percent=150.0, actor="alice", reason="q4", now=NOW)
    raised = set_budget(any_store, "team-a", "250.5", actor="bob", now=NOW + 1)

    assert created["amount"] == "100.000000"
    assert created["period"] == "month"
    assert created["thresholds"] == [50.0, 90.0]
    assert raised["amount"] == "250.500000"
    assert raised["thresholds"] == [50.0, 90.0]
    assert raised["soft_limit_percent"] == 100.0
    assert raised["hard_limit_percent"] == 150.0
    assert raised["updated_by"] == "bob"
    assert [b["id"] for b in list_budgets(any_store)] == [created["id"]]


def test_every_change_audited(any_store: Store) -> None:
    set_budget(any_store, "team-a", "100", actor="alice", reason="initial", now=NOW)
    set_budget(any_store, "team-a", "100", actor="carol", now=NOW + 1)
    set_budget(any_store, "team-a", "120", actor="bob", reason="more data", now=NOW + 2)
    remove_budget(any_store, "team-a", actor="dave", reason="team closed", now=NOW + 3)
    set_budget(any_store, "team-b", "5", actor="erin", now=NOW + 4)

    history = budget_history(any_store, team="team-a")

    assert [(c["action"], c["actor"], c["reason"]) for c in history] == [
        ("created", "alice", "initial"), ("updated", "bob", "more data"), ("removed", "dave", "team closed"),
    ]
    assert history[1]["before"]["amount"] == "100.000000"
    assert history[1]["after"]["amount"] == "120.000000"
    assert history[2]["after"] is None
    assert list_budgets(any_store, team="team-a") == []
    assert len(budget_history(any_store)) == 4


def test_audit_log_append_only(any_store: Store) -> None:
    set_budget(any_store, "team-a", "100", actor="alice", now=NOW)

    for statement in (update(BudgetChange).values(actor="mallory"), delete(BudgetChange)):
        with any_store.session() as session, pytest.raises(DBAPIError, match="append-only"):
            session.execute(statement)
            session.commit()

    assert [c["actor"] for c in budget_history(any_store)] == ["alice"]


def test_invalid_budget_changes_rejected(any_store: Store) -> None:
    set_budget(any_store, "team-a", "100", actor="alice", now=NOW)
    other_team = _search(any_store, "team-b")
    cases = [
        (dict(team="Team A", amount="1"), "not a valid name"),
        (dict(team="team-a", amount="0"), "must be more than 0"),
        (dict(team="team-a", amount="12.3456789"), "more than 6 decimals"),
        (dict(team="team-a", amount="1", period="weekly"), "use 'month' or 'custom'"),
        (dict(team="team-a", amount="1", period=PeriodKind.CUSTOM), "needs both a start and an end"),
        (dict(team="team-a", amount="1", period=PeriodKind.CUSTOM, period_start=NOW, period_end=NOW - 1), "start before its end"),
        (dict(team="team-a", amount="1", thresholds=[80, 80]), "distinct"),
        (dict(team="team-a", amount="1", soft_limit_percent=-5.0), "soft_limit_percent"),
        (dict(team="team-a", amount="1", search_id=other_team), "belongs to team 'team-b'"),
    ]
    for arguments, message in cases:
        with pytest.raises(BudgetError, match=message):
            set_budget(any_store, actor="x", now=NOW, **arguments)

    with pytest.raises(NotFoundError, match="search 9999"):
        set_budget(any_store, "team-a", "1", search_id=9999, actor="x")
    with pytest.raises(NotFoundError, match="team:team-c"):
        remove_budget(any_store, "team-c", actor="x")
    assert [b["amount"] for b in list_budgets(any_store)] == ["100.000000"]
    assert len(budget_history(any_store)) == 1


def test_status_from_records(store: Store) -> None:
    search_id = _search(store, "team-a")
    other = _search(store, "team-b", "other")
    start = NOW - 1200
    set_budget(store, "team-a", "1", period=PeriodKind.CUSTOM, period_start=start, period_end=start + 7200, actor="x", now=start)
    set_budget(store, "team-b", "1", search_id=other, period=PeriodKind.CUSTOM, period_start=start, period_end=start + 7200,
               actor="x", now=start)
    # team-a: 2 devices for 15 minutes on eu-local at 1.00 per device-hour = 0.50
    _attempt(store, search_id, start + 60, start + 960, devices=2)
    # An open attempt of 10 minutes; no controller runs, so it is billed to its start (no report yet).
    _attempt(store, search_id, NOW - 600, None)

    statuses = {s.budget["team"]: s for s in budget_status(store, default_cluster(), NOW)}

    team_a = statuses["team-a"].evaluation
    assert team_a.spent_micros == 500_000
    assert team_a.level is BudgetLevel.OK
    assert statuses["team-b"].evaluation.spent_micros == 0
    assert statuses["team-a"].to_dict()["percent_spent"] == 50.0


def test_submission_uses_recorded_spend(store: Store) -> None:
    budget = set_budget(store, "team-a", "10", actor="x", now=NOW)
    period_start = month_period(NOW).start
    with store.session() as session:
        session.add(BudgetState(budget_id=budget["id"], period_start=period_start, spent_micros=12_000_000,
                                forecast_micros=20_000_000, level="soft", evaluated_at=NOW))
        session.commit()

    with store.session() as session:
        over = submission_problems(session, "team-a", NOW)
        other = submission_problems(session, "team-b", NOW)
    set_budget(store, "team-a", "20", actor="admin", now=NOW + 1)
    with store.session() as session:
        raised = submission_problems(session, "team-a", NOW + 2)

    assert len(over) == 1
    assert "has spent 12.00 of its month budget of 10.00" in over[0]
    assert "neurfly budget set team-a --amount" in over[0]
    assert other == []
    assert raised == []


def test_state_of_old_period_ignored(store: Store) -> None:
    budget = set_budget(store, "team-a", "10", actor="x", now=NOW)
    with store.session() as session:
        session.add(BudgetState(budget_id=budget["id"], period_start=NOW - 90 * 86400, spent_micros=50_000_000,
                                forecast_micros=0, level="hard", evaluated_at=NOW - 89 * 86400))
        session.commit()
        assert submission_problems(session, "team-a", NOW) == []
    with store.session() as session:
        assert session.scalars(select(BudgetState)).one().level == "hard"
