"""The SearchStrategy contract, checked on every registered strategy.

The parametrization reads ``strategies.names()``, so a strategy installed as
a plug-in through the ``neurfly.strategies`` entry-point group runs these
tests too.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import optuna
import pytest

from neurfly.core.space import (
    CategoricalParam,
    Condition,
    ConstantParam,
    FloatParam,
    IntParam,
    Param,
    ParamValue,
    SearchSpace,
    config_key,
)
from neurfly.core.spec import Direction
from neurfly.core.states import TrialState
from neurfly.core.strategies import SearchProgress, SearchStrategy, TrialView, strategies
from neurfly.errors import SpecError

MAX_STEPS = 9
PROPOSALS = 40
IN_FLIGHT = 3

STRATEGY_NAMES = strategies.names()

DISCRETE = SearchSpace(
    (
        IntParam("layers", 1, 5),
        CategoricalParam("activation", ("relu", "tanh", "gelu")),
        FloatParam("dropout", 0.0, 1.0, step=0.25),
        ConstantParam("batch_size", 64),
    )
)
CONTINUOUS = SearchSpace(
    (
        FloatParam("lr", 1e-5, 1.0, log=True),
        FloatParam("shift", -1.0, 1.0),
        IntParam("units", 1, 1024, log=True),
        CategoricalParam("optimizer", ("adam", "sgd")),
        FloatParam("momentum", 0.0, 0.99, condition=Condition("optimizer", ("sgd",))),
    )
)
THREE_POINTS = SearchSpace((CategoricalParam("kernel", ("linear", "rbf", "poly")),))
SPACES = {"discrete": DISCRETE, "continuous": CONTINUOUS}


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def build(name: str, space: SearchSpace, seed: int = 7) -> SearchStrategy:
    """Build a fresh strategy, skipping the test where a strategy rejects a continuous space.

    A strategy may raise ValueError for a space it cannot search, as grid
    search does without a step on every float, but never for a discrete one.
    """
    try:
        return strategies.get(name)(space, Direction.MINIMIZE, MAX_STEPS, None, seed)
    except ValueError:
        if space.is_discrete():
            raise
        pytest.skip(f"strategy {name!r} rejects continuous spaces")


def objective(params: Mapping[str, ParamValue]) -> float:
    """Return a pseudo-random value in [0, 1) fixed per configuration and equal in every process."""
    digest = hashlib.sha256(config_key(params).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def completed_trial(number: int, params: Mapping[str, ParamValue]) -> TrialView:
    value = objective(params)
    curve = {step: value + (MAX_STEPS - step) * 0.01 for step in range(1, MAX_STEPS + 1)}
    return TrialView(number, dict(params), TrialState.COMPLETED, value=value, intermediate=curve, step=MAX_STEPS)


def running_trial(number: int, params: Mapping[str, ParamValue]) -> TrialView:
    return TrialView(number, dict(params), TrialState.RUNNING)


@dataclass
class SearchRun:
    """Proposals of a simulated search, each with the history it was proposed from."""

    proposals: list[dict[str, ParamValue] | None] = field(default_factory=list)
    histories: list[SearchProgress] = field(default_factory=list)


def run_search(strategy: SearchStrategy, count: int = PROPOSALS) -> SearchRun:
    """Propose ``count`` trials with IN_FLIGHT of them running at a time, stopping at the first ``None``."""
    trials: dict[int, TrialView] = {}
    in_flight: list[int] = []
    run = SearchRun()

    for number in range(count):
        progress = SearchProgress(tuple(trials[n] for n in sorted(trials)))
        proposal = strategy.propose(number, progress)
        run.histories.append(progress)
        run.proposals.append(proposal)
        if proposal is None:
            break

        trials[number] = running_trial(number, proposal)
        in_flight.append(number)
        # Finish the second oldest first, so trials complete out of number order.
        if len(in_flight) >= IN_FLIGHT:
            done = in_flight.pop(1)
            trials[done] = completed_trial(done, trials[done].params)
    return run


def active_names(space: SearchSpace, config: Mapping[str, ParamValue]) -> set[str]:
    return {name for name in space.names if space.is_active(name, config)}


def is_inside(param: Param, value: ParamValue) -> bool:
    if isinstance(param, ConstantParam):
        return value == param.value
    if isinstance(param, CategoricalParam):
        return value in param.choices
    if isinstance(param, IntParam):
        on_step = (value - param.low) % param.step == 0
        return isinstance(value, int) and param.low <= value <= param.high and on_step
    if not isinstance(value, float) or not param.low <= value <= param.high:
        return False
    if param.step is None:
        return True
    return any(math.isclose(value, point, abs_tol=1e-9) for point in param.grid_values())


@pytest.fixture(params=STRATEGY_NAMES)
def name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=list(SPACES))
def space(request: pytest.FixtureRequest) -> SearchSpace:
    return SPACES[request.param]


def test_proposals_inside_space(name: str, space: SearchSpace) -> None:
    run = run_search(build(name, space))

    for proposal in run.proposals:
        assert proposal is not None
        assert set(proposal) == active_names(space, proposal), proposal
        for param_name, value in proposal.items():
            assert is_inside(space.distribution(param_name), value), (param_name, value)


def test_proposals_never_repeat_history(name: str, space: SearchSpace) -> None:
    run = run_search(build(name, space))

    for proposal, history in zip(run.proposals, run.histories):
        assert proposal is not None
        used = {config_key(trial.params) for trial in history.trials}
        assert config_key(proposal) not in used, proposal


def test_fresh_instances_agree(name: str, space: SearchSpace) -> None:
    history = run_search(build(name, space)).histories

    for number in (0, 5, 12, 25, PROPOSALS - 1):
        first = build(name, space).propose(number, history[number])
        second = build(name, space).propose(number, history[number])
        assert first == second, number


def test_restart_proposal_is_new(name: str, space: SearchSpace) -> None:
    live = run_search(build(name, space))

    for number in (10, 20, 30):
        history = live.histories[number]
        proposal = build(name, space).propose(number, history)
        assert proposal is not None
        assert config_key(proposal) not in {config_key(t.params) for t in history.trials}


def test_restart_matches_live_instance(name: str, space: SearchSpace) -> None:
    # The contract: a fresh instance given the same history proposes what the
    # live instance proposes, so a controller restart does not change the search.
    live = run_search(build(name, space))

    differing = [
        number
        for number, history in enumerate(live.histories)
        if build(name, space).propose(number, history) != live.proposals[number]
    ]

    assert differing == []


def test_three_points_then_none(name: str) -> None:
    run = run_search(build(name, THREE_POINTS), count=6)

    assert len(run.proposals) == 4
    assert run.proposals[3] is None
    assert sorted(p["kernel"] for p in run.proposals[:3]) == ["linear", "poly", "rbf"]


def test_exhausted_space_stays_exhausted(name: str) -> None:
    strategy = build(name, THREE_POINTS)
    history = SearchProgress(
        tuple(completed_trial(n, {"kernel": kernel}) for n, kernel in enumerate(("rbf", "linear", "poly")))
    )

    assert strategy.propose(3, history) is None
    assert strategy.propose(4, history) is None


def test_unknown_option_rejected(name: str) -> None:
    strategy_class = strategies.get(name)

    with pytest.raises(SpecError) as raised:
        strategy_class.validate_options({"no_such_option": 1})

    assert any("strategy.options.no_such_option" in problem for problem in raised.value.problems)


def test_constructor_validates_options(name: str) -> None:
    with pytest.raises(SpecError, match="no_such_option"):
        strategies.get(name)(DISCRETE, Direction.MINIMIZE, MAX_STEPS, {"no_such_option": 1}, 0)


def test_decision_steps_within_budget(name: str) -> None:
    steps = build(name, DISCRETE).decision_steps()

    assert list(steps) == sorted(set(steps))
    assert all(1 <= step < MAX_STEPS for step in steps), steps


def test_promotions_name_paused_trials(name: str) -> None:
    strategy = build(name, DISCRETE)
    configs = list(DISCRETE.iter_grid())[:12]
    step = (strategy.decision_steps() or (1,))[0]
    trials = [
        TrialView(number, config, TrialState.PAUSED, intermediate={step: objective(config)}, step=step)
        for number, config in enumerate(configs)
    ]

    for can_create_more in (True, False):
        promotions = strategy.promotions(SearchProgress(tuple(trials), can_create_more))
        for promotion in promotions:
            trial = trials[promotion.number]
            assert trial.state is TrialState.PAUSED
            assert trial.step < promotion.until_step <= MAX_STEPS


@pytest.mark.parametrize(
    ("name", "options", "option"),
    [
        ("tpe", {"n_startup_trials": -1}, "n_startup_trials"),
        ("tpe", {"n_ei_candidates": 0}, "n_ei_candidates"),
        ("asha", {"eta": 1}, "eta"),
        ("asha", {"min_steps": 0}, "min_steps"),
        ("grid", {"shuffle": "sometimes"}, "shuffle"),
    ],
)
def test_bad_option_value_rejected(name: str, options: dict[str, object], option: str) -> None:
    with pytest.raises(SpecError) as raised:
        strategies.get(name).validate_options(options)

    problem = next(p for p in raised.value.problems if f"strategy.options.{option}" in p)
    assert repr(options[option]) in problem
