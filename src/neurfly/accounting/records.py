"""Reading attempt records and preemption causes from the store, for metering."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from neurfly.accounting.metering import UNKNOWN, AttemptRecord, Cause, WasteReason
from neurfly.controller.lease import Lease
from neurfly.core.states import AttemptState
from neurfly.store import Attempt, Event, Search, Store, Trial

_logger = logging.getLogger(__name__)

# Maximum ids in one IN (...) list, far below the bound-parameter limits of SQLite (32766 since 3.32) and PostgreSQL.
_CHUNK = 500
# Event kind the controller writes when it requests that an attempt yield its devices.
PREEMPTING_EVENT = "attempt.preempting"
# Event kind the accounting service writes when a budget reaches or leaves a limit.
BUDGET_LEVEL_EVENT = "budget.level"


@contextmanager
def open_session(session_or_store: Session | Store) -> Iterator[Session]:
    """Yield ``session_or_store`` if it is a session, or a new session of the store, closed afterwards."""
    if isinstance(session_or_store, Session):
        yield session_or_store
        return
    if not isinstance(session_or_store, Store):
        raise TypeError(f"expected a SQLAlchemy Session or a neurfly Store, got {type(session_or_store).__name__}")
    with session_or_store.session() as session:
        yield session


def controller_running(session: Session, now: float | None = None) -> bool:
    """Return whether a live controller holds the store's lease."""
    return Lease().holder(session, time.time() if now is None else now) is not None


def load_records(
    session: Session,
    since: float,
    until: float,
    team: str | None = None,
    search_id: int | None = None,
    accrue_open: bool = True,
) -> list[AttemptRecord]:
    """Load every attempt that held devices in ``[since, until)`` or ended inside it.

    Args:
        session: A store session.
        since: Start of the window, seconds since the epoch.
        until: End of the window (exclusive).
        team: Only attempts of this team's searches.
        search_id: Only attempts of this search.
        accrue_open: Leave open attempts open, so metering bills them up to
            ``now``. Pass ``False`` when no controller runs: each open attempt
            then ends at its last report (or its start), the time a restarted
            controller records for an attempt it lost.
    """
    query = select(Attempt).where(
        Attempt.started_at < until,
        or_(Attempt.ended_at.is_(None), Attempt.ended_at >= since),
    )
    if search_id is not None:
        query = query.where(Attempt.search_id == search_id)
    if team is not None:
        query = query.join(Search, Search.id == Attempt.search_id).where(Search.team == team)
    rows = session.scalars(query.order_by(Attempt.id)).all()
    searches = _searches(session, {row.search_id for row in rows})
    return [_record(row, searches[row.search_id], accrue_open) for row in rows]


def load_ended_records(session: Session, ended_since: float) -> list[AttemptRecord]:
    """Load every attempt that ended at or after ``ended_since``."""
    rows = session.scalars(select(Attempt).where(Attempt.ended_at >= ended_since).order_by(Attempt.id)).all()
    searches = _searches(session, {row.search_id for row in rows})
    return [_record(row, searches[row.search_id], accrue_open=True) for row in rows]


def record_of(row: Attempt, team: str, priority: str, search_name: str, max_steps: int | None) -> AttemptRecord:
    """Build the metering record of one attempt row."""
    return AttemptRecord(
        attempt_id=row.id,
        trial_id=row.trial_id,
        search_id=row.search_id,
        team=team,
        priority=priority,
        pool=row.pool,
        devices=row.devices,
        started_at=row.started_at,
        ended_at=row.ended_at,
        state=AttemptState(row.state),
        start_step=row.start_step or 0,
        end_step=row.end_step,
        last_report_at=row.last_report_at,
        progress_lost=row.progress_lost or 0,
        search_name=search_name,
        max_steps=max_steps,
    )


def max_steps_of(spec: dict[str, Any]) -> int | None:
    """Return ``budget.max_steps`` of a stored spec document (1 when the spec leaves it out)."""
    budget = spec.get("budget") if isinstance(spec, dict) else None
    if not isinstance(budget, dict):
        return None
    value = budget.get("max_steps", 1)
    return value if isinstance(value, int) and value >= 1 else None


def load_causes(session: Session, attempt_ids: Iterable[int]) -> dict[int, Cause]:
    """Find who caused each preemption, from the controller's ``attempt.preempting`` events.

    An event whose ``for_trial`` names a trial gives that trial's team and
    priority class. An event with a ``budget_id`` marks a stop by a hard
    budget limit. Any other preemption has cause ``unknown``.
    """
    latest: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(sorted(set(attempt_ids))):
        events = session.execute(
            select(Event.attempt_id, Event.data)
            .where(Event.kind == PREEMPTING_EVENT, Event.attempt_id.in_(chunk))
            .order_by(Event.id)
        )
        for attempt_id, data in events:
            latest[attempt_id] = data or {}

    trial_ids = {data.get("for_trial") for data in latest.values()}
    requesters = _requesters(session, {t for t in trial_ids if isinstance(t, int) and t >= 0})
    causes = {}
    for attempt_id, data in latest.items():
        if data.get("budget_id") is not None:
            causes[attempt_id] = Cause(WasteReason.BUDGET_STOP)
            continue
        team, priority = requesters.get(data.get("for_trial"), (UNKNOWN, UNKNOWN))
        causes[attempt_id] = Cause(WasteReason.PREEMPTION, team, priority)
    return causes


def _requesters(session: Session, trial_ids: set[int]) -> dict[int, tuple[str, str]]:
    found = {}
    for chunk in _chunks(sorted(trial_ids)):
        rows = session.execute(
            select(Trial.id, Search.team, Search.priority).join(Search, Search.id == Trial.search_id).where(Trial.id.in_(chunk))
        )
        for trial_id, team, priority in rows:
            found[trial_id] = (team, priority)
    return found


def _searches(session: Session, ids: set[int]) -> dict[int, tuple[str, str, str, int | None]]:
    found = {}
    for chunk in _chunks(sorted(ids)):
        for row in session.execute(select(Search.id, Search.team, Search.priority, Search.name, Search.spec).where(Search.id.in_(chunk))):
            found[row.id] = (row.team, row.priority, row.name, max_steps_of(row.spec))
    return found


def _record(row: Attempt, search: tuple[str, str, str, int | None], accrue_open: bool) -> AttemptRecord:
    team, priority, name, max_steps = search
    record = record_of(row, team, priority, name, max_steps)
    if accrue_open or row.ended_at is not None:
        return record
    return _end_as_lost(record, row)


def _end_as_lost(record: AttemptRecord, row: Attempt) -> AttemptRecord:
    return replace(record, ended_at=row.last_report_at or row.started_at, state=AttemptState.LOST)


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


__all__ = [
    "PREEMPTING_EVENT",
    "controller_running",
    "load_causes",
    "load_ended_records",
    "load_records",
    "max_steps_of",
    "open_session",
    "record_of",
]
