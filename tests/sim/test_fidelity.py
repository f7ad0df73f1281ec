"""Fidelity: the simulator and the live controller make the same decisions on the same trace.

A small trace runs twice under the default policy: once in the simulator,
in trace seconds, and once through the live controller with the local
executor. In the live run each trace second lasts ``SCALE`` wall-clock
seconds, and each job is a one-trial search of the no-op workload that
runs one step per trace second and checkpoints every step. Every time-valued setting
(minimum run time, fair-share horizon, starvation wait, usage half-life)
is scaled the same way, so both runs give the policy snapshots that
differ only in units. Both runs record every non-empty list of decisions,
and the test compares them in order, with trial and attempt ids replaced
by job names.

The trace keeps three trace seconds between events, so that process
start-up and reporting delays of the live run cannot reorder them. It
covers backfill onto free devices, a reclaim preemption with its
reservation, a production job preempting a search trial, the resumption of
a preempted trial, and a fair-share choice between two teams for devices
freed at the same moment.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from neurfly.controller import Controller, ControllerSettings
from neurfly.core.cluster import ClusterConfig, parse_cluster
from neurfly.core.scheduling import Decision, Preempt, Reject, Reserve, Snapshot, Start
from neurfly.core.scheduling.default import DefaultPolicy
from neurfly.core.scheduling.snapshot import PolicySettings
from neurfly.executors.local import LocalExecutor
from neurfly.service import load_spec, submit_search
from neurfly.sim.engine import SimulationConfig, Simulator
from neurfly.sim.results import JobOutcome
from neurfly.sim.trace import TraceJob
from neurfly.store import Search, Store, Trial

pytestmark = pytest.mark.slow

# Wall-clock seconds per trace second in the live run.
SCALE = 0.5
MIN_RUNTIME_S = 2.0

CLUSTER = parse_cluster(
    {
        "pools": [
            {
                "name": "p",
                "region": "eu",
                "hardware": "cpu",
                "nodes": [{"name": "n1", "devices": 2}, {"name": "n2", "devices": 2}],
            }
        ],
        "teams": [{"name": "team-a", "quota": {"p": 2}}, {"name": "team-b", "quota": {"p": 2}}],
    }
)

# (job, arrival, team, devices, duration, priority); times in trace seconds.
TRACE = [
    ("j1", 0, "team-a", 2, 46, "search"),  # runs on n1 throughout, so the jobs below compete for n2
    ("j2", 3, "team-a", 1, 30, "search"),  # team-a's third device: borrowed
    ("j3", 6, "team-b", 1, 12, "search"),  # fills n2
    ("j4", 9, "team-b", 1, 12, "search"),  # within team-b's quota: reclaims j2's borrowed device
    ("j5", 25, "team-b", 2, 8, "production"),  # preempts j2 again, by priority
    ("j7", 28, "team-a", 1, 6, "search"),  # waits behind j2, of the same team
    ("j8", 31, "team-b", 1, 6, "search"),  # team-b has used less, so it starts before team-a's trials
]

EXPECTED = [
    ("start", "j1", "n1", (0, 1)),
    ("start", "j2", "n2", (0,)),
    ("start", "j3", "n2", (1,)),
    ("preempt", "j2", "for", "j4"),
    ("reserve", "j4", "n2", (0,)),
    ("start", "j4", "n2", (0,)),
    ("start", "j2", "n2", (1,)),
    ("preempt", "j2", "for", "j5"),
    ("reserve", "j5", "n2", (0, 1)),
    ("start", "j5", "n2", (0, 1)),
    ("start", "j8", "n2", (0,)),
    ("start", "j2", "n2", (1,)),
    ("start", "j7", "n2", (0,)),
]


class RecordingPolicy(DefaultPolicy):
    """Default policy that records each non-empty list of decisions, naming preempted attempts by trial id."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, list[tuple]]] = []

    def schedule(self, snapshot: Snapshot) -> list[Decision]:
        decisions = super().schedule(snapshot)
        if decisions:
            trial_of_attempt = {attempt.attempt_id: attempt.trial_id for attempt in snapshot.running}
            self.calls.append((snapshot.now, [_describe(d, trial_of_attempt) for d in decisions]))
        return decisions


def _describe(decision: Decision, trial_of_attempt: dict[int, int]) -> tuple:
    if isinstance(decision, Start):
        return ("start", decision.trial_id, decision.node, tuple(decision.slots))
    if isinstance(decision, Reserve):
        return ("reserve", decision.trial_id, decision.node, tuple(decision.slots))
    if isinstance(decision, Preempt):
        return ("preempt", trial_of_attempt[decision.attempt_id], "for", decision.for_trial)
    if isinstance(decision, Reject):
        return ("reject", decision.trial_id)
    raise AssertionError(f"unexpected decision {decision!r}")


