"""Searches on a real two-node Ray cluster: placement, node discovery, preemption and a lost node."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil
import pytest
from sqlalchemy import select

from neurfly.controller import Controller, ControllerSettings
from neurfly.core.scheduling.snapshot import Node
from neurfly.core.states import StopRequest
from neurfly.executors.protocol import LaunchSpec
from neurfly.executors.ray import RayExecutor, RayExecutorError
from neurfly.service import find_search, load_cluster, load_spec, submit_search
from neurfly.store import Attempt, Search, Store, Trial
from support import kill_hard, run_cli, start_cli, wait_for

pytestmark = pytest.mark.slow

CONFIGURED = (Node("head", "head-pool", 2), Node("worker", "worker-pool", 2))


def _attempts(store: Store) -> list[Attempt]:
    with store.session() as session:
        return list(session.scalars(select(Attempt).order_by(Attempt.id)))


def _trials(store: Store) -> list[Trial]:
    with store.session() as session:
        return list(session.scalars(select(Trial).order_by(Trial.number)))


def _search(store: Store) -> Search:
    with store.session() as session:
        return session.scalars(select(Search)).one()


def _schedulable(executor: RayExecutor) -> dict[str, bool]:
    return {node.name: node.schedulable for node in executor.nodes(CONFIGURED)}


def test_search_uses_both_nodes(home: Path, store: Store, write_spec, two_node_cluster: Path, start_ray_node) -> None:
    start_ray_node("worker")
    spec = write_spec(budget={"max_trials": 8, "max_concurrent_trials": 4, "max_steps": 3}, fixed={"sleep_s": 0.2})

    result = run_cli(home, "run", str(spec), "--cluster", str(two_node_cluster), "--json")

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["search"]
    assert summary["state"] == "completed"
    assert summary["trials"] == {"completed": 8}
    attempts = _attempts(store)
    assert {a.node for a in attempts} == {"head", "worker"}
    assert {a.executor for a in attempts} == {"ray"}
    assert all(a.state == "completed" for a in attempts)
    assert all(a.worker_pid is None for a in attempts)
    assert all(t.state == "completed" for t in _trials(store))


def test_lost_node_resumes_on_head(home: Path, store: Store, write_spec, two_node_cluster: Path, start_ray_node) -> None:
    worker = start_ray_node("worker")
    spec = write_spec(budget={"max_trials": 4, "max_concurrent_trials": 4, "max_steps": 10}, fixed={"sleep_s": 0.3})
    process = start_cli(home, "run", str(spec), "--cluster", str(two_node_cluster), "--json")

    try:
        wait_for(lambda: any(a.node == "worker" and (a.end_step or 0) >= 2 for a in _attempts(store)), timeout=60)
        worker.kill_raylet()
        stdout, stderr = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)

    assert process.returncode == 0, stderr
    assert json.loads(stdout)["search"]["state"] == "completed", (stdout, stderr)
    trials = _trials(store)
    assert len(trials) == 4
    assert all(t.state == "completed" for t in trials)
    attempts = _attempts(store)
    lost = [a for a in attempts if a.node == "worker" and a.state != "completed"]
    assert max(a.end_step or 0 for a in lost) >= 2
    for attempt in lost:
        assert attempt.state == "failed"
        assert attempt.failure_kind == "infrastructure"
        assert "was lost" in attempt.reason
        resumed = [a for a in attempts if a.trial_id == attempt.trial_id and a.id > attempt.id]
        assert len(resumed) == 1
        assert resumed[0].node == "head"
        # Each step saves a checkpoint before its report, so the last reported step is the resume point.
        assert resumed[0].start_step == (attempt.end_step or 0)
        assert resumed[0].state == "completed"
        if resumed[0].start_step:
            assert resumed[0].checkpoint_in_id == attempt.checkpoint_out_id
    for trial in trials:
        own = [a for a in attempts if a.trial_id == trial.id]
        assert sum(a.state == "completed" for a in own) == 1
        for earlier, later in zip(own, own[1:]):
            assert earlier.ended_at <= later.started_at


def _trial_actors(head) -> list[psutil.Process]:
    head.node.remember_tree()
    found = []
    for pid in head.node.tree:
        try:
            process = psutil.Process(pid)
            if "TrialActor" in process.name() or "TrialActor" in " ".join(process.cmdline()):
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found


def test_killed_controller_leaves_no_actor(home: Path, store: Store, write_spec, two_node_cluster: Path, ray_head) -> None:
    spec = write_spec(budget={"max_trials": 2, "max_concurrent_trials": 2, "max_steps": 6}, fixed={"sleep_s": 0.5})
    process = start_cli(home, "run", str(spec), "--cluster", str(two_node_cluster), "--json")
    try:
        wait_for(lambda: any((a.end_step or 0) >= 1 for a in _attempts(store)), timeout=60)
        assert _trial_actors(ray_head)
    finally:
        kill_hard(process)

    wait_for(lambda: not _trial_actors(ray_head), timeout=30)
    result = run_cli(home, "run", str(spec), "--cluster", str(two_node_cluster), "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["search"]["trials"] == {"completed": 2}
    lost = [a for a in _attempts(store) if a.state == "lost"]
    assert lost
    assert all(a.failure_kind == "infrastructure" for a in lost)


def test_nodes_follow_ray_cluster(ray_head, start_ray_node, ray_driver) -> None:
    executor = RayExecutor(address=ray_head.address, node_refresh_s=0.2)
    try:
        assert _schedulable(executor) == {"head": True, "worker": False}

        worker = start_ray_node("worker")
        wait_for(lambda: _schedulable(executor)["worker"], timeout=30)
        worker.kill_raylet()
        wait_for(lambda: not _schedulable(executor)["worker"], timeout=30)

        assert _schedulable(executor)["head"]
    finally:
        executor.shutdown()


def test_launch_on_missing_node_raises(ray_head, ray_driver, tmp_path: Path) -> None:
    executor = RayExecutor(address=ray_head.address)
    launch = _launch(tmp_path, attempt_id=1, node="nowhere")
    try:
        with pytest.raises(RayExecutorError, match="neurfly_node_nowhere"):
            executor.launch(launch)
        assert executor.active() == set()
    finally:
        executor.shutdown()


def test_preempted_trial_resumes(home: Path, store: Store, write_spec, two_node_cluster: Path, ray_driver) -> None:
    cluster = load_cluster(two_node_cluster)
    spec, document, _ = load_spec(write_spec(budget={"max_trials": 2, "max_concurrent_trials": 2, "max_steps": 8},
                                             fixed={"sleep_s": 0.25}), cluster)
    search_id = submit_search(store, spec, document).search_id
    settings = ControllerSettings(checkpoint_root=str(home / "checkpoints"), stop_grace_s=20.0)
    controller = Controller(store, cluster, RayExecutor(**cluster.executor_options), settings=settings)
    controller.start()
    try:
        controller.run(until=lambda: any((a.end_step or 0) >= 2 for a in _attempts(store)))
        victim = next(a for a in _attempts(store) if (a.end_step or 0) >= 2)
        controller.preempt(victim.id, "test preemption")
        controller.run()
    finally:
        controller.stop(grace_s=5.0)

    assert find_search(store, search_id).state == "completed"
    attempts = _attempts(store)
    preempted = next(a for a in attempts if a.id == victim.id)
    assert preempted.state == "preempted"
    assert preempted.stop_requested == StopRequest.PREEMPT.value
    resumed = [a for a in attempts if a.trial_id == victim.trial_id and a.id > victim.id]
    assert [a.state for a in resumed] == ["completed"]
    assert resumed[0].start_step >= 2
    assert all(a.node == "head" for a in attempts)


def _launch(tmp_path: Path, attempt_id: int, node: str = "head", **fixed: object) -> LaunchSpec:
    return LaunchSpec(
        attempt_id=attempt_id, trial_id=attempt_id, search_id=1, trial_number=attempt_id, entrypoint="noop",
        params={"x": 0.5}, fixed={"sleep_s": 0.05, **fixed}, max_steps=4, decision_steps=(), objective="objective",
        metrics=(), data={}, seed=1, checkpoint_root=str(tmp_path / "checkpoints"), node=node, slots=(0,),
    )


def test_resource_samples_reported_once(ray_head, ray_driver, tmp_path: Path) -> None:
    executor = RayExecutor(address=ray_head.address, sample_interval_s=0.2)
    executor.nodes(CONFIGURED)
    samples = []
    try:
        executor.launch(_launch(tmp_path, 1, sleep_s=0.5))
        deadline = time.monotonic() + 60
        while executor.active() and time.monotonic() < deadline:
            executor.poll(0.1)
            samples.extend(executor.sample_resources())
    finally:
        executor.shutdown()

    assert samples
    assert {sample.attempt_id for sample in samples} == {1}
    assert all(sample.memory_bytes > 0 for sample in samples)
    assert len({sample.at for sample in samples}) == len(samples)
    assert executor.sample_resources() == []
