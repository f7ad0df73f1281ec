"""How trial outcomes end up in the store: failures, NaN, timeouts, lost workers, ASHA."""

from __future__ import annotations

import math
import os
import signal
import textwrap
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import select

from neurfly.checkpoints import load_checkpoint
from neurfly.cli.runner import drive
from neurfly.controller import Controller, ControllerSettings
from neurfly.core.cluster import default_cluster
from neurfly.executors.local import LocalExecutor
from neurfly.service import find_search, leaderboard, load_spec, submit_search, trial_detail
from neurfly.store import Attempt, Search, Store, Trial
from support import run_cli

pytestmark = pytest.mark.slow


def _run(store: Store, spec_path: Path, home: Path) -> Search:
    cluster = default_cluster()
    spec, document, _ = load_spec(spec_path, cluster)
    submission = submit_search(store, spec, document)
    drive(store, cluster, [submission.search_id], Console(quiet=True), live_display=False, checkpoint_root=str(home / "checkpoints"))
    return find_search(store, submission.search_id)


def _trials(store: Store, search_id: int) -> list[Trial]:
    with store.session() as session:
        return list(session.scalars(select(Trial).where(Trial.search_id == search_id).order_by(Trial.number)))


def _attempts(store: Store, search_id: int) -> list[Attempt]:
    with store.session() as session:
        return list(session.scalars(select(Attempt).where(Attempt.search_id == search_id).order_by(Attempt.id)))


def test_failing_trials_stop_search(home: Path, store: Store, write_spec) -> None:
    spec = write_spec(
        budget={"max_trials": 10, "max_concurrent_trials": 2, "max_failed_trials": 3, "max_steps": 3},
        fixed={"fail_at": 1, "sleep_s": 0.05},
    )

    search = _run(store, spec, home)

    trials = _trials(store, search.id)
    failed = [t for t in trials if t.state == "failed"]
    assert search.state == "failed"
    assert "max_failed_trials" in search.message
    assert len(failed) >= 3
    assert len(trials) < 10
    assert all(t.state in ("failed", "stopped") for t in trials)
    attempts = _attempts(store, search.id)
    assert all(a.failure_kind == "user" for a in attempts if a.state == "failed")
    assert "RuntimeError" in next(a.traceback for a in attempts if a.traceback)


def test_nan_objective_ranks_worst(home: Path, store: Store, write_spec) -> None:
    spec = write_spec(
        space={"x": {"type": "categorical", "choices": [0.2, 0.4, 0.6, 0.8]}},
        strategy={"name": "grid"},
        budget={"max_trials": 4, "max_concurrent_trials": 2, "max_steps": 1},
        fixed={"nan_if_above": 0.5, "sleep_s": 0.0},
    )

    search = _run(store, spec, home)

    board = leaderboard(store, search)
    assert search.state == "completed"
    assert [row["params"]["x"] for row in board[:2]] == [0.2, 0.4]
    assert all(math.isnan(row["value"]) for row in board[2:])


def test_silent_trial_killed_as_timeout(home: Path, store: Store, write_spec, tmp_path: Path) -> None:
    (tmp_path / "silent_job.py").write_text(textwrap.dedent("""
        import time

        def train(params):
            time.sleep(60)
    """))
    spec = write_spec(
        entrypoint="silent_job:train",
        budget={"max_trials": 1, "max_concurrent_trials": 1, "max_steps": 1, "report_timeout_s": 1.5},
    )

    result = run_cli(home, "run", str(spec), "--json", extra_path=tmp_path)

    assert result.returncode == 1, result.stderr
    search = find_search(store, "probe")
    assert search.state == "failed"
    attempt = _attempts(store, search.id)[0]
    assert attempt.state == "failed"
    assert attempt.failure_kind == "timeout"
    assert _trials(store, search.id)[0].state == "failed"


def test_trial_without_objective_fails(home: Path, store: Store, write_spec, tmp_path: Path) -> None:
    (tmp_path / "quiet_job.py").write_text("from neurfly import trial\n\ndef train(params):\n    trial.report(1, other=1.0)\n")
    spec = write_spec(entrypoint="quiet_job:train", budget={"max_trials": 1, "max_concurrent_trials": 1, "max_steps": 1})

    result = run_cli(home, "run", str(spec), "--json", extra_path=tmp_path)

    assert result.returncode == 1, result.stderr
    trial = _trials(store, find_search(store, "probe").id)[0]
    assert trial.state == "failed"
    assert "objective" in trial.message


