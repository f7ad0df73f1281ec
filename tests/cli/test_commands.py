"""The CLI as a user runs it: run, status, trials, show, cancel, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from neurfly.store import Search, Store, Trial
from support import kill_hard, run_cli, start_cli, wait_for


def test_invalid_spec_names_field_and_fix(home: Path, write_spec) -> None:
    spec = write_spec(space={"lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}})

    result = run_cli(home, "run", str(spec))

    assert result.returncode == 2
    assert "space.lr.low" in result.stderr
    assert "log scale needs low > 0" in result.stderr


def test_unknown_workload_lists_choices(home: Path, write_spec) -> None:
    result = run_cli(home, "run", str(write_spec(entrypoint="no-such-workload")))

    assert result.returncode == 2
    assert "unknown workload 'no-such-workload'" in result.stderr
    assert "digits-mlp" in result.stderr


def test_unknown_bundled_dataset_rejected(home: Path, write_spec) -> None:
    spec = write_spec(entrypoint="digits-mlp", objective={"metric": "accuracy", "direction": "maximize"}, data={"dataset": "sklearn:digitz"})

    result = run_cli(home, "run", str(spec))

    assert result.returncode == 2
    assert "data.dataset" in result.stderr
    assert "sklearn:digits" in result.stderr


def test_missing_spec_file_is_reported(home: Path, tmp_path: Path) -> None:
    result = run_cli(home, "run", str(tmp_path / "absent.yaml"))

    assert result.returncode == 2
    assert "file not found" in result.stderr


def test_duplicate_yaml_key_rejected(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("name: a\nname: b\n")

    result = run_cli(home, "run", str(path))

    assert result.returncode == 2
    assert "appears twice" in result.stderr


@pytest.mark.slow
def test_run_then_query_commands(home: Path, write_spec) -> None:
    spec = write_spec(budget={"max_trials": 3, "max_concurrent_trials": 2, "max_steps": 2}, fixed={"sleep_s": 0.0})

    result = run_cli(home, "run", str(spec), "--json")

    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["search"]["state"] == "completed"
    assert len(output["leaderboard"]) == 3

    status = json.loads(run_cli(home, "status", "--json").stdout)
    assert [row["name"] for row in status] == ["probe"]

    trials = json.loads(run_cli(home, "trials", "probe", "--json").stdout)
    assert [t["number"] for t in trials] == [0, 1, 2]

    shown = run_cli(home, "show", "probe#1", "--json")
    detail = json.loads(shown.stdout)
    assert detail["curves"]["objective"][-1][0] == 2
    assert detail["attempts"][0]["data_versions"] == {}

    table = run_cli(home, "show", "probe#1")
    assert "Learning curve" in table.stdout


def test_show_unknown_trial_fails_cleanly(home: Path, write_spec) -> None:
    result = run_cli(home, "show", "nothing#3")

    assert result.returncode == 2
    assert "not found" in result.stderr


@pytest.mark.slow
def test_cancel_stops_running_search(home: Path, store: Store, write_spec) -> None:
    spec = write_spec(budget={"max_trials": 6, "max_concurrent_trials": 2, "max_steps": 50}, fixed={"sleep_s": 0.1})
    process = start_cli(home, "run", str(spec), "--json")
    with store.session() as session:
        wait_for(lambda: session.scalar(select(func.count()).select_from(Trial).where(Trial.state == "running")) > 0)

    result = run_cli(home, "cancel", "probe")

    assert result.returncode == 0, result.stderr
    assert process.wait(timeout=60) == 0
    with store.session() as session:
        search = session.scalars(select(Search)).one()
        states = set(session.scalars(select(Trial.state)))
    assert search.state == "cancelled"
    assert states <= {"stopped", "completed"}


@pytest.mark.slow
def test_cancel_without_controller(home: Path, store: Store, write_spec) -> None:
    spec = write_spec(budget={"max_trials": 4, "max_concurrent_trials": 2, "max_steps": 50}, fixed={"sleep_s": 0.1})
    process = start_cli(home, "run", str(spec), "--json")
    with store.session() as session:
        wait_for(lambda: session.scalar(select(func.count()).select_from(Trial).where(Trial.state == "running")) > 0)
    kill_hard(process)

    result = run_cli(home, "cancel", "team-a/probe")

    assert result.returncode == 0, result.stderr
    assert "cancelled" in result.stdout
    with store.session() as session:
        assert session.scalars(select(Search.state)).one() == "cancelled"
