"""The monitoring service in real searches: real workers, a real store, real HTTP servers."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from rich.console import Console
from sqlalchemy import select

from neurfly.cli.runner import drive
from neurfly.controller import Controller, ControllerSettings
from neurfly.controller.usage import UsageService
from neurfly.core.cluster import default_cluster
from neurfly.executors.local import LocalExecutor
from neurfly.monitoring.alerts import Alert
from neurfly.monitoring.records import AttemptFailure, Delivery, ResourceBucket
from neurfly.monitoring.service import MonitoringService
from neurfly.service import find_search, load_spec, submit_search
from neurfly.store import Attempt, Store, Trial
from support import run_cli, wait_for

pytestmark = pytest.mark.slow


def _alerts(store: Store) -> list[Alert]:
    with store.session() as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


def _submit(store: Store, spec_path: Path) -> int:
    spec, document, _ = load_spec(spec_path, default_cluster())
    return submit_search(store, spec, document).search_id


def _controller(store: Store, home: Path, monitoring: MonitoringService) -> Controller:
    settings = ControllerSettings(checkpoint_root=str(home / "checkpoints"))
    return Controller(store, default_cluster(), LocalExecutor(), settings=settings, services=[UsageService(), monitoring])


def _scrape(port: int) -> dict[str, float]:
    """Sum each sample name of the metrics page over its labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        name = name.split("{", 1)[0]
        totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def test_nan_loss_alerts_divergence_not_plateau(home: Path, store: Store, write_spec) -> None:
    spec = write_spec(
        entrypoint="monitoring.jobs.nan_after_three:train",
        budget={"max_trials": 1, "max_concurrent_trials": 1, "max_steps": 8},
        monitoring={"plateau": {"patience": 2}},
    )
    search_id = _submit(store, spec)

    drive(store, default_cluster(), [search_id], Console(quiet=True), live_display=False, checkpoint_root=str(home / "ck"))

    alerts = _alerts(store)
    assert [a.category for a in alerts] == ["divergence"]
    divergence = alerts[0]
    assert divergence.evidence["step"] == 4
    assert divergence.evidence["rule"] == "non_finite"
    assert (divergence.owner, divergence.team, divergence.severity) == ("team-a", "team-a", "warning")
    assert divergence.count == 1
    assert find_search(store, search_id).state == "completed"


def test_stop_diverged_prunes_trial(home: Path, store: Store, write_spec) -> None:
    spec = write_spec(
        space={"x": {"type": "float", "low": 0.6, "high": 1.0}},
        budget={"max_trials": 1, "max_concurrent_trials": 1, "max_steps": 200},
        fixed={"sleep_s": 0.05, "nan_if_above": 0.5},
        monitoring={"stop_diverged": True},
    )
    search_id = _submit(store, spec)

    drive(store, default_cluster(), [search_id], Console(quiet=True), live_display=False, checkpoint_root=str(home / "ck"))

    with store.session() as session:
        attempt = session.scalars(select(Attempt).where(Attempt.search_id == search_id)).one()
        trial = session.scalars(select(Trial).where(Trial.search_id == search_id)).one()
    assert (attempt.state, attempt.stop_requested) == ("pruned", "prune")
    assert attempt.end_step < 200, "the trial was stopped before its step budget"
    assert trial.state == "pruned"
    assert find_search(store, search_id).state == "completed"
    assert [a.category for a in _alerts(store)] == ["divergence"]


