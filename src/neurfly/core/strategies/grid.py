"""Grid search."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from neurfly.core.space import ParamValue, SearchSpace, config_key
from neurfly.core.spec import Direction
from neurfly.core.strategies.base import SearchProgress, SearchStrategy


class GridOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    shuffle: bool = False


class GridSearch(SearchStrategy):
    """Every grid point once, in declaration order (or a seeded shuffle).

    The next proposal is the first grid point that no trial of the search has
    yet, so a restarted search never evaluates a point twice.
    """

    name = "grid"
    Options = GridOptions

    def __init__(
        self,
        space: SearchSpace,
        direction: Direction,
        max_steps: int,
        options: Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(space, direction, max_steps, options, seed)
        if not space.is_discrete():
            raise ValueError("grid search needs a step on every float parameter")
        self._points: list[dict[str, ParamValue]] | None = None
        if self.options.shuffle:
            points = list(space.iter_grid())
            order = np.random.default_rng(seed & 0xFFFFFFFF).permutation(len(points))
            self._points = [points[i] for i in order]

    def propose(self, number: int, progress: SearchProgress) -> dict[str, ParamValue] | None:
        used = {t.config_key for t in progress.trials}
        # Without shuffling the grid is walked lazily, so a huge grid costs only the points tried.
        points = self._points if self._points is not None else self.space.iter_grid()
        return next((dict(p) for p in points if config_key(p) not in used), None)
