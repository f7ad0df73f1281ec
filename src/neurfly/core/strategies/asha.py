"""Asynchronous successive halving (ASHA).

Li et al., "A System for Massively Parallel Hyperparameter Tuning" (MLSys
2020). Rungs sit at ``min_steps * eta**k`` steps. A trial that reaches a rung
goes on only if its value there is in the top ``1/eta`` of every value
recorded at that rung so far; otherwise it pauses with its checkpoint. A
paused trial is promoted later, resuming from that checkpoint, once enough
other trials have reached its rung for it to rank in the top ``1/eta``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from neurfly.core.space import ParamValue, SearchSpace
from neurfly.core.spec import Direction
from neurfly.core.states import StepDecision, TrialState
from neurfly.core.strategies.base import Promotion, SearchProgress, SearchStrategy, TrialView
from neurfly.errors import SpecError


class ASHAOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    eta: int = Field(default=3, ge=2, description="reduction factor between rungs")
    min_steps: int = Field(default=1, ge=1, description="steps at the first rung")


class ASHASearch(SearchStrategy):
    """ASHA with random proposals.

    Ranking at a rung is by the objective value at that rung's step; ties go
    to the lower trial number. A non-finite value at a rung prunes the trial.
    When the search may create no more trials, the top set of every rung
    holds at least its best trial, so the leader of each rung goes on and
    some trial always trains to ``max_steps``.
    """

    name = "asha"
    Options = ASHAOptions

    def __init__(
        self,
        space: SearchSpace,
        direction: Direction,
        max_steps: int,
        options: Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(space, direction, max_steps, options, seed)
        eta, step = self.options.eta, self.options.min_steps
        if step > max_steps:
            raise SpecError(
                [f"strategy.options.min_steps: {step} is more than budget.max_steps ({max_steps}); set it to at most {max_steps}"]
            )
        rungs = []
        while step < max_steps:
            rungs.append(step)
            step *= eta
        self.rungs: tuple[int, ...] = tuple(rungs)

    def propose(self, number: int, progress: SearchProgress) -> dict[str, ParamValue] | None:
        return self.random_unique(number, progress)

    def decision_steps(self) -> tuple[int, ...]:
        return self.rungs

    def on_report(self, trial: TrialView, step: int, value: float, progress: SearchProgress) -> StepDecision:
        if step not in self.rungs:
            return StepDecision.CONTINUE
        if not math.isfinite(value):
            return StepDecision.PRUNE

        ranked = self._ranked_at(step, progress.trials, extra=(trial.number, value))
        top = self._top_count(len(ranked), progress.can_create_more)
        promoted = {number for number, _ in ranked[:top]}
        return StepDecision.CONTINUE if trial.number in promoted else StepDecision.PAUSE

    def promotions(self, progress: SearchProgress) -> list[Promotion]:
        promotions = []
        for index in reversed(range(len(self.rungs))):
            rung = self.rungs[index]
            next_step = self.rungs[index + 1] if index + 1 < len(self.rungs) else self.max_steps
            ranked = self._ranked_at(rung, progress.trials)
            top = {number for number, _ in ranked[: self._top_count(len(ranked), progress.can_create_more)]}
            for trial in progress.trials:
                if trial.state is TrialState.PAUSED and trial.step == rung and trial.number in top:
                    promotions.append(Promotion(trial.number, next_step))
        return promotions

    def rung_of(self, step: int) -> int | None:
        """Index of the rung at ``step``, or ``None``."""
        return self.rungs.index(step) if step in self.rungs else None

    def _ranked_at(
        self, step: int, trials: list[TrialView] | tuple[TrialView, ...], extra: tuple[int, float] | None = None
    ) -> list[tuple[int, float]]:
        values = {t.number: t.intermediate[step] for t in trials if step in t.intermediate}
        if extra is not None:
            values[extra[0]] = extra[1]
        return sorted(values.items(), key=lambda item: (self.worse_is_larger(item[1]), item[0]))

    def _top_count(self, recorded: int, can_create_more: bool) -> int:
        count = recorded // self.options.eta
        return count if can_create_more else max(1, count)
