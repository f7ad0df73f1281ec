"""ASHA: rung positions, decisions at rungs and promotions of paused trials."""

from __future__ import annotations

import math

import pytest

from neurfly.core.space import FloatParam, SearchSpace
from neurfly.core.spec import Direction
from neurfly.core.states import StepDecision, TrialState
from neurfly.core.strategies import Promotion, SearchProgress, TrialView, strategies
from neurfly.errors import SpecError

SPACE = SearchSpace((FloatParam("x", 0.0, 1.0),))
PAUSED = TrialState.PAUSED
RUNNING = TrialState.RUNNING


def asha(max_steps: int = 18, eta: int = 3, min_steps: int = 1, direction: Direction = Direction.MINIMIZE):
    return strategies.get("asha")(SPACE, direction, max_steps, {"eta": eta, "min_steps": min_steps}, 0)


def at_rung(number: int, value: float, state: TrialState = PAUSED, rung: int = 1, step: int | None = None) -> TrialView:
    """A trial that recorded ``value`` at ``rung`` and is now in ``state`` at ``step`` (default: the rung)."""
    return TrialView(
        number,
        {"x": number / 100},
        state,
        intermediate={rung: value},
        step=rung if step is None else step,
    )


def progress(*trials: TrialView, can_create_more: bool = True) -> SearchProgress:
    return SearchProgress(tuple(sorted(trials, key=lambda t: t.number)), can_create_more)


def eight_at_first_rung() -> list[TrialView]:
    """Trials 0..7 with values 0.1..0.8 at rung 1, all paused."""
    return [at_rung(n, round(0.1 * (n + 1), 2)) for n in range(8)]


# -- rungs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("eta", "min_steps", "max_steps", "rungs"),
    [
        (3, 1, 18, (1, 3, 9)),
        (3, 1, 27, (1, 3, 9)),
        (3, 1, 28, (1, 3, 9, 27)),
        (2, 2, 16, (2, 4, 8)),
        (4, 1, 64, (1, 4, 16)),
        (2, 1, 3, (1, 2)),
        (3, 1, 1, ()),
        (3, 5, 5, ()),
    ],
)
def test_rung_positions(eta: int, min_steps: int, max_steps: int, rungs: tuple[int, ...]) -> None:
    strategy = asha(max_steps=max_steps, eta=eta, min_steps=min_steps)

    assert strategy.rungs == rungs
    assert strategy.decision_steps() == rungs


def test_min_steps_above_budget_rejected() -> None:
    with pytest.raises(SpecError) as raised:
        asha(max_steps=5, min_steps=9)

    problem = raised.value.problems[0]
    assert problem.startswith("strategy.options.min_steps")
    assert "9" in problem
    assert "5" in problem


# -- decisions at a rung --------------------------------------------------------------------------


def test_report_between_rungs_continues() -> None:
    strategy = asha()

    decision = strategy.on_report(at_rung(8, 0.9, RUNNING, step=2), 2, 0.9, progress(*eight_at_first_rung()))

    assert decision is StepDecision.CONTINUE


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.05, StepDecision.CONTINUE),
        (0.15, StepDecision.CONTINUE),
        # Ties go to the lower trial number, so 0.3 ranks after trial 2's 0.3: fourth of nine.
        (0.3, StepDecision.PAUSE),
        (0.35, StepDecision.PAUSE),
        (0.95, StepDecision.PAUSE),
    ],
)
def test_top_third_continues(value: float, expected: StepDecision) -> None:
    strategy = asha()
    trial = at_rung(8, value, RUNNING)

    decision = strategy.on_report(trial, 1, value, progress(*eight_at_first_rung()))

    assert decision is expected


@pytest.mark.parametrize(("value", "expected"), [(0.75, StepDecision.CONTINUE), (0.5, StepDecision.PAUSE)])
def test_top_third_when_maximizing(value: float, expected: StepDecision) -> None:
    strategy = asha(direction=Direction.MAXIMIZE)

    decision = strategy.on_report(at_rung(8, value, RUNNING), 1, value, progress(*eight_at_first_rung()))

    assert decision is expected