def test_killed_worker_resumes_elsewhere(home: Path, store: Store, write_spec) -> None:
    spec = write_spec(budget={"max_trials": 1, "max_concurrent_trials": 1, "max_steps": 8}, fixed={"sleep_s": 0.2})
    cluster = default_cluster()
    parsed, document, _ = load_spec(spec, cluster)
    search_id = submit_search(store, parsed, document).search_id
    controller = Controller(store, cluster, LocalExecutor(), settings=ControllerSettings(checkpoint_root=str(home / "checkpoints")))
    controller.start()
    killed: list[int] = []

    def kill_first_worker() -> None:
        if killed:
            return
        with store.session() as session:
            attempt = session.scalars(select(Attempt).where(Attempt.worker_pid.is_not(None), Attempt.end_step >= 3)).first()
        if attempt is not None:
            os.kill(attempt.worker_pid, signal.SIGKILL)
            killed.append(attempt.id)

    try:
        controller.run(until=lambda: search_id not in controller.searches, on_tick=kill_first_worker)
    finally:
        controller.stop()

    attempts = _attempts(store, search_id)
    assert killed
    assert attempts[0].state == "failed"
    assert attempts[0].failure_kind == "infrastructure"
    assert attempts[1].start_step >= 3
    assert attempts[1].state == "completed"
    assert _trials(store, search_id)[0].state == "completed"


def test_asha_pauses_keep_checkpoints(home: Path, store: Store, write_spec) -> None:
    spec = write_spec(
        space={"x": {"type": "float", "low": 0.0, "high": 1.0}},
        strategy={"name": "asha", "seed": 3, "options": {"eta": 2, "min_steps": 1}},
        budget={"max_trials": 8, "max_concurrent_trials": 2, "max_steps": 4},
        fixed={"sleep_s": 0.05},
    )
    cluster = default_cluster()
    parsed, document, _ = load_spec(spec, cluster)
    search_id = submit_search(store, parsed, document).search_id
    controller = Controller(store, cluster, LocalExecutor(), settings=ControllerSettings(checkpoint_root=str(home / "checkpoints")))
    controller.start()
    seen_paused: list[dict] = []

    def inspect_paused() -> None:
        runtime = controller.searches.get(search_id)
        if runtime is None or seen_paused:
            return
        paused = [t for t in runtime.trials.values() if t.state.value == "paused"]
        if paused:
            trial = paused[0]
            seen_paused.append({"id": trial.id, "uri": trial.checkpoint.uri, "digest": trial.checkpoint.digest})

    try:
        controller.run(until=lambda: search_id not in controller.searches, on_tick=inspect_paused)
    finally:
        controller.stop()

    assert seen_paused, "some trial paused at a rung"
    paused = seen_paused[0]
    assert load_checkpoint(paused["uri"], paused["digest"])["step"] >= 1
    search = find_search(store, search_id)
    trials = _trials(store, search_id)
    assert search.state == "completed"
    assert sum(t.state == "completed" for t in trials) >= 1
    assert all(t.state in ("completed", "pruned") for t in trials)
    promoted = [t for t in trials if len([a for a in _attempts(store, search_id) if a.trial_id == t.id]) > 1]
    assert promoted, "at least one paused trial was promoted and resumed"


def test_resumed_trial_matches_uninterrupted(home: Path, store: Store, write_spec) -> None:
    params = {"hidden_units": 24, "learning_rate_init": 0.01, "alpha": 1e-4, "batch_size": 64}
    common = dict(
        objective={"metric": "log_loss", "direction": "minimize"},
        space={"layers": {"type": "categorical", "choices": [1]}},
        budget={"max_trials": 1, "max_concurrent_trials": 1, "max_steps": 6},
        entrypoint="digits-mlp",
        fixed=params,
    )
    straight = _run(store, write_spec("a.yaml", name="straight", **common), home)

    spec = write_spec("b.yaml", name="interrupted", **common)
    cluster = default_cluster()
    parsed, document, _ = load_spec(spec, cluster)
    search_id = submit_search(store, parsed, document).search_id
    controller = Controller(store, cluster, LocalExecutor(), settings=ControllerSettings(checkpoint_root=str(home / "checkpoints")))
    controller.start()
    preempted: list[int] = []

    def preempt_once() -> None:
        runtime = controller.searches.get(search_id)
        if preempted or runtime is None:
            return
        for attempt in controller.attempts.values():
            if attempt.reported_step >= 3:
                controller.preempt(attempt.id, "preempted by the test")
                preempted.append(attempt.id)

    try:
        controller.run(until=lambda: search_id not in controller.searches, on_tick=preempt_once)
    finally:
        controller.stop()

    interrupted_attempts = _attempts(store, search_id)
    assert preempted
    assert interrupted_attempts[0].state == "preempted"
    assert interrupted_attempts[1].start_step >= 3
    straight_value = _trials(store, straight.id)[0].value
    interrupted_value = _trials(store, search_id)[0].value
    assert interrupted_value == pytest.approx(straight_value, rel=0, abs=1e-12)
    detail = trial_detail(store, "interrupted", 0)
    assert detail["curves"]["log_loss"][-1][0] == 6


def test_search_of_failed_trials_fails(home: Path, store: Store, write_spec) -> None:
    spec = write_spec(budget={"max_trials": 2, "max_concurrent_trials": 2, "max_steps": 2}, fixed={"fail_at": 1, "sleep_s": 0.0})

    result = run_cli(home, "run", str(spec))

    assert result.returncode == 1, result.stderr
    with store.session() as session:
        search = session.scalars(select(Search)).one()
        states = set(session.scalars(select(Trial.state)))
    assert search.state == "failed"
    assert "every trial that ran to the end failed" in search.message
    assert states == {"failed"}
