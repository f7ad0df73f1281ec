"""The baseline policies: fifo, priority and fair-share, on hand-built snapshots."""

from __future__ import annotations

import dataclasses
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
    SearchLimit,
    Snapshot,
    Start,
    Team,
    policies,
)
from neurfly.core.scheduling.baselines import FairSharePolicy, FifoPolicy, PriorityPolicy

BASELINES = [FifoPolicy, PriorityPolicy, FairSharePolicy]
CLASSES = (
    PriorityClass("production", 1000, preemptible=False),
    PriorityClass("search", 100),
    PriorityClass("best-effort", 0),
)
POOLS = (Pool("eu-gpu", "eu", "gpu"), Pool("us-gpu", "us", "gpu"), Pool("eu-cpu", "eu", "cpu"))


def trial(trial_id: int, devices: int = 1, team: str = "a", priority: str = "search", **fields) -> PendingTrial:
    values = {"search_id": trial_id, "hardware": "gpu", "queued_at": float(trial_id)} | fields
    return PendingTrial(trial_id=trial_id, team=team, priority=priority, devices=devices, **values)


def running(attempt_id: int, node: str, slots: tuple[int, ...], team: str = "a", **fields) -> RunningAttempt:
    values = {"trial_id": 100 + attempt_id, "search_id": 100 + attempt_id, "priority": "search"} | fields
    return RunningAttempt(attempt_id=attempt_id, team=team, node=node, slots=slots, started_at=0.0, **values)


def snapshot(*pending: PendingTrial, nodes: tuple[Node, ...] | None = None, **fields) -> Snapshot:
    nodes = nodes or (Node("e1", "eu-gpu", 4), Node("e2", "eu-gpu", 2), Node("u1", "us-gpu", 8), Node("c1", "eu-cpu", 4))
    values = {"now": 1000.0, "pools": POOLS, "nodes": nodes, "priority_classes": CLASSES, "pending": pending} | fields
    return Snapshot(**values)


def starts(decisions) -> dict[int, tuple[str, tuple[int, ...]]]:
    return {d.trial_id: (d.node, d.slots) for d in decisions if isinstance(d, Start)}


def test_registered_under_entry_points():
    assert policies.get("fifo") is FifoPolicy
    assert policies.get("priority") is PriorityPolicy
    assert policies.get("fair-share") is FairSharePolicy


@pytest.mark.parametrize("policy", BASELINES)
def test_gang_on_one_node_best_fit(policy):
    decisions = policy().schedule(snapshot(trial(1, devices=2), trial(2, devices=3)))

    assert starts(decisions) == {1: ("e2", (0, 1)), 2: ("e1", (0, 1, 2))}


@pytest.mark.parametrize("policy", BASELINES)
def test_hardware_regions_and_pools_respected(policy):
    pending = (
        trial(1, hardware="cpu"),
        trial(2, devices=3, allowed_regions=frozenset({"us"})),
        trial(3, allowed_pools=frozenset({"eu-gpu"})),
    )

    placed = starts(policy().schedule(snapshot(*pending)))

    assert placed[1][0] == "c1"
    assert placed[2][0] == "u1"
    assert placed[3][0] in {"e1", "e2"}


@pytest.mark.parametrize("policy", BASELINES)
def test_held_reserved_and_unschedulable_slots_avoided(policy):
    nodes = (Node("e1", "eu-gpu", 4), Node("e2", "eu-gpu", 2, schedulable=False))
    state = snapshot(
        trial(1, devices=1),
        trial(2, devices=1),
        trial(9, devices=4),
        nodes=nodes,
        running=(running(1, "e1", (0,), yielding=True),),
        reservations=(Reservation(9, "e1", (1, 2), 0.0),),
    )

    placed = starts(policy().schedule(state))

    assert placed == {1: ("e1", (3,))}


