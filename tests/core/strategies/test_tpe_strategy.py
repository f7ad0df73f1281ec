"""TPE: learning from history, including trials whose objective is NaN."""

from __future__ import annotations

import math

import optuna
import pytest

from neurfly.core.space import CategoricalParam, FloatParam, SearchSpace
from neurfly.core.spec import Direction
from neurfly.core.states import TrialState
from neurfly.core.strategies import SearchProgress, TrialView, strategies

STARTUP = 10
TRIALS = 70


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def nan_above_half(x: float) -> float:
    """Minimum at x = 0.3; the whole region x > 0.5 returns NaN, as a diverging trial would."""
    return math.nan if x > 0.5 else (x - 0.3) ** 2


def run_tpe(seed: int, direction: Direction = Direction.MINIMIZE, sign: float = 1.0) -> list[TrialView]:
    space = SearchSpace((FloatParam("x", 0.0, 1.0),))
    strategy = strategies.get("tpe")(space, direction, 1, {"n_startup_trials": STARTUP}, seed)
    trials: list[TrialView] = []
    for number in range(TRIALS):
        params = strategy.propose(number, SearchProgress(tuple(trials)))
        assert params is not None
        value = sign * nan_above_half(params["x"])
        trials.append(TrialView(number, params, TrialState.COMPLETED, value=value, step=1))
    return trials


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tpe_avoids_nan_region(seed: int) -> None:
    later = run_tpe(seed)[STARTUP:]

    in_nan_region = sum(1 for trial in later if trial.params["x"] > 0.5) / len(later)

    assert in_nan_region < 0.25


def test_tpe_avoids_nan_when_maximizing() -> None:
    later = run_tpe(seed=3, direction=Direction.MAXIMIZE, sign=-1.0)[STARTUP:]

    in_nan_region = sum(1 for trial in later if trial.params["x"] > 0.5) / len(later)

    assert in_nan_region < 0.25


def test_tpe_converges_near_optimum() -> None:
    trials = run_tpe(seed=4)

    best = min(trial.value for trial in trials if math.isfinite(trial.value))

    assert best < 1e-3


def test_tpe_learns_from_failed_trials() -> None:
    space = SearchSpace((CategoricalParam("kernel", ("linear", "rbf", "poly", "sigmoid")),))
    strategy = strategies.get("tpe")(space, Direction.MINIMIZE, 1, {"n_startup_trials": 0}, 0)
    history = (
        TrialView(0, {"kernel": "linear"}, TrialState.FAILED),
        TrialView(1, {"kernel": "rbf"}, TrialState.COMPLETED, value=0.2, step=1),
    )

    proposal = strategy.propose(2, SearchProgress(history))

    assert proposal is not None
    assert proposal["kernel"] in ("poly", "sigmoid")