def test_first_at_rung_pauses() -> None:
    strategy = asha()

    decision = strategy.on_report(at_rung(0, 0.1, RUNNING), 1, 0.1, progress(at_rung(0, 0.1, RUNNING)))

    assert decision is StepDecision.PAUSE


def test_first_at_rung_continues_when_budget_reached() -> None:
    strategy = asha()
    trial = at_rung(0, 0.1, RUNNING)

    decision = strategy.on_report(trial, 1, 0.1, progress(trial, can_create_more=False))

    assert decision is StepDecision.CONTINUE


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_value_prunes(value: float) -> None:
    strategy = asha()

    decision = strategy.on_report(at_rung(8, value, RUNNING), 1, value, progress(*eight_at_first_rung()))

    assert decision is StepDecision.PRUNE


def test_nan_values_rank_last() -> None:
    strategy = asha()
    history = [at_rung(n, math.nan) for n in range(6)] + [at_rung(n, 0.5) for n in range(6, 8)]

    # Nine values: six NaN, two at 0.5 and the new 0.9, which is third best
    # only if every NaN ranks below it.
    decision = strategy.on_report(at_rung(8, 0.9, RUNNING), 1, 0.9, progress(*history))

    assert decision is StepDecision.CONTINUE


# -- promotions -----------------------------------------------------------------------------------


def test_promotes_top_third_of_paused() -> None:
    strategy = asha()
    trials = eight_at_first_rung() + [at_rung(8, 0.9)]

    promotions = strategy.promotions(progress(*trials))

    assert promotions == [Promotion(0, 3), Promotion(1, 3), Promotion(2, 3)]


def test_running_leader_is_not_promoted() -> None:
    strategy = asha()
    trials = eight_at_first_rung() + [at_rung(8, 0.9)]
    trials[0] = at_rung(0, 0.1, RUNNING, step=2)

    promotions = strategy.promotions(progress(*trials))

    assert promotions == [Promotion(1, 3), Promotion(2, 3)]


def test_too_few_at_rung_promote_none() -> None:
    strategy = asha()

    promotions = strategy.promotions(progress(at_rung(0, 0.1), at_rung(1, 0.2)))

    assert promotions == []


def test_last_rung_promotes_to_max_steps() -> None:
    strategy = asha(max_steps=18)
    trials = [at_rung(n, 0.1 * (n + 1), rung=9) for n in range(3)]

    promotions = strategy.promotions(progress(*trials))

    assert promotions == [Promotion(0, 18)]


def test_higher_rungs_promote_first() -> None:
    strategy = asha(max_steps=18)
    first_rung = [at_rung(n, 0.1 * (n + 1), rung=1) for n in range(3)]
    second_rung = [at_rung(n, 0.1 * (n - 2), rung=3) for n in range(3, 6)]

    promotions = strategy.promotions(progress(*first_rung, *second_rung))

    assert promotions == [Promotion(3, 9), Promotion(0, 3)]


def test_budget_reached_promotes_best_paused() -> None:
    strategy = asha()
    trials = [at_rung(0, 0.3), at_rung(1, 0.2)]

    promotions = strategy.promotions(progress(*trials, can_create_more=False))

    assert promotions == [Promotion(1, 3)]


def test_budget_reached_every_rung_promotes() -> None:
    strategy = asha(max_steps=18)
    first_rung = [at_rung(n, 0.1 * (n + 1), rung=1) for n in range(2)]
    second_rung = [at_rung(n, 0.1 * (n + 1), rung=3) for n in range(2, 4)]
    third_rung = [at_rung(4, 0.7, rung=9)]

    promotions = strategy.promotions(progress(*first_rung, *second_rung, *third_rung, can_create_more=False))

    assert Promotion(4, 18) in promotions
    assert Promotion(2, 9) in promotions
    assert Promotion(0, 3) in promotions


def test_budget_reached_leader_fills_top_set() -> None:
    # Once no new trial can be created, the top set of a rung holds at least
    # one trial. The rung's leader went on already, so no paused trial of
    # that rung is promoted behind it and the search can end.
    strategy = asha()
    trials = [at_rung(0, 0.1, RUNNING, step=2), at_rung(1, 0.2), at_rung(2, 0.3)]

    promotions = strategy.promotions(progress(*trials, can_create_more=False))

    assert promotions == []