@pytest.mark.parametrize("policy", BASELINES)
def test_reserved_slot_still_running_avoided(policy):
    nodes = (Node("e1", "eu-gpu", 4),)
    state = snapshot(
        trial(9, devices=2),
        nodes=nodes,
        running=(running(1, "e1", (0,), yielding=True),),
        reservations=(Reservation(9, "e1", (0, 1), 0.0),),
    )

    assert starts(policy().schedule(state)) == {9: ("e1", (1, 2))}


@pytest.mark.parametrize("policy", BASELINES)
def test_stale_reservation_ignored(policy):
    nodes = (Node("e1", "eu-gpu", 2),)
    state = snapshot(trial(1, devices=2), nodes=nodes, reservations=(Reservation(9, "e1", (0, 1), 0.0),))

    assert starts(policy().schedule(state)) == {1: ("e1", (0, 1))}


@pytest.mark.parametrize("policy", BASELINES)
def test_reservation_used_by_its_trial(policy):
    nodes = (Node("e1", "eu-gpu", 4),)
    state = snapshot(trial(9, devices=3), nodes=nodes, reservations=(Reservation(9, "e1", (1, 2), 0.0),))

    assert starts(policy().schedule(state)) == {9: ("e1", (0, 1, 2))}


@pytest.mark.parametrize("policy", BASELINES)
def test_oversized_rejected_never_preempts(policy):
    state = snapshot(trial(1, devices=16), running=(running(1, "u1", tuple(range(8))),))

    decisions = policy().schedule(state)

    assert [type(d) for d in decisions] == [Reject]
    assert "largest eligible node, u1, has 8" in decisions[0].reason


@pytest.mark.parametrize("policy", BASELINES)
def test_team_cap_respected(policy):
    teams = (Team("a", quota={"eu-gpu": 1, "us-gpu": 0}, borrowing_limit={"eu-gpu": 1, "us-gpu": 0}),)
    state = snapshot(trial(1), trial(2), trial(3), teams=teams)

    placed = starts(policy().schedule(state))

    assert len(placed) == 2
    assert all(node.startswith("e") for node, _ in placed.values())


@pytest.mark.parametrize("policy", BASELINES)
def test_cap_below_request_rejected(policy):
    teams = (Team("a", quota={"eu-gpu": 1, "us-gpu": 1}, borrowing_limit={"eu-gpu": 0, "us-gpu": 0}),)

    decisions = policy().schedule(snapshot(trial(1, devices=2), teams=teams))

    assert isinstance(decisions[0], Reject)
    assert "quota plus borrowing limit" in decisions[0].reason


@pytest.mark.parametrize("policy", BASELINES)
def test_search_limit_respected(policy):
    pending = (trial(1, search_id=5), trial(2, search_id=5), trial(3, search_id=5))
    state = snapshot(*pending, running=(running(1, "e1", (0,), search_id=5),), searches=(SearchLimit(5, "a", 2),))

    assert list(starts(policy().schedule(state))) == [1]


@pytest.mark.parametrize("policy", BASELINES)
def test_decisions_deterministic_under_shuffle(policy):
    pending = [trial(i, devices=1 + i % 3, team="ab"[i % 2], priority=("search", "production")[i % 2]) for i in range(12)]
    shuffled = pending[:]
    random.Random(4).shuffle(shuffled)
    teams = (Team("a", decayed_usage=10.0), Team("b", decayed_usage=5.0))

    first = policy().schedule(snapshot(*pending, teams=teams))
    second = policy().schedule(snapshot(*shuffled, teams=teams))

    assert first == second
    assert not any(isinstance(d, Preempt | Reserve) for d in first)


@pytest.mark.parametrize("policy", BASELINES)
def test_validate_mode_passes(policy):
    state = snapshot(
        trial(1, devices=2),
        trial(2, devices=8),
        trial(3, devices=32),
        running=(running(1, "e1", (0, 1)),),
        settings=PolicySettings(validate=True),
    )

    decisions = policy().schedule(state)

    assert len(starts(decisions)) == 2


