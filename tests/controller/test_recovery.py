"""A controller killed with SIGKILL mid-search: the same command finishes the search."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from neurfly.store import Attempt, Search, Store, Trial
from support import kill_hard, run_cli, start_cli, wait_for

pytestmark = pytest.mark.slow


def _count(store: Store, query) -> int:
    with store.session() as session:
        return session.scalar(query)


def _trials(store: Store) -> list[Trial]:
    with store.session() as session:
        return list(session.scalars(select(Trial).order_by(Trial.number)))


def _kill_after_first_report(home: Path, spec: Path, store: Store) -> None:
    process = start_cli(home, "run", str(spec), "--json")
    wait_for(lambda: _count(store, select(func.count()).select_from(Attempt).where(Attempt.last_report_at.is_not(None))) > 0)
    kill_hard(process)


def test_grid_restart_evaluates_each_point_once(home: Path, store: Store, write_spec) -> None:
    spec = write_spec(
        space={"x": {"type": "categorical", "choices": [0.1, 0.2, 0.3]}},
        strategy={"name": "grid"},
        budget={"max_trials": 3, "max_concurrent_trials": 2, "max_steps": 4},
        fixed={"sleep_s": 0.3},
    )
    _kill_after_first_report(home, spec, store)

    result = run_cli(home, "run", str(spec), "--json")

    assert result.returncode == 0, result.stderr
    trials = _trials(store)
    assert sorted(t.params["x"] for t in trials) == [0.1, 0.2, 0.3]
    assert all(t.state == "completed" for t in trials)
    with store.session() as session:
        completed_attempts = session.execute(
            select(Attempt.trial_id, func.count()).where(Attempt.state == "completed").group_by(Attempt.trial_id)
        ).all()
        search_state = session.scalar(select(Search.state))
    assert all(count == 1 for _, count in completed_attempts)
    assert search_state == "completed"


def test_budget_exact_when_all_trials_exist(home: Path, store: Store, write_spec) -> None:
    spec = write_spec(budget={"max_trials": 3, "max_concurrent_trials": 3, "max_steps": 4}, fixed={"sleep_s": 0.3})
    _kill_after_first_report(home, spec, store)
    assert len(_trials(store)) == 3

    result = run_cli(home, "run", str(spec), "--json")

    assert result.returncode == 0, result.stderr
    assert len(_trials(store)) == 3
    rerun = run_cli(home, "run", str(spec), "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert len(_trials(store)) == 3


def test_seeded_tpe_restart_never_repeats(home: Path, store: Store, write_spec) -> None:
    spec = write_spec(
        space={"x": {"type": "int", "low": 0, "high": 30}},
        strategy={"name": "tpe", "seed": 5, "options": {"n_startup_trials": 3}},
        budget={"max_trials": 12, "max_concurrent_trials": 2, "max_steps": 1},
        fixed={"sleep_s": 0.1},
    )
    process = start_cli(home, "run", str(spec), "--json")
    wait_for(lambda: _count(store, select(func.count()).select_from(Trial).where(Trial.state == "completed")) >= 5)
    kill_hard(process)

    result = run_cli(home, "run", str(spec), "--json")

    assert result.returncode == 0, result.stderr
    trials = _trials(store)
    assert len(trials) == 12
    assert len({t.params["x"] for t in trials}) == 12


def test_lost_attempts_resume_from_checkpoint(home: Path, store: Store, write_spec) -> None:
    spec = write_spec(budget={"max_trials": 2, "max_concurrent_trials": 2, "max_steps": 6}, fixed={"sleep_s": 0.25})
    process = start_cli(home, "run", str(spec), "--json")
    wait_for(lambda: _count(store, select(func.count()).select_from(Trial).where(Trial.checkpoint_id.is_not(None))) > 0)
    kill_hard(process)

    result = run_cli(home, "run", str(spec), "--json")

    assert result.returncode == 0, result.stderr
    with store.session() as session:
        lost = session.scalars(select(Attempt).where(Attempt.state == "lost")).all()
        resumed = session.scalars(select(Attempt).where(Attempt.number == 2)).all()
    assert lost, "the killed controller's attempts are marked lost"
    assert any(a.start_step > 0 for a in resumed)
    assert all(t.state == "completed" for t in _trials(store))
    output = json.loads(result.stdout)
    assert output["search"]["state"] == "completed"


def test_lost_attempt_records_progress_lost(home: Path, store: Store, write_spec) -> None:
    spec = write_spec(
        budget={"max_trials": 1, "max_concurrent_trials": 1, "max_steps": 8},
        fixed={"sleep_s": 0.3, "checkpoint_every": 3},
    )
    process = start_cli(home, "run", str(spec), "--json")
    past_checkpoint = select(func.count()).select_from(Attempt).where(Attempt.end_step.in_([4, 5]))
    wait_for(lambda: _count(store, past_checkpoint) > 0, interval=0.05)
    kill_hard(process)

    result = run_cli(home, "run", str(spec), "--json")

    assert result.returncode == 0, result.stderr
    with store.session() as session:
        lost = session.scalars(select(Attempt).where(Attempt.state == "lost")).one()
        resumed = session.scalars(select(Attempt).where(Attempt.number == 2)).one()
    assert resumed.start_step in (3, 6)
    assert lost.end_step in (4, 5, 6)
    assert lost.progress_lost == lost.end_step - resumed.start_step
