"""The ``SchedulingPolicy`` contract, run over every registered policy on seeded random snapshots."""

from __future__ import annotations

import random

import pytest

from neurfly.core.scheduling import (
    Node,
    PendingTrial,
    PolicySettings,
    Pool,
    Preempt,
    PriorityClass,
    Reject,
    Reservation,
    Reserve,
    RunningAttempt,
    SchedulingPolicy,
    SearchLimit,
    Snapshot,
    Start,
    Team,
    policies,
)
from neurfly.core.scheduling._validate import check_decisions

POLICY_NAMES = policies.names()
SEEDS = range(12)


def random_snapshot(seed: int, validate: bool = True) -> Snapshot:
    """Build a small cluster with running, yielding, reserved and pending work from ``seed``.

    With ``validate`` off the policy returns its decisions unchecked, so the
    test checks them itself and reports the first broken invariant.
    """
    rng = random.Random(seed)
    pools = (Pool("cpu-eu", "eu", "cpu", 1.0), Pool("cpu-us", "us", "cpu", 0.5), Pool("gpu-eu", "eu", "cuda", 3.0))
    nodes = tuple(Node(f"n{i}", pools[i % 3].name, rng.choice((2, 4, 8))) for i in range(6))
    classes = (PriorityClass("prod", 1000, preemptible=False), PriorityClass("high", 500), PriorityClass("low", 100))
    teams = tuple(
        Team(
            name,
            weight=rng.choice((0.0, 1.0, 2.0)),
            quota={p.name: rng.randint(0, 4) for p in pools},
            borrowing_limit={p.name: rng.randint(0, 4) for p in pools if rng.random() < 0.5},
            decayed_usage=rng.uniform(0, 1e5),
        )
        for name in ("a", "b", "c")
    )
    now = 10_000.0
    running = _random_running(rng, nodes, teams, classes, now)
    pending = _random_pending(rng, pools, teams, classes, now)
    hardware = {node.name: next(p.hardware for p in pools if p.name == node.pool) for node in nodes}
    reservations = _random_reservation(rng, running, pending, hardware)
    searches = tuple(SearchLimit(s, teams[s % 3].name, rng.randint(1, 6)) for s in range(6))
    return Snapshot(
        now=now,
        pools=pools,
        nodes=nodes,
        priority_classes=classes,
        teams=teams,
        running=tuple(running),
        pending=tuple(pending),
        searches=searches,
        reservations=reservations,
        settings=PolicySettings(min_runtime_s=60.0, validate=validate),
    )


def _random_running(rng, nodes, teams, classes, now):
    running = []
    free = {node.name: list(range(node.devices)) for node in nodes}
    for attempt_id in range(1, 13):
        node = rng.choice(nodes)
        devices = rng.choice((1, 1, 2))
        if len(free[node.name]) < devices:
            continue
        slots = tuple(free[node.name][:devices])
        del free[node.name][:devices]
        search = rng.randrange(6)
        running.append(
            RunningAttempt(
                attempt_id,
                attempt_id,
                search,
                teams[search % 3].name,
                rng.choice(classes).name,
                node.name,
                slots,
                started_at=now - rng.uniform(0, 600),
                progress_at_risk=rng.uniform(0, 50),
                yielding=rng.random() < 0.15,
            )
        )
    return running


def _random_pending(rng, pools, teams, classes, now):
    pending = []
    for trial_id in range(100, 120):
        search = rng.randrange(6)
        pool = rng.choice(pools)
        pending.append(
            PendingTrial(
                trial_id,
                search,
                teams[search % 3].name,
                rng.choice(classes).name,
                rng.choice((1, 1, 2, 4, 16)),
                pool.hardware,
                queued_at=now - rng.uniform(0, 3600),
                resumes=rng.random() < 0.2,
                allowed_regions=frozenset({pool.region}) if rng.random() < 0.2 else None,
            )
        )
    return pending


def _random_reservation(rng, running, pending, hardware_of_node):
    yielding = [a for a in running if a.yielding]
    if not yielding or rng.random() < 0.3:
        return ()
    attempt = yielding[0]
    hardware = hardware_of_node[attempt.node]
    trial = next((t for t in pending if t.devices == len(attempt.slots) and t.hardware == hardware and t.allowed_regions is None), None)
    if trial is None:
        return ()
    return (Reservation(trial.trial_id, attempt.node, attempt.slots, created_at=9_000.0),)


@pytest.fixture(params=POLICY_NAMES)
def policy(request) -> SchedulingPolicy:
    plugin = policies.get(request.param)
    assert issubclass(plugin, SchedulingPolicy)
    assert plugin.name == request.param
    return plugin()


def test_default_policy_is_registered():
    assert "default" in POLICY_NAMES


@pytest.mark.parametrize("seed", SEEDS)
def test_decisions_keep_invariants(policy, seed):
    snapshot = random_snapshot(seed, validate=False)

    decisions = policy.schedule(snapshot)

    assert all(isinstance(d, Start | Preempt | Reserve | Reject) for d in decisions)
    check_decisions(snapshot, decisions)


@pytest.mark.parametrize("seed", SEEDS)
def test_equal_snapshots_equal_decisions(policy, seed):
    first = policy.schedule(random_snapshot(seed, validate=False))
    second = policy.schedule(random_snapshot(seed, validate=False))

    assert first == second


@pytest.mark.parametrize("seed", SEEDS)
def test_rejected_trial_never_preempts(policy, seed):
    decisions = policy.schedule(random_snapshot(seed, validate=False))

    rejected = {d.trial_id for d in decisions if isinstance(d, Reject)}
    preemptors = {d.for_trial for d in decisions if isinstance(d, Preempt)}
    assert not rejected & preemptors
