"""In-memory view of the running searches, rebuilt from the store at start-up.

The store stays the source of truth: every change here is written through the
session of the current tick and committed before the executor acts on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from neurfly.core.space import config_key
from neurfly.core.spec import SearchSpec, parse_spec
from neurfly.core.states import SearchState, StopRequest, TrialState
from neurfly.core.strategies import SearchProgress, SearchStrategy, TrialView, strategies
from neurfly.store import Checkpoint, MetricRecord, Search, Trial


@dataclass
class CheckpointRef:
    id: int
    uri: str
    digest: str
    step: int


@dataclass
class TrialRuntime:
    id: int
    search_id: int
    number: int
    params: dict[str, Any]
    state: TrialState
    queued_at: float
    value: float | None = None
    intermediate: dict[int, float] = field(default_factory=dict)
    step: int = 0
    decided_step: int = 0
    checkpoint: CheckpointRef | None = None
    infra_failures: int = 0
    attempts: int = 0
    _key: str | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        if self._key is None:
            self._key = config_key(self.params)
        return self._key

    def view(self) -> TrialView:
        return TrialView(
            key=self.key,
            number=self.number,
            params=self.params,
            state=self.state,
            value=self.value,
            intermediate=self.intermediate,
            step=self.checkpoint.step if self.state is TrialState.PAUSED and self.checkpoint else self.step,
        )

    @property
    def resume_step(self) -> int:
        return self.checkpoint.step if self.checkpoint else 0


@dataclass
class AttemptRuntime:
    id: int
    trial_id: int
    search_id: int
    pool: str
    node: str
    slots: tuple[int, ...]
    started_at: float
    start_step: int
    last_report_at: float | None = None
    reported_step: int = 0
    stop_requested: StopRequest | None = None
    stop_requested_at: float | None = None
    kill_reason: str | None = None


@dataclass
class SearchRuntime:
    id: int
    team: str
    spec: SearchSpec
    strategy: SearchStrategy
    trials: dict[int, TrialRuntime] = field(default_factory=dict)
    exhausted: bool = False
    # Set once the search is cancelled, failed or done; it ends when its last attempt exits.
    ending: tuple[SearchState, str] | None = None

    @property
    def created(self) -> int:
        return len(self.trials)

    def by_number(self) -> list[TrialRuntime]:
        return sorted(self.trials.values(), key=lambda t: t.number)

    def count(self, *states: TrialState) -> int:
        return sum(1 for t in self.trials.values() if t.state in states)

    @property
    def can_create_more(self) -> bool:
        return self.created < self.spec.budget.max_trials and not self.exhausted

    def progress(self) -> SearchProgress:
        return SearchProgress(tuple(t.view() for t in self.by_number()), self.can_create_more)


def build_strategy(spec: SearchSpec) -> SearchStrategy:
    strategy_class = strategies.get(spec.strategy.name)
    return strategy_class(
        spec.space, spec.objective.direction, spec.budget.max_steps, spec.strategy.options, spec.strategy.seed
    )


def load_search(session: Session, search: Search) -> SearchRuntime:
    """Rebuild a search's runtime view, with its trials and objective curves, from the store."""
    spec, _ = parse_spec(search.spec)
    runtime = SearchRuntime(search.id, search.team, spec, build_strategy(spec))

    rows = session.scalars(select(Trial).where(Trial.search_id == search.id)).all()
    checkpoint_ids = [row.checkpoint_id for row in rows if row.checkpoint_id is not None]
    checkpoints = {
        c.id: CheckpointRef(c.id, c.uri, c.digest, c.step)
        for c in session.scalars(select(Checkpoint).where(Checkpoint.id.in_(checkpoint_ids)))
    } if checkpoint_ids else {}

    for row in rows:
        runtime.trials[row.id] = TrialRuntime(
            id=row.id,
            search_id=search.id,
            number=row.number,
            params=dict(row.params),
            state=TrialState(row.state),
            queued_at=row.queued_at,
            value=stored_value(row.value, row.value_special),
            step=row.step,
            decided_step=row.decided_step,
            checkpoint=checkpoints.get(row.checkpoint_id) if row.checkpoint_id else None,
            infra_failures=row.infra_failures,
        )
    _load_curves(session, runtime)
    return runtime


def _load_curves(session: Session, runtime: SearchRuntime) -> None:
    metric = runtime.spec.objective.metric
    ids = list(runtime.trials)
    if not ids:
        return
    records = session.execute(
        select(MetricRecord.trial_id, MetricRecord.step, MetricRecord.value, MetricRecord.value_special)
        .where(MetricRecord.trial_id.in_(ids), MetricRecord.name == metric)
        .order_by(MetricRecord.id)
    )
    for trial_id, step, value, special in records:
        runtime.trials[trial_id].intermediate[step] = stored_value(value, special)


def stored_value(value: float | None, special: str | None) -> float | None:
    """Turn a stored (value, special) pair back into a float; ``None`` if neither is set."""
    if special is not None:
        return float(special)
    return value


def split_value(value: float | None) -> tuple[float | None, str | None]:
    """Split a float into what the store keeps: finite values as numbers, others as text."""
    if value is None:
        return None, None
    if math.isfinite(value):
        return value, None
    return None, repr(value)