def test_killed_worker_alerts_platform(home: Path, store: Store, write_spec) -> None:
    spec = write_spec(budget={"max_trials": 2, "max_concurrent_trials": 2, "max_steps": 10}, fixed={"sleep_s": 0.2})
    search_id = _submit(store, spec)
    port = _free_port()
    monitoring = MonitoringService(metrics_port=port, sample_interval_s=0.2, bucket_s=0.5, check_interval_s=0.2)
    controller = _controller(store, home, monitoring)
    controller.start()
    seen: dict[str, float] = {}

    def kill_one_worker() -> None:
        if "after_kill" in seen:
            return
        with store.session() as session:
            running = session.scalars(select(Attempt).where(Attempt.worker_pid.is_not(None), Attempt.end_step >= 3,
                                                            Attempt.ended_at.is_(None))).all()
        if len(running) < 2:
            return
        seen["before_kill"] = _scrape(port).get("neurfly_trials_running", 0.0)
        os.kill(running[0].worker_pid, signal.SIGKILL)
        wait_for(lambda: _gone(running[0].worker_pid), timeout=10, interval=0.02)
        seen["after_kill"] = _scrape(port).get("neurfly_trials_running", 0.0)
        seen["controller_attempts"] = len(controller.attempts)

    try:
        controller.run(until=lambda: search_id not in controller.searches, on_tick=kill_one_worker)
        seen["finished"] = _scrape(port).get("neurfly_trials_running", 0.0)
        page = _scrape(port)
    finally:
        controller.stop()

    assert seen["before_kill"] == 2
    assert seen["controller_attempts"] == 2, "the controller has not seen the exit yet"
    assert seen["after_kill"] == 1
    assert seen["finished"] == 0
    assert page["neurfly_attempt_failures_total"] == 1
    assert page["neurfly_scheduling_latency_seconds"] > 0

    with store.session() as session:
        failure = session.scalars(select(AttemptFailure)).one()
        buckets = session.scalars(select(ResourceBucket)).all()
    assert (failure.category, failure.owner, failure.team) == ("infrastructure", "platform", "team-a")
    assert failure.cause == "killed_by_SIGKILL"
    assert failure.evidence["reason"] == "worker process killed by signal 9"
    alerts = [a for a in _alerts(store) if a.category == "failure"]
    assert [(a.owner, a.team, a.search_id) for a in alerts] == [("platform", "team-a", search_id)]
    assert alerts[0].evidence["failure_category"] == "infrastructure"
    assert not [a for a in _alerts(store) if a.owner == "team-a" and a.category == "failure"]
    assert buckets, "resource samples were stored"
    assert all(b.samples >= 1 and b.memory_bytes_max > 0 for b in buckets)
    assert any(b.device_utilisation_mean is not None for b in buckets)
    assert len(buckets) < 60, "samples are folded into buckets"


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_webhook_delivered_once_across_restart(home: Path, store: Store, write_spec, webhook, write_responsibilities) -> None:
    webhook.failures = 2
    responsibilities = write_responsibilities({
        "alerting": {"retry_initial_s": 0.1, "retry_max_s": 0.2},
        "notifiers": {"hook": {"type": "webhook", "url": webhook.url}},
        "parties": {"team-a": {"routes": [{"notifier": "hook"}]}},
    })
    spec = write_spec(
        space={"x": {"type": "float", "low": 0.6, "high": 1.0}},
        budget={"max_trials": 1, "max_concurrent_trials": 1, "max_steps": 3},
        fixed={"sleep_s": 0.05, "nan_if_above": 0.5},
    )
    search_id = _submit(store, spec)

    first = _controller(store, home, MonitoringService(responsibilities=responsibilities, check_interval_s=0.1))
    first.start()
    try:
        first.run(until=lambda: search_id not in first.searches)
        deadline = time.monotonic() + 30
        while not webhook.accepted and time.monotonic() < deadline:
            first.tick()
    finally:
        first.stop()

    second = _controller(store, home, MonitoringService(responsibilities=responsibilities, check_interval_s=0.1))
    second.start()
    try:
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            second.tick()
    finally:
        second.stop()

    with store.session() as session:
        deliveries = session.scalars(select(Delivery)).all()
    assert len(webhook.attempts) == 3
    assert len(webhook.accepted) == 1
    assert webhook.accepted[0]["category"] == "divergence"
    assert [(d.party, d.state, d.tries) for d in deliveries] == [("team-a", "sent", 3)]


def test_failures_classified_with_owners(home: Path, store: Store, write_spec, tmp_path: Path, write_responsibilities) -> None:
    (tmp_path / "broken_job.py").write_text(textwrap.dedent("""
        from neurfly import trial
        from neurfly.errors import DataError

        def train(params):
            if params["x"] < 0.5:
                raise DataError("column 'label' is missing from the training data")
            raise RuntimeError("shape mismatch in layer 2")
    """))
    spec = write_spec(
        entrypoint="broken_job:train",
        space={"x": {"type": "categorical", "choices": [0.2, 0.8]}},
        strategy={"name": "grid"},
        budget={"max_trials": 2, "max_concurrent_trials": 2, "max_steps": 1},
        data={"dataset": "sklearn:digits"},
    )
    responsibilities = write_responsibilities({"datasets": {"sklearn:digits": "data-eng"}})
    env_home = home

    result = run_cli(env_home, "run", str(spec), "--json", "--responsibilities", str(responsibilities), extra_path=tmp_path)
    listed = run_cli(env_home, "failures", "probe", "--json")

    assert result.returncode == 1, "a search whose trials all failed ends failed"
    assert listed.returncode == 0, listed.stderr
    rows = {row["category"]: row for row in json.loads(listed.stdout)}
    assert (rows["data"]["owner"], rows["data"]["cause"]) == ("data-eng", "data_error")
    assert rows["data"]["evidence"]["dataset"] == "sklearn:digits"
    assert (rows["user_code"]["owner"], rows["user_code"]["cause"]) == ("team-a", "exception:RuntimeError")
    owners = {a.evidence["failure_category"]: a.owner for a in _alerts(store) if a.category == "failure"}
    assert owners == {"data": "data-eng", "user_code": "team-a"}
