"""The search strategy extension point."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from neurfly.core.space import ParamValue, SearchSpace, config_key
from neurfly.core.spec import Direction
from neurfly.core.states import StepDecision, TrialState
from neurfly.errors import SpecError
from neurfly.registry import Registry


@dataclass(frozen=True)
class TrialView:
    """What a strategy sees of one trial.

    Attributes:
        number: Position in the search, from 0, in creation order.
        params: The configuration.
        state: Current trial state.
        value: Final objective value once the trial is completed, pruned or
            stopped; ``NaN`` for a trial that reported a non-finite value.
        intermediate: Objective value per reported step (the latest attempt's
            report wins where attempts overlap).
        step: Last step reached.
    """

    number: int
    params: Mapping[str, ParamValue]
    state: TrialState
    value: float | None = None
    intermediate: Mapping[int, float] = field(default_factory=dict)
    step: int = 0
    key: str | None = None

    @property
    def config_key(self) -> str:
        """The view's ``config_key(params)``; ``key`` caches it when the caller set it."""
        return self.key if self.key is not None else config_key(self.params)


@dataclass(frozen=True)
class Promotion:
    """Resume the paused trial ``number`` from its checkpoint until ``until_step``."""

    number: int
    until_step: int


@dataclass(frozen=True)
class SearchProgress:
    """The history a strategy decides on.

    Attributes:
        trials: Every trial of the search, in number order.
        can_create_more: False once the search may not create further trials
            (budget reached or the strategy exhausted), so a multi-fidelity
            strategy must finish with the trials it has.
    """

    trials: Sequence[TrialView]
    can_create_more: bool = True


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SearchStrategy(ABC):
    """Proposes configurations and decides on a trial's progress.

    Contract:
        * A strategy is rebuilt from the store whenever a controller starts, so
          every decision is a function of the constructor arguments and the
          ``SearchProgress`` passed in; a strategy may cache, but must give the
          same answers from a fresh instance with the same history.
        * ``propose(number, progress)`` is deterministic in ``(seed, number,
          progress)`` and never returns a configuration equal (by
          ``config_key``) to one of ``progress.trials``. It returns ``None``
          when no new configuration remains (a finished grid).
        * Only active parameters appear in a proposal; values lie inside
          their distributions.
        * ``decision_steps()`` lists the steps at which a running trial waits
          for ``on_report``; reports at other steps never wait.
        * ``promotions(progress)`` lists paused trials to resume; it is
          consulted before new trials are proposed.
        * No method does I/O or reads a clock.

    Args:
        space: The search space.
        direction: Whether lower or higher objective values are better.
        max_steps: Steps (epochs) a trial trains at most.
        options: Strategy-specific options, validated by ``Options``.
        seed: Seed of every random choice.
    """

    name: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel]] = NoOptions

    def __init__(
        self,
        space: SearchSpace,
        direction: Direction,
        max_steps: int,
        options: Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        self.space = space
        self.direction = direction
        self.max_steps = max_steps
        self.options = self.validate_options(options or {})
        self.seed = seed

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> Any:
        """Validate ``options``; raises ``SpecError`` naming each bad option."""
        try:
            return cls.Options.model_validate(dict(options))
        except ValidationError as exc:
            problems = [
                f"strategy.options.{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
                for e in exc.errors()
            ]
            raise SpecError(problems) from None

    @abstractmethod
    def propose(self, number: int, progress: SearchProgress) -> dict[str, ParamValue] | None:
        """Return the configuration of trial ``number``, or ``None`` when exhausted."""

    def decision_steps(self) -> tuple[int, ...]:
        return ()

    def on_report(self, trial: TrialView, step: int, value: float, progress: SearchProgress) -> StepDecision:
        """Decide whether ``trial`` goes on after reporting ``value`` at a decision step."""
        return StepDecision.CONTINUE

    def promotions(self, progress: SearchProgress) -> list[Promotion]:
        return []

    # -- helpers for subclasses -----------------------------------------------------------------

    def rng(self, number: int, retry: int = 0) -> np.random.Generator:
        """A generator seeded by the search seed, the trial number and the retry."""
        return np.random.default_rng([self.seed & 0xFFFFFFFF, number, retry])

    def worse_is_larger(self, value: float) -> float:
        """Map a value to a loss where smaller is better and non-finite is worst."""
        if value is None or not math.isfinite(value):
            return math.inf
        return value if self.direction is Direction.MINIMIZE else -value

    def random_unique(self, number: int, progress: SearchProgress, first_retry: int = 0) -> dict[str, ParamValue] | None:
        """Sample configurations until one is new; ``None`` once a finite space is used up."""
        used = {t.config_key for t in progress.trials}
        finite_size = self.space.grid_size() if self.space.is_discrete() else math.inf
        if len(used) >= finite_size:
            return None
        for retry in range(first_retry, first_retry + 200):
            candidate = self.space.sample(self.rng(number, retry))
            if config_key(candidate) not in used:
                return candidate
        if finite_size < math.inf:
            return next((p for p in self.space.iter_grid() if config_key(p) not in used), None)
        return None


strategies: Registry[SearchStrategy] = Registry("neurfly.strategies", "search strategy")