def test_fifo_blocks_behind_head():
    state = snapshot(trial(1, devices=8), trial(2, devices=1), running=(running(1, "u1", (0,)),))

    assert FifoPolicy().schedule(state) == []


def test_fifo_skips_head_held_by_search_limit():
    state = snapshot(
        trial(1, search_id=5),
        trial(2),
        running=(running(1, "e1", (0,), search_id=5),),
        searches=(SearchLimit(5, "a", 1),),
    )

    assert list(starts(FifoPolicy().schedule(state))) == [2]


def test_fifo_rejects_behind_blocked_head():
    state = snapshot(trial(1, devices=8), trial(2, devices=64), running=(running(1, "u1", (0,)),))

    decisions = FifoPolicy().schedule(state)

    assert [(type(d), d.trial_id) for d in decisions] == [(Reject, 2)]


def test_priority_serves_higher_class_first():
    nodes = (Node("e1", "eu-gpu", 1),)
    state = snapshot(trial(1, priority="best-effort"), trial(2, priority="production"), nodes=nodes)

    assert list(starts(PriorityPolicy().schedule(state))) == [2]


def test_priority_lets_smaller_fit_around():
    state = snapshot(
        trial(1, devices=8, priority="production"),
        trial(2, priority="best-effort"),
        running=(running(1, "u1", (0,)),),
    )

    assert list(starts(PriorityPolicy().schedule(state))) == [2]


def test_fair_share_serves_least_usage_per_weight():
    nodes = (Node("e1", "eu-gpu", 1),)
    teams = (Team("a", weight=1.0, decayed_usage=100.0), Team("b", weight=4.0, decayed_usage=200.0))
    state = snapshot(trial(1, team="a"), trial(2, team="b"), nodes=nodes, teams=teams)

    assert list(starts(FairSharePolicy().schedule(state))) == [2]


def test_fair_share_spreads_one_call():
    nodes = (Node("e1", "eu-gpu", 4),)
    teams = (Team("a", decayed_usage=0.0), Team("b", decayed_usage=1000.0))
    pending = [trial(i, team="a") for i in range(1, 5)] + [trial(i, team="b") for i in range(5, 9)]

    placed = starts(FairSharePolicy().schedule(snapshot(*pending, nodes=nodes, teams=teams)))

    assert sorted(placed) == [1, 2, 3, 5]


def test_fair_share_weight_zero_last():
    nodes = (Node("e1", "eu-gpu", 1),)
    teams = (Team("a", weight=0.0), Team("b", weight=1.0, decayed_usage=1e9))
    state = snapshot(trial(1, team="a"), trial(2, team="b"), nodes=nodes, teams=teams)

    assert list(starts(FairSharePolicy().schedule(state))) == [2]


def test_cluster_index_reused_only_for_same_tuples():
    nodes = (Node("e1", "eu-gpu", 1),)
    first = snapshot(trial(1), nodes=nodes)
    grown = dataclasses.replace(first, nodes=(Node("e1", "eu-gpu", 1), Node("e9", "eu-gpu", 2)))

    assert starts(FifoPolicy().schedule(first)) == {1: ("e1", (0,))}
    assert starts(FifoPolicy().schedule(dataclasses.replace(grown, pending=(trial(1, devices=2),)))) == {
        1: ("e9", (0, 1))
    }


@pytest.mark.parametrize("policy", BASELINES)
def test_reserved_trial_starts_on_full_cluster(policy):
    nodes = (Node("e1", "eu-gpu", 2),)
    reserved = trial(9, devices=2, queued_at=0.0)
    state = snapshot(trial(1), reserved, nodes=nodes, reservations=(Reservation(9, "e1", (0, 1), 0.0),))

    assert starts(policy().schedule(state)) == {9: ("e1", (0, 1))}
