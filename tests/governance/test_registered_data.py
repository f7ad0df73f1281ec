"""Built-in workloads train and validate on registered dataset versions, and refuse data that changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from neurfly.governance import Sensitivity
from neurfly.store import Store
from gov_support import TEAM_A, attempts_of, noop_spec, register_csv, run_searches, search_row, trials_of, submit, write_csv

pytestmark = pytest.mark.slow


def _gbm_spec(name: str, data: dict) -> dict:
    return noop_spec(
        name, "team-a", entrypoint="breast-cancer-gbm", objective={"metric": "accuracy", "direction": "maximize"},
        space={"max_depth": {"type": "int", "low": 1, "high": 2}}, fixed={"trees_per_step": 2},
        budget={"max_trials": 1, "max_concurrent_trials": 1, "max_steps": 1}, data=data,
    )


def test_workload_reads_registered_versions(store: Store, home: Path, tmp_path: Path) -> None:
    training = register_csv(store, TEAM_A, "train", write_csv(tmp_path / "train.csv", 120), Sensitivity.INTERNAL)
    validation = register_csv(store, TEAM_A, "val", write_csv(tmp_path / "val.csv", 40, seed=5), Sensitivity.INTERNAL)

    search_id = submit(store, _gbm_spec("gbm", {"training": "team-a/train", "validation": "team-a/val"}))
    run_searches(store, home, [search_id])

    assert search_row(store, search_id).state == "completed"
    reported = attempts_of(store, search_id)[0].data_versions
    assert reported["training"]["dataset"] == "team-a/train"
    assert reported["training"]["version"] == training.split("@")[1]
    assert reported["training"]["rows"] == 120
    assert reported["validation"]["version"] == validation.split("@")[1]
    assert reported["validation"]["rows"] == 40
    assert reported["training"]["content"].startswith("sha256:")


def test_changed_file_fails_trial_as_data(store: Store, home: Path, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "train.csv", 80)
    register_csv(store, TEAM_A, "train", path, Sensitivity.INTERNAL)
    write_csv(path, 80, change_row=79)

    search_id = submit(store, _gbm_spec("gbm-changed", {"training": "team-a/train"}))
    run_searches(store, home, [search_id])

    attempt = attempts_of(store, search_id)[0]
    assert attempt.failure_kind == "data"
    assert "versions are immutable" in attempt.reason
    assert trials_of(store, search_id)[0].state == "failed"
