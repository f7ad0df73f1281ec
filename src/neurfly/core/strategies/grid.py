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
        self._points = list(space.iter_grid())
        if self.options.shuffle:
            order = np.random.default_rng(seed & 0xFFFFFFFF).permutation(len(self._points))
            self._points = [self._points[i] for i in order]

    def propose(self, number: int, progress: SearchProgress) -> dict[str, ParamValue] | None:
        used = {config_key(t.params) for t in progress.trials}
        return next((dict(p) for p in self._points if config_key(p) not in used), None)
