"""Scenario tests of the default policy, each run with validation mode on."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest

from neurfly.core.scheduling import (
    Pool,
    Preempt,
    Reject,
    Reservation,
    Reserve,
    RunningAttempt,
    SearchLimit,
    Start,
    Team,
)
from neurfly.core.scheduling.default import DefaultPolicy


def _starts(decisions) -> dict[int, Start]:
    return {d.trial_id: d for d in decisions if isinstance(d, Start)}


def _preempts(decisions) -> list[Preempt]:
    return [d for d in decisions if isinstance(d, Preempt)]


def _reserves(decisions) -> dict[int, Reserve]:
    return {d.trial_id: d for d in decisions if isinstance(d, Reserve)}


def _attempt(attempt_id, trial_id, team, node, slots, started_at, priority="search", search_id=None, **fields):
    return RunningAttempt(
        attempt_id=attempt_id,
        trial_id=trial_id,
        search_id=search_id if search_id is not None else trial_id,
        team=team,
        priority=priority,
        node=node,
        slots=tuple(slots),
        started_at=started_at,
        **fields,
    )


# -- the head of the queue ---------------------------------------------------------------------


def test_never_fitting_head_does_not_block(cluster):
    model = cluster(
        nodes=[("n1", "p", 8)],
        teams=[Team("a", quota={"p": 3}, borrowing_limit={"p": 0}), Team("b")],
    )
    model.running[90] = _attempt(90, 90, "b", "n1", range(3, 8), started_at=0.0, priority="best-effort")
    model.next_attempt_id = 100
    model.submit(1, "a", devices=4, priority="interactive", queued_at=0.0)
    model.submit(2, "a", devices=3, priority="interactive", queued_at=1.0)

    decisions = model.step()

    rejects = [d for d in decisions if isinstance(d, Reject)]
    assert [r.trial_id for r in rejects] == [1]
    assert "4" in rejects[0].reason
    assert "n1" in rejects[0].reason
    assert 2 in _starts(decisions)
    assert _preempts(decisions) == []
    for _ in range(5):
        model.advance(120.0)
        later = model.step()
        assert _preempts(later) == []
        assert _reserves(later) == {}


def test_too_large_for_any_node_is_rejected(cluster):
    model = cluster(nodes=[("n1", "p", 4), ("n2", "p", 2)])
    model.submit(1, devices=5)
    model.submit(2, devices=4)

    decisions = model.step()

    reject = next(d for d in decisions if isinstance(d, Reject))
    assert reject.trial_id == 1
    assert "5 cpu device(s)" in reject.reason
    assert "largest eligible node, n1" in reject.reason
    assert _starts(decisions)[2].node == "n1"


def test_head_that_waits_lets_smaller_trials_run(cluster):
    model = cluster(nodes=[("n1", "p", 4)])
    model.running[50] = _attempt(50, 50, "b", "n1", [0], started_at=990.0, priority="production")
    model.next_attempt_id = 100
    model.submit(1, devices=4, queued_at=0.0)
    model.submit(2, devices=2, queued_at=1.0)

    decisions = model.step()

    assert 1 not in _starts(decisions)
    assert _starts(decisions)[2].slots == (1, 2)
    assert _preempts(decisions) == []
    assert _reserves(decisions) == {}


def _starving_model(cluster, **settings):
    model = cluster(nodes=[("n1", "p", 4), ("n2", "p", 2)], teams=[Team("a"), Team("b")], **settings)
    for slot in range(3):
        model.running[slot + 1] = _attempt(slot + 1, slot + 1, "b", "n1", [slot], started_at=0.0, priority="production")
    model.running[4] = _attempt(4, 4, "b", "n2", [0, 1], started_at=0.0, priority="production")
    model.next_attempt_id = 10
    model.submit(20, "a", devices=4, queued_at=model.now - 4000.0)
    for trial_id in range(21, 26):
        model.submit(trial_id, "a", devices=1, queued_at=model.now - 10.0)
    return model


def test_starving_gang_drains_a_node(cluster):
    model = _starving_model(cluster, starvation_wait_s=3600.0)

    first = model.step()
    assert _starts(first) == {}
    assert _reserves(first)[20].slots == (3,)
    assert _preempts(first) == []

    model.end(1)
    model.end(4)
    second = model.step()
    assert _reserves(second)[20].slots == (0, 3)
    assert {t: s.node for t, s in _starts(second).items()} == {21: "n2", 22: "n2"}

    model.end(2)
    model.end(3)
    third = model.step()
    assert _starts(third)[20].slots == (0, 1, 2, 3)
    assert sum(len(_preempts(d)) for d in model.history) == 0


@pytest.mark.parametrize("settings", [{"starvation_wait_s": None}, {"starvation_wait_s": 7200.0}])
def test_young_gang_lets_others_backfill(cluster, settings):
    model = _starving_model(cluster, **settings)

    decisions = model.step()

    assert _reserves(decisions) == {}
    assert _starts(decisions)[21].slots == (3,)


# -- preemption and reservations ---------------------------------------------------------------


def test_victims_yielding_at_different_times(cluster):
    model = cluster(nodes=[("n1", "p", 4), ("n2", "p", 1)], teams=[Team("a"), Team("b"), Team("c")])
    model.running[1] = _attempt(1, 11, "b", "n1", [0, 1], started_at=0.0, priority="best-effort", search_id=7)
    model.running[2] = _attempt(2, 12, "b", "n1", [2, 3], started_at=10.0, priority="best-effort", search_id=7)
    model.running[3] = _attempt(3, 13, "c", "n2", [0], started_at=0.0, priority="production")
    model.trials.update({11: model.submit(11, "b", 2, "best-effort", 7), 12: model.submit(12, "b", 2, "best-effort", 7)})
    del model.pending[11], model.pending[12]
    model.next_attempt_id = 10
    model.submit(20, "a", devices=4, priority="interactive")
    model.submit(21, "b", devices=2, priority="best-effort", search_id=7)
    model.submit(22, "c", devices=1, priority="best-effort")

    first = model.step()

    assert sorted(p.attempt_id for p in _preempts(first)) == [1, 2]
    assert all(p.for_trial == 20 for p in _preempts(first))
    assert _reserves(first)[20].node == "n1"
    assert _reserves(first)[20].slots == (0, 1, 2, 3)
    assert _starts(first) == {}

    model.advance(5.0)
    model.end(1, requeue=True)
    second = model.step()
    assert _starts(second) == {}
    assert _preempts(second) == []
    assert 11 in model.pending

    model.advance(5.0)
    model.end(2, requeue=True)
    third = model.step()
    assert _starts(third)[20].node == "n1"
    assert _starts(third)[20].slots == (0, 1, 2, 3)
    assert set(_starts(third)) == {20}

    for _ in range(5):
        model.advance(120.0)
        assert _preempts(model.step()) == []
    assert sum(len(_preempts(d)) for d in model.history) == 2


def test_newest_victim_then_resume_first(cluster):
    model = cluster(nodes=[("n1", "p", 2)], teams=[Team("a"), Team("b")])
    model.submit(1, "a", search_id=1)
    model.step()
    model.advance(100.0)
    model.submit(2, "a", search_id=1)
    model.submit(3, "a", search_id=1)
    model.step()
    assert model.attempt_of(1) is not None
    assert model.attempt_of(2) is not None
    assert 3 in model.pending

    model.advance(100.0)
    model.submit(4, "b", priority="interactive", search_id=2)
    decisions = model.step()
    victim = model.attempt_of(2)
    assert [p.attempt_id for p in _preempts(decisions)] == [victim.attempt_id]
    assert _reserves(decisions)[4].slots == victim.slots

    model.advance(10.0)
    model.end_yielding()
    assert _starts(model.step()).keys() == {4}

    model.advance(300.0)
    model.end(model.attempt_of(4).attempt_id)
    restarted = model.step()
    assert set(_starts(restarted)) == {2}
    assert 3 in model.pending


def test_min_runtime_protects_young_attempts(cluster):
    model = cluster(nodes=[("n1", "p", 1)], teams=[Team("a"), Team("b")], min_runtime_s=60.0)
    model.running[1] = _attempt(1, 1, "a", "n1", [0], started_at=model.now - 30.0, priority="best-effort")
    model.next_attempt_id = 10
    model.submit(5, "b", priority="interactive")

    assert _preempts(model.step()) == []

    model.advance(29.0)
    assert _preempts(model.step()) == []

    model.advance(1.0)
    decisions = model.step()
    assert [p.attempt_id for p in _preempts(decisions)] == [1]
    assert _reserves(decisions)[5].slots == (0,)


@pytest.mark.parametrize(
    ("victim_priority", "preemptor_priority", "expected"),
    [
        ("best-effort", "search", True),
        ("search", "search", False),
        ("interactive", "search", False),
        ("production", "production", False),
        ("search", "production", True),
    ],
)
def test_priority_rule_for_preemption(cluster, victim_priority, preemptor_priority, expected):
    model = cluster(nodes=[("n1", "p", 1)], teams=[Team("a"), Team("b")])
    model.running[1] = _attempt(1, 1, "a", "n1", [0], started_at=0.0, priority=victim_priority)
    model.next_attempt_id = 10
    model.submit(5, "b", priority=preemptor_priority)

    decisions = model.step()

    assert bool(_preempts(decisions)) is expected


def test_non_preemptible_class_is_never_a_victim(cluster):
    model = cluster(nodes=[("n1", "p", 2)], teams=[Team("a", quota={"p": 2}), Team("b")])
    model.running[1] = _attempt(1, 1, "b", "n1", [0, 1], started_at=0.0, priority="production")
    model.next_attempt_id = 10
    model.submit(5, "a", priority="production")

    assert _preempts(model.step()) == []


def test_reserved_slots_only_for_their_trial(cluster):
    model = cluster(nodes=[("n1", "p", 3)], teams=[Team("a"), Team("b")])
    model.running[1] = _attempt(1, 1, "a", "n1", [1], started_at=0.0, priority="best-effort", yielding=True)
    model.reservations[7] = Reservation(7, "n1", (0, 1), created_at=990.0)
    model.next_attempt_id = 10
    model.submit(7, "b", devices=2, priority="interactive", queued_at=980.0)
    model.submit(8, "a", devices=1, priority="production", queued_at=0.0)
    model.submit(9, "a", devices=1, priority="production", queued_at=1.0)

    decisions = model.step()

    assert _starts(decisions).keys() == {8}
    assert _starts(decisions)[8].slots == (2,)
    assert _preempts(decisions) == []

    model.end(1)
    later = model.step()
    assert _starts(later)[7].slots == (0, 1)
    assert 9 not in _starts(later)


def test_reserved_trial_starts_elsewhere(cluster):
    model = cluster(nodes=[("n1", "p", 2), ("n2", "p", 2)], teams=[Team("a"), Team("b")])
    model.running[1] = _attempt(1, 1, "a", "n1", [0, 1], started_at=0.0, priority="best-effort", yielding=True)
    model.reservations[7] = Reservation(7, "n1", (0, 1), created_at=990.0)
    model.next_attempt_id = 10
    model.submit(7, "b", devices=2, priority="interactive")

    decisions = model.step()

    assert _starts(decisions)[7].node == "n2"
    assert 7 not in model.reservations


def test_reservation_of_gone_trial_is_ignored(cluster):
    model = cluster(nodes=[("n1", "p", 2)])
    model.reservations[7] = Reservation(7, "n1", (0, 1), created_at=990.0)
    model.submit(8, devices=2)

    decisions = model.step()

    assert _starts(decisions)[8].slots == (0, 1)


def test_unusable_reservation_blocks_and_is_replaced(cluster):
    model = cluster(nodes=[("n1", "p", 2), ("n2", "p", 2)], teams=[Team("a"), Team("b")])
    model.running[1] = _attempt(1, 1, "a", "n1", [0, 1], started_at=0.0, priority="best-effort")
    model.running[2] = _attempt(2, 2, "a", "n2", [0, 1], started_at=0.0, priority="best-effort")
    model.reservations[7] = Reservation(7, "n1", (0, 1), created_at=990.0)
    model.next_attempt_id = 10
    model.submit(7, "b", devices=2, priority="interactive")

    decisions = model.step()

    reserve = _reserves(decisions)[7]
    assert [p.attempt_id for p in _preempts(decisions)] == [2]
    assert reserve.node == "n2"
    assert model.reservations[7].node == "n2"


def test_soon_free_slots_need_no_new_victim(cluster):
    model = cluster(nodes=[("n1", "p", 2)], teams=[Team("a"), Team("b")])
    model.running[1] = _attempt(1, 1, "a", "n1", [0], started_at=0.0, priority="best-effort", yielding=True)
    model.running[2] = _attempt(2, 2, "a", "n1", [1], started_at=0.0, priority="best-effort")
    model.next_attempt_id = 10
    model.submit(7, "b", devices=1, priority="interactive")

    decisions = model.step()

    assert _preempts(decisions) == []
    assert _reserves(decisions)[7].slots == (0,)


def test_unneeded_victims_are_spared(cluster):
    model = cluster(nodes=[("n1", "p", 4)], teams=[Team("a"), Team("b")])
    model.running[1] = _attempt(1, 1, "a", "n1", [0], started_at=0.0, priority="best-effort")
    model.running[2] = _attempt(2, 2, "a", "n1", [1, 2, 3], started_at=0.0, priority="search")
    model.next_attempt_id = 10
    model.submit(7, "b", devices=3, priority="interactive")

    decisions = model.step()

    assert [p.attempt_id for p in _preempts(decisions)] == [2]
    assert _reserves(decisions)[7].slots == (1, 2, 3)


def test_preemptor_cap_per_call(cluster):
    model = cluster(nodes=[("n1", "p", 4)], teams=[Team("a"), Team("b")], max_preemptors_per_call=2)
    for slot in range(4):
        model.running[slot + 1] = _attempt(slot + 1, slot + 1, "a", "n1", [slot], started_at=0.0, priority="best-effort")
    model.next_attempt_id = 10
    for trial_id in (20, 21, 22):
        model.submit(trial_id, "b", priority="interactive")

    decisions = model.step()

    assert len(_preempts(decisions)) == 2
    assert len(_reserves(decisions)) == 2
    assert len(_preempts(model.step())) == 1


# -- quotas and reclaim ------------------------------------------------------------------------


@pytest.mark.parametrize("b_arrives_later", [False, True])
def test_two_teams_settle_at_five_and_six(cluster, b_arrives_later):
    teams = [Team("a", quota={"p": 5}, borrowing_limit={"p": 5}), Team("b", quota={"p": 5}, borrowing_limit={"p": 5})]
    model = cluster(nodes=[("n1", "p", 8), ("n2", "p", 3)], teams=teams, min_runtime_s=60.0)
    for index in range(20):
        model.submit(100 + index, "a", search_id=1)
    if b_arrives_later:
        model.step()
        assert model.devices_by_team()["a"] == 10
        model.advance(120.0)
    for index in range(20):
        model.submit(200 + index, "b", search_id=2)

    for _ in range(12):
        model.step()
        model.advance(30.0)
        model.end_yielding()
        model.advance(90.0)

    held = model.devices_by_team()
    assert sorted([held["a"], held["b"]]) == [5, 6]
    assert all(not a.yielding for a in model.running.values())
    assert all(_preempts(d) == [] for d in model.history[-6:])
    total = sum(len(_preempts(d)) for d in model.history)
    assert total == (4 if b_arrives_later else 0)


def test_reclaim_keeps_victim_team_at_quota(cluster):
    teams = [Team("a", quota={"p": 3}), Team("b", quota={"p": 3})]
    model = cluster(nodes=[("n1", "p", 6)], teams=teams)
    for slot in range(5):
        model.running[slot + 1] = _attempt(slot + 1, slot + 1, "a", "n1", [slot], started_at=float(slot))
    model.running[6] = _attempt(6, 6, "b", "n1", [5], started_at=0.0)
    model.next_attempt_id = 10
    for trial_id in range(20, 25):
        model.submit(trial_id, "b")

    decisions = model.step()

    victims = sorted(p.attempt_id for p in _preempts(decisions))
    assert victims == [4, 5]
    assert all("reclaim" in p.reason for p in _preempts(decisions))
    assert len(_reserves(decisions)) == 2


def test_borrowing_preemptor_spares_nominal_attempts(cluster):
    teams = [Team("a", quota={"p": 2}), Team("b")]
    model = cluster(nodes=[("n1", "p", 2)], teams=teams)
    model.running[1] = _attempt(1, 1, "a", "n1", [0], started_at=0.0, priority="best-effort")
    model.running[2] = _attempt(2, 2, "a", "n1", [1], started_at=0.0, priority="best-effort")
    model.next_attempt_id = 10
    model.submit(7, "b", priority="interactive")

    assert _preempts(model.step()) == []


def test_team_limit_caps_borrowing(cluster):
    teams = [Team("a", quota={"p": 1}, borrowing_limit={"p": 2})]
    model = cluster(nodes=[("n1", "p", 8)], teams=teams)
    for trial_id in range(1, 7):
        model.submit(trial_id, "a")

    decisions = model.step()

    assert len(_starts(decisions)) == 3


def test_team_at_limit_preempts_its_own_lower_priority(cluster):
    teams = [Team("a", quota={"p": 2}, borrowing_limit={"p": 0})]
    model = cluster(nodes=[("n1", "p", 4)], teams=teams)
    model.running[1] = _attempt(1, 1, "a", "n1", [0], started_at=0.0, priority="best-effort")
    model.running[2] = _attempt(2, 2, "a", "n1", [1], started_at=10.0, priority="search")
    model.next_attempt_id = 10
    model.submit(7, "a", priority="interactive")

    decisions = model.step()

    assert [p.attempt_id for p in _preempts(decisions)] == [1]
    assert _reserves(decisions)[7].slots == (0,)
    assert _starts(decisions) == {}

    model.end(1)
    assert _starts(model.step())[7].slots == (0,)


# -- order -------------------------------------------------------------------------------------


def test_weight_zero_team_is_served_last(cluster):
    teams = [Team("zero", weight=0.0, decayed_usage=0.0), Team("busy", weight=1.0, decayed_usage=1e12)]
    model = cluster(nodes=[("n1", "p", 2)], teams=teams)
    for trial_id in (1, 2, 3):
        model.submit(trial_id, "zero", queued_at=0.0 + trial_id)
    for trial_id in (11, 12, 13):
        model.submit(trial_id, "busy", queued_at=500.0 + trial_id)

    decisions = model.step()

    assert set(_starts(decisions)) == {11, 12}


def test_all_teams_weight_zero_still_schedules(cluster):
    teams = [Team("x", weight=0.0, decayed_usage=5.0), Team("y", weight=0.0, decayed_usage=1.0)]
    model = cluster(nodes=[("n1", "p", 1)], teams=teams)
    model.submit(1, "x", queued_at=0.0)
    model.submit(2, "y", queued_at=1.0)

    assert set(_starts(model.step())) == {2}


@pytest.mark.parametrize(
    ("usage_a", "weight_a", "usage_b", "weight_b", "first"),
    [
        (100.0, 1.0, 0.0, 1.0, "b"),
        (0.0, 1.0, 100.0, 1.0, "a"),
        (100.0, 4.0, 50.0, 1.0, "a"),
        (0.0, 1.0, 0.0, 1.0, "a"),
    ],
)
def test_fair_share_orders_teams(cluster, usage_a, weight_a, usage_b, weight_b, first):
    teams = [Team("a", weight=weight_a, decayed_usage=usage_a), Team("b", weight=weight_b, decayed_usage=usage_b)]
    model = cluster(nodes=[("n1", "p", 1)], teams=teams)
    model.submit(1, "a", queued_at=0.0)
    model.submit(2, "b", queued_at=0.0)

    started = next(iter(_starts(model.step()).values()))

    assert model.trials[started.trial_id].team == first


def test_horizon_spreads_one_call_across_teams(cluster):
    model = cluster(nodes=[("n1", "p", 4)], teams=[Team("a"), Team("b")])
    for trial_id in range(1, 5):
        model.submit(trial_id, "a", queued_at=0.0)
    for trial_id in range(11, 15):
        model.submit(trial_id, "b", queued_at=1.0)

    started = _starts(model.step())

    assert sorted(started) == [1, 2, 11, 12]


def test_horizon_zero_ranks_by_usage_alone(cluster):
    model = cluster(nodes=[("n1", "p", 4)], teams=[Team("a"), Team("b")], fair_share_horizon_s=0.0)
    for trial_id in range(1, 5):
        model.submit(trial_id, "a", queued_at=0.0)
    for trial_id in range(11, 15):
        model.submit(trial_id, "b", queued_at=1.0)

    assert sorted(_starts(model.step())) == [1, 2, 3, 4]


def test_searches_of_a_team_take_turns(cluster):
    model = cluster(nodes=[("n1", "p", 4)], teams=[Team("a")])
    model.running[1] = _attempt(1, 1, "a", "n1", [0], started_at=0.0, search_id=10)
    model.running[2] = _attempt(2, 2, "a", "n1", [1], started_at=0.0, search_id=10)
    model.next_attempt_id = 5
    model.submit(30, "a", search_id=10, queued_at=0.0)
    model.submit(31, "a", search_id=10, queued_at=1.0)
    model.submit(40, "a", search_id=20, queued_at=5.0)
    model.submit(41, "a", search_id=20, queued_at=6.0)
    model.submit(42, "a", search_id=20, queued_at=7.0)

    assert sorted(_starts(model.step())) == [40, 41]


def test_resuming_trial_of_search_goes_first(cluster):
    model = cluster(nodes=[("n1", "p", 1)])
    model.submit(1, search_id=3, queued_at=0.0)
    model.submit(2, search_id=3, queued_at=50.0, resumes=True)

    assert set(_starts(model.step())) == {2}


def test_search_max_concurrent_caps_starts(cluster):
    model = cluster(nodes=[("n1", "p", 8)], searches=[SearchLimit(3, "a", 2)])
    model.running[1] = _attempt(1, 1, "a", "n1", [0], started_at=0.0, search_id=3)
    model.next_attempt_id = 5
    for trial_id in range(10, 15):
        model.submit(trial_id, search_id=3)
    model.submit(20, search_id=4)

    started = _starts(model.step())

    assert sorted(started) == [10, 20]


def test_priority_before_fair_share(cluster):
    teams = [Team("a", decayed_usage=1e9), Team("b")]
    model = cluster(nodes=[("n1", "p", 1)], teams=teams)
    model.submit(1, "a", priority="interactive", queued_at=10.0)
    model.submit(2, "b", priority="search", queued_at=0.0)

    assert set(_starts(model.step())) == {1}


# -- placement ---------------------------------------------------------------------------------


def test_gang_is_never_partial(cluster):
    model = cluster(nodes=[("n1", "p", 4), ("n2", "p", 4)], teams=[Team("a"), Team("b")])
    model.running[1] = _attempt(1, 1, "b", "n1", [0, 1], started_at=0.0, priority="production")
    model.running[2] = _attempt(2, 2, "b", "n2", [2, 3], started_at=0.0, priority="production")
    model.next_attempt_id = 10
    model.submit(5, "a", devices=4)

    for _ in range(3):
        decisions = model.step()
        assert _starts(decisions) == {}
        assert _reserves(decisions) == {}
        model.advance(100.0)

    model.end(2)
    start = _starts(model.step())[5]
    assert start.node == "n2"
    assert start.slots == (0, 1, 2, 3)


def test_best_fit_keeps_empty_node_for_large_gangs(cluster):
    model = cluster(nodes=[("n1", "p", 4), ("n2", "p", 4)])
    model.running[1] = _attempt(1, 1, "b", "n2", [0, 1, 2], started_at=0.0, priority="production")
    model.next_attempt_id = 10
    model.submit(5, devices=1, queued_at=0.0)
    model.submit(6, devices=4, queued_at=1.0)

    started = _starts(model.step())

    assert started[5].node == "n2"
    assert started[6].node == "n1"


_POOLS = (
    Pool("cpu-eu", "eu", "cpu", 1.0),
    Pool("cpu-us", "us", "cpu", 0.5),
    Pool("gpu-eu", "eu", "cuda", 3.0),
)
_NODES = [("ce1", "cpu-eu", 2), ("cu1", "cpu-us", 2), ("ge1", "gpu-eu", 2)]


@pytest.mark.parametrize(
    ("fields", "expected_node"),
    [
        ({}, "cu1"),
        ({"hardware": "cuda"}, "ge1"),
        ({"allowed_regions": frozenset({"eu"})}, "ce1"),
        ({"allowed_pools": frozenset({"cpu-eu"})}, "ce1"),
        ({"hardware": "cuda", "allowed_regions": frozenset({"us"})}, None),
        ({"hardware": "tpu"}, None),
        ({"allowed_regions": frozenset({"asia"})}, None),
        ({"allowed_pools": frozenset({"gpu-eu"})}, None),
    ],
)
def test_placement_respects_constraints(cluster, fields, expected_node):
    model = cluster(nodes=_NODES, pools=_POOLS)
    model.submit(1, **fields)

    decisions = model.step()

    if expected_node is None:
        assert [type(d) for d in decisions] == [Reject]
        assert "no pool" in decisions[0].reason
    else:
        assert _starts(decisions)[1].node == expected_node


def test_unschedulable_node_gets_no_starts(cluster):
    model = cluster(nodes=[("n1", "p", 2)])
    model.nodes = (dataclasses.replace(model.nodes[0], schedulable=False),)
    model.submit(1)

    decisions = model.step()

    assert decisions == []


# -- determinism and input checks --------------------------------------------------------------


def _busy_model(cluster, seed_offset: int = 0):
    teams = [
        Team("a", weight=2.0, quota={"p": 6}, borrowing_limit={"p": 4}, decayed_usage=3000.0),
        Team("b", weight=1.0, quota={"p": 4}, decayed_usage=100.0),
        Team("c", weight=0.0),
    ]
    model = cluster(nodes=[("n1", "p", 8), ("n2", "p", 4), ("n3", "p", 4)], teams=teams)
    model.running[1] = _attempt(1, 1, "a", "n1", [0, 1, 2, 3], started_at=0.0, priority="best-effort")
    model.running[2] = _attempt(2, 2, "b", "n2", [0, 1], started_at=10.0, priority="search")
    model.running[3] = _attempt(3, 3, "c", "n3", [0], started_at=20.0, priority="best-effort", yielding=True)
    model.next_attempt_id = 10
    priorities = ["search", "interactive", "best-effort"]
    for trial_id in range(20, 50):
        model.submit(
            trial_id,
            "abc"[trial_id % 3],
            devices=1 + trial_id % 4,
            priority=priorities[trial_id % 3],
            search_id=trial_id % 5,
            queued_at=float(trial_id % 7),
            resumes=trial_id % 6 == 0,
        )
    return model


def test_equal_snapshots_give_equal_decisions(cluster):
    first = _busy_model(cluster).snapshot()
    second = _busy_model(cluster).snapshot()
    policy = DefaultPolicy()

    assert first == second
    assert policy.schedule(first) == policy.schedule(second)
    assert policy.schedule(first) == policy.schedule(first)


def test_input_order_does_not_matter(cluster):
    snapshot = _busy_model(cluster).snapshot()
    shuffled = dataclasses.replace(
        snapshot,
        pending=tuple(reversed(snapshot.pending)),
        running=tuple(reversed(snapshot.running)),
        nodes=tuple(reversed(snapshot.nodes)),
        teams=tuple(reversed(snapshot.teams)),
    )
    policy = DefaultPolicy()

    assert policy.schedule(shuffled) == policy.schedule(snapshot)


def test_busy_cluster_stops_preempting(cluster):
    model = _busy_model(cluster)
    for _ in range(15):
        model.step()
        model.advance(30.0)
        model.end_yielding()
        model.advance(60.0)

    tail = model.history[-5:]
    assert all(_preempts(d) == [] for d in tail)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"min_runtime_s": -1.0}, "min_runtime_s"),
        ({"min_runtime_s": math.nan}, "min_runtime_s"),
        ({"fair_share_horizon_s": -5.0}, "fair_share_horizon_s"),
        ({"max_preemptors_per_call": -1}, "max_preemptors_per_call"),
    ],
)
def test_invalid_settings_raise(cluster, settings, message):
    model = cluster(nodes=[("n1", "p", 1)], **settings)
    model.submit(1)

    with pytest.raises(ValueError, match=message):
        model.step()


@pytest.mark.parametrize(
    ("team", "message"),
    [
        (Team("a", weight=-1.0), "weight"),
        (Team("a", weight=math.nan), "weight"),
        (Team("a", decayed_usage=math.inf), "decayed_usage"),
        (Team("a", quota={"p": -2}), "quota"),
        (Team("a", borrowing_limit={"p": -1}), "borrowing_limit"),
    ],
)
def test_invalid_team_raises(cluster, team, message):
    model = cluster(nodes=[("n1", "p", 1)], teams=[team])
    model.submit(1)

    with pytest.raises(ValueError, match=message):
        model.step()


def test_duplicate_trial_id_raises(cluster):
    model = cluster(nodes=[("n1", "p", 1)])
    trial = model.submit(1)
    snapshot = dataclasses.replace(model.snapshot(), pending=(trial, trial))

    with pytest.raises(ValueError, match="trial 1 appears more than once"):
        DefaultPolicy().schedule(snapshot)


def test_unknown_priority_class_is_rejected(cluster):
    model = cluster(nodes=[("n1", "p", 1)])
    model.submit(1, priority="urgent")

    decisions = model.step()

    assert [type(d) for d in decisions] == [Reject]
    assert "'urgent'" in decisions[0].reason


def test_zero_device_request_is_rejected(cluster):
    model = cluster(nodes=[("n1", "p", 1)])
    model.submit(1, devices=0)

    decisions = model.step()

    assert [type(d) for d in decisions] == [Reject]
    assert "at least 1" in decisions[0].reason


_RANDOM_POOLS = (Pool("c1", "eu", "cpu", 1.0), Pool("c2", "us", "cpu", 0.5), Pool("g1", "eu", "cuda", 2.0))


def _random_model(cluster, rng: random.Random):
    teams = [
        Team(
            name,
            weight=rng.choice((0.0, 1.0, 2.0)),
            quota={p.name: rng.randint(0, 4) for p in _RANDOM_POOLS},
            borrowing_limit={p.name: rng.randint(0, 4) for p in _RANDOM_POOLS if rng.random() < 0.5},
            decayed_usage=rng.uniform(0, 1e4),
        )
        for name in "abcd"
    ]
    nodes = [(f"n{i}", _RANDOM_POOLS[i % 3].name, rng.choice((1, 2, 4, 8))) for i in range(7)]
    settings = {
        "min_runtime_s": rng.choice((0.0, 60.0, 200.0)),
        "max_preemptors_per_call": rng.choice((None, 1, 64)),
        "starvation_wait_s": rng.choice((None, 0.0, 300.0)),
        "fair_share_horizon_s": rng.choice((0.0, 3600.0)),
    }
    return cluster(nodes=nodes, pools=_RANDOM_POOLS, teams=teams, **settings)


def _submit_random(model, rng: random.Random, trial_id: int) -> None:
    pool = rng.choice(_RANDOM_POOLS)
    model.submit(
        trial_id,
        rng.choice("abcd"),
        devices=rng.choice((1, 1, 2, 4, 8)),
        priority=rng.choice(("production", "interactive", "search", "best-effort")),
        search_id=rng.randrange(5),
        hardware=pool.hardware,
        allowed_regions=frozenset({pool.region}) if rng.random() < 0.3 else None,
    )


@pytest.mark.parametrize("seed", range(40))
def test_random_rounds_stop_preempting(cluster, seed):
    """Random arrivals and completions for 20 rounds, then none: preemptions must stop."""
    rng = random.Random(seed)
    model = _random_model(cluster, rng)
    next_id = 1
    for _ in range(20):
        for _ in range(rng.randint(0, 5)):
            _submit_random(model, rng, next_id)
            next_id += 1
        model.step()
        model.advance(rng.choice((30.0, 90.0, 250.0)))
        if rng.random() < 0.7:
            model.end_yielding()
        for attempt_id in [a.attempt_id for a in model.running.values() if not a.yielding and rng.random() < 0.15]:
            model.end(attempt_id)

    for _ in range(30):
        model.step()
        model.advance(250.0)
        model.end_yielding()

    assert all(_preempts(d) == [] for d in model.history[-8:])


def test_failed_large_preemptor_does_not_stop_its_team(cluster):
    model = cluster(nodes=[("n1", "p", 2), ("n2", "p", 2)], teams=[Team("a"), Team("b")])
    model.running[1] = _attempt(1, 1, "a", "n1", [0], started_at=0.0, priority="production")
    model.running[2] = _attempt(2, 2, "a", "n1", [1], started_at=0.0, priority="best-effort")
    model.running[3] = _attempt(3, 3, "a", "n2", [0], started_at=0.0, priority="production")
    model.running[4] = _attempt(4, 4, "a", "n2", [1], started_at=0.0, priority="production")
    model.next_attempt_id = 10
    model.submit(7, "b", devices=2, priority="interactive", queued_at=0.0)
    model.submit(8, "b", devices=1, priority="interactive", queued_at=1.0)

    decisions = model.step()

    assert [p.attempt_id for p in _preempts(decisions)] == [2]
    assert set(_reserves(decisions)) == {8}