def _named(calls: list[tuple[float, list[tuple]]], job_of_trial: dict[int, str]) -> list[tuple]:
    named = []
    for _, decisions in calls:
        for kind, *fields in decisions:
            if kind == "preempt":
                victim, _, preemptor = fields
                named.append((kind, job_of_trial[victim], "for", job_of_trial[preemptor]))
            else:
                named.append((kind, job_of_trial[fields[0]], *fields[1:]))
    return named


def _settings(scale: float) -> PolicySettings:
    defaults = PolicySettings()
    return PolicySettings(
        min_runtime_s=MIN_RUNTIME_S * scale,
        validate=True,
        fair_share_horizon_s=defaults.fair_share_horizon_s * scale,
        max_preemptors_per_call=defaults.max_preemptors_per_call,
        starvation_wait_s=defaults.starvation_wait_s * scale,
    )


def simulate() -> list[tuple]:
    jobs = [
        TraceJob(arrival=arrival, team=team, devices=devices, duration=duration, priority=priority, hardware="cpu", job_id=name)
        for name, arrival, team, devices, duration, priority in TRACE
    ]
    policy = RecordingPolicy()
    config = SimulationConfig(
        checkpoint_interval_s=1.0, grace_period_s=1.0, report_interval_s=1.0, min_runtime_s=MIN_RUNTIME_S, validate=True
    )
    simulator = Simulator(CLUSTER, policy, config)
    assert simulator._settings == _settings(1.0), "the simulator's policy settings changed; update _settings"
    result = simulator.run(jobs)
    assert all(record.outcome is JobOutcome.COMPLETED for record in result.jobs)
    return _named(policy.calls, {record.trial_id: record.job_id for record in result.jobs})


def run_live(home: Path, store: Store, write_spec) -> list[tuple]:
    cluster = ClusterConfig.model_validate(
        {**CLUSTER.model_dump(), "usage_half_life_s": CLUSTER.usage_half_life_s * SCALE}
    )
    specs = {}
    for name, _, team, devices, duration, priority in TRACE:
        path = write_spec(
            f"{name}.yaml",
            name=name,
            team=team,
            priority=priority,
            resources={"devices": devices},
            space={"x": {"type": "categorical", "choices": [0.0]}},
            strategy={"name": "grid"},
            budget={"max_trials": 1, "max_concurrent_trials": 1, "max_steps": duration},
            fixed={"sleep_s": SCALE, "checkpoint_every": 1},
        )
        specs[name] = load_spec(path, cluster)

    policy = RecordingPolicy()
    settings = ControllerSettings(
        tick_s=0.02, refresh_s=0.02, stop_grace_s=30.0, checkpoint_root=str(home / "checkpoints"), policy=_settings(SCALE)
    )
    controller = Controller(store, cluster, LocalExecutor(spares=3), policy=policy, settings=settings)
    controller.start()
    try:
        _warm_up(controller, store, write_spec, cluster)
        policy.calls.clear()
        waiting = sorted(TRACE, key=lambda row: row[1])
        started = time.monotonic()

        def admit() -> None:
            while waiting and time.monotonic() - started >= waiting[0][1] * SCALE:
                name = waiting.pop(0)[0]
                spec, document, _ = specs[name]
                submit_search(store, spec, document)

        controller.run(until=lambda: not waiting and not controller.searches, on_tick=admit)
    finally:
        controller.stop()

    with store.session() as session:
        rows = session.execute(select(Trial.id, Search.name, Trial.state).join(Search, Search.id == Trial.search_id))
        job_of_trial = {}
        for trial_id, name, state in rows:
            assert state == "completed", f"trial of {name} ended {state}"
            job_of_trial[trial_id] = name
    return _named(policy.calls, job_of_trial)


def _warm_up(controller: Controller, store: Store, write_spec, cluster: ClusterConfig) -> None:
    """Run one short trial first, so that the executor's processes are ready when the trace starts."""
    path = write_spec("warm-up.yaml", name="warm-up", budget={"max_trials": 1, "max_concurrent_trials": 1, "max_steps": 1})
    spec, document, _ = load_spec(path, cluster)
    submit_search(store, spec, document)
    policy = controller.policy
    controller.run(until=lambda: bool(policy.calls) and not controller.searches)
    time.sleep(1.0)


def test_simulator_makes_expected_decisions() -> None:
    assert simulate() == EXPECTED


def test_live_controller_matches_simulator(home: Path, store: Store, write_spec) -> None:
    simulated = simulate()
    live = run_live(home, store, write_spec)
    assert live == simulated, "\n".join(
        f"{i:2d} sim={s!s:40} live={l!s}"
        for i, (s, l) in enumerate(zip(simulated + [None] * len(live), live + [None] * len(simulated)))
        if s is not None or l is not None
    )
