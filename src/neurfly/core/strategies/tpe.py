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

    The strategy keeps an in-memory Optuna study as a cache of the search's
    history. Before each proposal it tells the study every trial that has
    finished since the last call, so a fresh instance built from the store
    sees the same history. The sampler is reseeded from ``(seed, number)``
    for each proposal, which makes a proposal reproducible after a controller
    restart instead of replaying the random start-up draws.

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
        self._study = optuna.create_study(direction="minimize")
        self._distributions = {p.name: _distribution(p) for p in space.unique_params()}
        # Our trial number to the Optuna trial (or its number) awaiting a tell.
        self._optuna_trial_of: dict[int, optuna.Trial | int] = {}
        self._told: set[int] = set()

    def propose(self, number: int, progress: SearchProgress) -> dict[str, ParamValue] | None:
        self._sync(progress)
        used = {config_key(t.params) for t in progress.trials}

        for retry in range(_DUPLICATE_RETRIES):
            self._study.sampler = self._sampler(number, retry)
            optuna_trial = self._study.ask()
            params = self._suggest(optuna_trial)
            if config_key(params) not in used:
                self._optuna_trial_of[number] = optuna_trial
                return params
            self._study.tell(optuna_trial, state=OptunaState.FAIL)

        _logger.debug("TPE repeated known configurations for trial %d; drawing at random", number)
        return self.random_unique(number, progress, first_retry=_DUPLICATE_RETRIES)

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

    def _sync(self, progress: SearchProgress) -> None:
        for trial in progress.trials:
            if trial.number in self._told or not _is_finished(trial):
                continue
            self._tell(trial)
            self._told.add(trial.number)
        for trial in progress.trials:
            if trial.number not in self._told and trial.number not in self._optuna_trial_of:
                self._add_running(trial)

    def _tell(self, trial: TrialView) -> None:
        state, value = self._outcome(trial)
        optuna_trial = self._optuna_trial_of.pop(trial.number, None)
        if optuna_trial is not None:
            self._study.tell(optuna_trial, value, state=state)
            return
        self._study.add_trial(
            optuna.trial.create_trial(
                params=self._optuna_params(trial),
                distributions=self._optuna_distributions(trial),
                value=value,
                state=state,
            )
        )

    def _add_running(self, trial: TrialView) -> None:
        # A trial proposed before a restart: Optuna sees it as running, so the
        # constant liar steers new proposals away from it.
        frozen = optuna.trial.create_trial(
            params=self._optuna_params(trial),
            distributions=self._optuna_distributions(trial),
            state=OptunaState.RUNNING,
        )
        self._study.add_trial(frozen)
        self._optuna_trial_of[trial.number] = self._study.trials[-1].number

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
