"""Random search."""

from __future__ import annotations

from neurfly.core.space import ParamValue
from neurfly.core.strategies.base import SearchProgress, SearchStrategy


class RandomSearch(SearchStrategy):
    """Independent draws from the space (log-uniform where a parameter says ``log``).

    Trial ``n`` is drawn from a generator seeded by ``(seed, n)``, so a
    restarted search proposes the same configuration for the same number, and
    a draw equal to an earlier trial is redrawn.
    """

    name = "random"

    def propose(self, number: int, progress: SearchProgress) -> dict[str, ParamValue] | None:
        return self.random_unique(number, progress)
