"""Tree-structured Parzen Estimator search through Optuna's ask/tell interface."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState as OptunaState
from pydantic import BaseModel, ConfigDict, Field

from neurfly.core.space import (
    CategoricalParam,
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
from neurfly.core.strategies.base import SearchProgress, SearchStrategy, TrialView

_logger = logging.getLogger(__name__)

# Retries of ``ask`` when TPE proposes a configuration the search already has.
_DUPLICATE_RETRIES = 10


class TPEOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    n_startup_trials: int = Field(default=10, ge=0, description="random trials before TPE takes over")
    n_ei_candidates: int = Field(default=24, ge=1)
    multivariate: bool = True
    constant_liar: bool = True


class TPESearch(SearchStrategy):
    """TPE from ``optuna.samplers.TPESampler``, driven through ask and tell.

    Each proposal builds an in-memory Optuna study from the search's history
    (finished trials with their values, unfinished ones as running, so the
    constant liar steers away from them) and asks it once. The sampler is
    seeded from ``(seed, number)``, so a restarted controller proposes the
    same configuration for the same number instead of replaying the random
    start-up draws.

    A trial whose objective is NaN or infinite is told as the worst possible
    value (+inf when minimising), so TPE counts its region as bad instead of
    ignoring it as Optuna does with failed trials.
    """

    name = "tpe"
    Options = TPEOptions

    def __init__(
        self,
        space: SearchSpace,
        direction: Direction,
        max_steps: int,
        options: Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(space, direction, max_steps, options, seed)
        self._distributions = {p.name: _distribution(p) for p in space.unique_params()}

    def propose(self, number: int, progress: SearchProgress) -> dict[str, ParamValue] | None:
        study = self._study_from(progress)
        used = {t.config_key for t in progress.trials}

        for retry in range(_DUPLICATE_RETRIES):
            study.sampler = self._sampler(number, retry)
            optuna_trial = study.ask()
            params = self._suggest(optuna_trial)
            if config_key(params) not in used:
                return params
            study.tell(optuna_trial, state=OptunaState.FAIL)

        _logger.debug("TPE repeated known configurations for trial %d; drawing at random", number)
        return self.random_unique(number, progress, first_retry=_DUPLICATE_RETRIES)

    def _study_from(self, progress: SearchProgress) -> optuna.Study:
        """A fresh in-memory study holding the search's trials in number order.

        Rebuilding it for every proposal costs a few milliseconds per thousand
        trials and makes a proposal depend only on the history, as the
        strategy contract requires.
        """
        study = optuna.create_study(direction="minimize")
        frozen = []
        for trial in progress.trials:
            state, value = self._outcome(trial) if _is_finished(trial) else (OptunaState.RUNNING, None)
            frozen.append(
                optuna.trial.create_trial(
                    params=self._optuna_params(trial),
                    distributions=self._optuna_distributions(trial),
                    value=value,
                    state=state,
                )
            )
        study.add_trials(frozen)
        return study

    def _sampler(self, number: int, retry: int) -> optuna.samplers.TPESampler:
        seed = int(self.rng(number, retry).integers(2**31 - 1))
        options = self.options
        with warnings.catch_warnings():
            # ``group`` and ``constant_liar`` are marked experimental in Optuna 4 and 5.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed,
                n_startup_trials=options.n_startup_trials,
                n_ei_candidates=options.n_ei_candidates,
                multivariate=options.multivariate,
                group=options.multivariate and any(p.condition for p in self.space.params),
                constant_liar=options.constant_liar,
            )

    def _suggest(self, optuna_trial: optuna.Trial) -> dict[str, ParamValue]:
        params: dict[str, ParamValue] = {}
        for param in self.space.unique_params():
            if not self.space.is_active(param.name, params):
                continue
            if isinstance(param, ConstantParam):
                params[param.name] = param.value
                continue
            params[param.name] = _suggest(optuna_trial, param)
        return params

    def _outcome(self, trial: TrialView) -> tuple[OptunaState, float | None]:
        if trial.state is TrialState.FAILED and trial.value is None:
            return OptunaState.FAIL, None
        return OptunaState.COMPLETE, self.worse_is_larger(trial.value if trial.value is not None else math.nan)

    def _optuna_params(self, trial: TrialView) -> dict[str, Any]:
        return {
            name: value
            for name, value in trial.params.items()
            if name in self._distributions and not isinstance(self.space.distribution(name), ConstantParam)
        }

    def _optuna_distributions(self, trial: TrialView) -> dict[str, BaseDistribution]:
        return {name: self._distributions[name] for name in self._optuna_params(trial)}


def _suggest(optuna_trial: optuna.Trial, param: Param) -> ParamValue:
    if isinstance(param, FloatParam):
        return optuna_trial.suggest_float(param.name, param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, IntParam):
        return optuna_trial.suggest_int(param.name, param.low, param.high, log=param.log, step=param.step)
    return optuna_trial.suggest_categorical(param.name, list(param.choices))


def _is_finished(trial: TrialView) -> bool:
    return trial.state in (TrialState.COMPLETED, TrialState.FAILED, TrialState.PRUNED, TrialState.STOPPED)


def _distribution(param: Param) -> BaseDistribution:
    if isinstance(param, FloatParam):
        return FloatDistribution(param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, IntParam):
        return IntDistribution(param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, CategoricalParam):
        return CategoricalDistribution(list(param.choices))
    return CategoricalDistribution([param.value])
