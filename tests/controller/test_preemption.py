"""Preemption in the live controller: a production trial takes devices from a search."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from neurfly.controller import Controller, ControllerSettings
from neurfly.core.cluster import ClusterConfig, NodeConfig, PoolConfig
from neurfly.core.scheduling.snapshot import PolicySettings
from neurfly.executors.local import LocalExecutor
from neurfly.service import load_spec, submit_search
from neurfly.store import Attempt, Store, Trial

pytestmark = pytest.mark.slow

ONE_NODE = ClusterConfig(
    pools=(PoolConfig(name="pool", region="eu-west", nodes=(NodeConfig(name="node-1", devices=2),)),),
)


def _attempts(store: Store, search_id: int) -> list[Attempt]:
    with store.session() as session:
        return list(session.scalars(select(Attempt).where(Attempt.search_id == search_id).order_by(Attempt.id)))


def test_production_trial_preempts_search(home: Path, store: Store, write_spec) -> None:
    search_spec = write_spec(
        "search.yaml",
        name="sweep",
        team="team-a",
        space={"x": {"type": "categorical", "choices": [0.1, 0.2]}},
        strategy={"name": "grid"},
        budget={"max_trials": 2, "max_concurrent_trials": 2, "max_steps": 30},
        fixed={"sleep_s": 0.1, "checkpoint_every": 4},
    )
    urgent_spec = write_spec(
        "urgent.yaml",
        name="retrain",
        team="team-b",
        priority="production",
        budget={"max_trials": 1, "max_concurrent_trials": 1, "max_steps": 5},
        fixed={"sleep_s": 0.05},
    )
    spec, document, _ = load_spec(search_spec, ONE_NODE)
    sweep_id = submit_search(store, spec, document).search_id
    settings = ControllerSettings(checkpoint_root=str(home / "checkpoints"), policy=PolicySettings(min_runtime_s=0.5, validate=True))
    controller = Controller(store, ONE_NODE, LocalExecutor(), settings=settings)
    controller.start()
    submitted: list[int] = []

    def submit_when_busy() -> None:
        if submitted or len(controller.attempts) < 2:
            return
        if min(a.reported_step for a in controller.attempts.values()) >= 6:
            spec, document, _ = load_spec(urgent_spec, ONE_NODE)
            submitted.append(submit_search(store, spec, document).search_id)

    try:
        controller.run(until=lambda: bool(submitted) and not controller.searches, on_tick=submit_when_busy)
    finally:
        controller.stop()

    sweep = _attempts(store, sweep_id)
    preempted = [a for a in sweep if a.state == "preempted"]
    assert len(preempted) == 1
    victim = preempted[0]
    resumed = next(a for a in sweep if a.trial_id == victim.trial_id and a.number == 2)
    checkpoint_step = (victim.end_step // 4) * 4
    assert victim.progress_lost == victim.end_step - checkpoint_step
    assert resumed.start_step == checkpoint_step
    assert resumed.state == "completed"
    urgent = _attempts(store, submitted[0])
    assert urgent[0].state == "completed"
    assert urgent[0].started_at >= victim.stop_requested_at
    with store.session() as session:
        states = set(session.scalars(select(Trial.state)))
    assert states == {"completed"}
