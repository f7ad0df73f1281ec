"""The demo command on a small folder of example specs: a first run, a repeat, and --new."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from neurfly.store import Search, Store
from support import make_spec, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    folder = tmp_path / "examples"
    folder.mkdir()
    search = make_spec(name="sweep", budget={"max_trials": 3, "max_concurrent_trials": 2, "max_steps": 2})
    urgent = make_spec(
        name="retrain", team="team-b", priority="production", budget={"max_trials": 1, "max_concurrent_trials": 1, "max_steps": 2}
    )
    (folder / "sweep.yaml").write_text(yaml.safe_dump(search))
    (folder / "retrain.yaml").write_text(yaml.safe_dump(urgent))
    return folder


def _searches(store: Store) -> list[tuple[str, str]]:
    with store.session() as session:
        return [(name, state) for name, state in session.execute(select(Search.name, Search.state).order_by(Search.id))]


def test_demo_runs_then_shows_stored_results(home: Path, store: Store, examples: Path) -> None:
    first = run_cli(home, "demo", "--examples", str(examples), "--production-after", "0.5")

    assert first.returncode == 0, first.stderr
    assert "Running 1 example searches (3 trials) of 1 teams" in first.stdout
    assert "Usage by team" in first.stdout
    assert sorted(_searches(store)) == [("retrain", "completed"), ("sweep", "completed")]

    repeat = run_cli(home, "demo", "--examples", str(examples))

    assert repeat.returncode == 0, repeat.stderr
    assert "already finished in this store" in repeat.stdout
    assert "neurfly demo --new" in repeat.stdout
    assert "Leaderboard: team-a/sweep" in repeat.stdout
    assert "Leaderboard: team-b/retrain" in repeat.stdout
    assert "Usage by team" in repeat.stdout
    assert len(_searches(store)) == 2


def test_demo_new_runs_searches_again(home: Path, store: Store, examples: Path) -> None:
    assert run_cli(home, "demo", "--examples", str(examples), "--production-after", "0.5").returncode == 0

    again = run_cli(home, "demo", "--examples", str(examples), "--production-after", "0.5", "--new")

    assert again.returncode == 0, again.stderr
    assert "already finished" not in again.stdout
    names = [name for name, _ in _searches(store)]
    assert names.count("sweep") == 2
    assert names.count("retrain") == 2
    assert all(state == "completed" for _, state in _searches(store))
