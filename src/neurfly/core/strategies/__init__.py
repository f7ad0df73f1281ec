"""Search strategies: what to try next, and whether a trial goes on."""

from neurfly.core.strategies.base import (
    NoOptions,
    Promotion,
    SearchProgress,
    SearchStrategy,
    TrialView,
    strategies,
)

__all__ = ["NoOptions", "Promotion", "SearchProgress", "SearchStrategy", "TrialView", "strategies"]
