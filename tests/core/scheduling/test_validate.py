"""Validation mode: hand-made decisions that break each invariant are caught."""

from __future__ import annotations

import pytest

from neurfly.core.scheduling import (
    Invariant,
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
    SchedulingInvariantError,
    SearchLimit,
    Snapshot,
    Start,
    Team,
)
from neurfly.core.scheduling._validate import check_decisions
from neurfly.errors import NeurflyError

NOW = 1000.0


def _snapshot() -> Snapshot:
    """Team a borrows 3 devices beyond a quota of 1 on n1; team b's trial 15 waits for a yielding attempt."""
    return Snapshot(
        now=NOW,
        pools=(Pool("p", "eu", "cpu"), Pool("g", "eu", "cuda")),
        nodes=(
            Node("n1", "p", 4),
            Node("n2", "p", 2),
            Node("n3", "p", 2),
            Node("g1", "g", 2),
            Node("off", "p", 2, schedulable=False),
        ),
        priority_classes=(PriorityClass("high", 500), PriorityClass("low", 100), PriorityClass("pinned", 50, preemptible=False)),
        teams=(
            Team("a", quota={"p": 1}),
            Team("b", quota={"p": 4}, borrowing_limit={"p": 0}),
            Team("c", quota={"p": 0}, borrowing_limit={"p": 1}),
        ),
        running=(
            RunningAttempt(1, 1, 1, "a", "low", "n1", (0,), started_at=0.0),
            RunningAttempt(2, 2, 1, "a", "low", "n1", (1,), started_at=10.0),
            RunningAttempt(3, 3, 1, "a", "low", "n1", (2,), started_at=20.0),
            RunningAttempt(4, 4, 1, "a", "low", "n1", (3,), started_at=NOW - 5.0),
            RunningAttempt(5, 5, 2, "b", "pinned", "n2", (0,), started_at=0.0),
            RunningAttempt(6, 6, 2, "b", "low", "n2", (1,), started_at=0.0, yielding=True),
        ),
        pending=(
            PendingTrial(10, 3, "b", "low", 1, "cpu", 0.0),
            PendingTrial(11, 3, "b", "high", 2, "cpu", 0.0),
            PendingTrial(12, 4, "c", "low", 1, "cpu", 0.0),
            PendingTrial(13, 4, "c", "low", 2, "cpu", 0.0),
            PendingTrial(14, 5, "a", "low", 1, "cuda", 0.0),
            PendingTrial(15, 3, "b", "low", 1, "cpu", 0.0),
        ),
        searches=(SearchLimit(5, "a", 0),),
        reservations=(Reservation(15, "n2", (1,), created_at=900.0),),
        settings=PolicySettings(min_runtime_s=60.0, validate=True),
    )


_BREACHES = [
    ("unknown trial", [Start(99, "n3", (0,))], Invariant.DECISION),
    ("unknown node", [Start(10, "nowhere", (0,))], Invariant.DECISION),
    ("started twice", [Start(10, "n3", (0,)), Start(10, "n3", (1,))], Invariant.DECISION),
    ("preempted twice", [Preempt(1, 11), Preempt(1, 11)], Invariant.DECISION),
    ("slot in use", [Start(10, "n1", (0,))], Invariant.NODE_CAPACITY),
    ("slot out of range", [Start(10, "n3", (7,))], Invariant.NODE_CAPACITY),
    ("unschedulable node", [Start(10, "off", (0,))], Invariant.NODE_CAPACITY),
    ("reserve held slots", [Reserve(13, "n1", (0, 1))], Invariant.NODE_CAPACITY),
    ("slot reserved for another", [Start(12, "n2", (1,))], Invariant.RESERVATION),
    ("partial gang start", [Start(11, "n3", (0,))], Invariant.GANG),
    ("reserve above request", [Reserve(10, "n3", (0, 1))], Invariant.GANG),
    ("partial reserve for preemptor", [Preempt(1, 11), Reserve(11, "n1", (0,))], Invariant.GANG),
    ("wrong hardware start", [Start(13, "g1", (0, 1))], Invariant.CONSTRAINT),
    ("wrong hardware reserve", [Reserve(13, "g1", (0, 1))], Invariant.CONSTRAINT),
    ("over search limit", [Start(14, "g1", (0,))], Invariant.SEARCH_LIMIT),
    ("over team limit", [Start(13, "n3", (0, 1))], Invariant.TEAM_LIMIT),
    ("victim yielding", [Preempt(6, 11), Reserve(11, "n2", (0, 1))], Invariant.PREEMPTION),
    ("victim too young", [Preempt(4, 11), Reserve(11, "n1", (2, 3))], Invariant.PREEMPTION),
    ("victim not preemptible", [Preempt(5, 11), Reserve(11, "n2", (0, 1))], Invariant.PREEMPTION),
    ("equal priority nominal victim", [Preempt(1, 12), Reserve(12, "n1", (0,))], Invariant.PREEMPTION),
    ("reclaim while borrowing", [Preempt(2, 12), Reserve(12, "n1", (1,))], Invariant.PREEMPTION),
    ("preempt without reserve", [Preempt(1, 11)], Invariant.PREEMPTION),
    ("reject that fits", [Reject(10, "no reason")], Invariant.REJECTION),
]


@pytest.mark.parametrize(("decisions", "invariant"), [case[1:] for case in _BREACHES], ids=[case[0] for case in _BREACHES])
def test_breach_is_caught(decisions, invariant):
    with pytest.raises(SchedulingInvariantError) as caught:
        check_decisions(_snapshot(), decisions)

    assert caught.value.invariant is invariant
    assert isinstance(caught.value, NeurflyError)
    assert caught.value.subject in str(caught.value)


_VALID = [
    ("nothing", []),
    ("two starts", [Start(10, "n3", (0,)), Start(12, "n3", (1,))]),
    ("priority preemption", [Preempt(1, 11), Preempt(2, 11), Reserve(11, "n1", (0, 1))]),
    ("reclaim", [Preempt(3, 10), Reserve(10, "n1", (2,))]),
    ("reserve free slot", [Reserve(12, "n3", (0,))]),
    ("partial drain reserve", [Reserve(11, "n3", (0,))]),
    ("reject over team limit", [Reject(13, "team c may hold at most 1")]),
]


@pytest.mark.parametrize("decisions", [case[1] for case in _VALID], ids=[case[0] for case in _VALID])
def test_valid_decisions_pass(decisions):
    check_decisions(_snapshot(), decisions)
