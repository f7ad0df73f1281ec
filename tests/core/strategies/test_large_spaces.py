"""Strategies that sample stay fast on discrete spaces far too large to enumerate."""

from __future__ import annotations

import optuna
import pytest

from neurfly.core.space import IntParam, SearchSpace, config_key
from neurfly.core.spec import Direction
from neurfly.core.states import TrialState
from neurfly.core.strategies import SearchProgress, TrialView, strategies

# Twelve parameters of ten values each: 10**12 grid points, so any code path
# that walks the grid per proposal cannot finish within the timeout.
HUGE = SearchSpace(tuple(IntParam(f"p{index}", 1, 10) for index in range(12)))


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


# Grid search lists every point by design, so it is not part of this check.
@pytest.mark.timeout(3)
@pytest.mark.parametrize("name", ["random", "tpe", "asha"])
def test_huge_discrete_space_proposals(name: str) -> None:
    strategy = strategies.get(name)(HUGE, Direction.MINIMIZE, 9, None, 0)
    trials: list[TrialView] = []

    for number in range(12):
        params = strategy.propose(number, SearchProgress(tuple(trials)))
        assert params is not None
        trials.append(TrialView(number, params, TrialState.COMPLETED, value=float(sum(params.values())), step=9))

    assert len({config_key(trial.params) for trial in trials}) == 12
