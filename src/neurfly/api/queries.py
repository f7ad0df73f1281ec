"""Team-scoped reads of searches, trials and attempts, shaped as API responses."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from neurfly.api.access import check_team, visible
from neurfly.api.context import finite_json
from neurfly.auth import Principal, Role
from neurfly.controller.runtime import stored_value
from neurfly.core.states import TrialState
from neurfly.store import Attempt, Search, Trial


def metric_value(value: float | None) -> float | str | None:
    """Convert a value to what the API sends: finite floats as numbers, the others as ``"nan"``, ``"inf"``, ``"-inf"``."""
    if value is None or math.isfinite(value):
        return value
    return repr(value)


def resolve_search(session: Session, who: Principal, key: str, team: str | None, required: Role) -> Search:
    """Find a search by id or by name (the newest of that name), among the teams the caller may see.

    Raises:
        HTTPException: 404 when no visible search matches; 403 when the caller's role is below ``required``.
    """
    if key.isdigit():
        row = session.get(Search, int(key)) if int(key) <= 2**31 - 1 else None
        if row is not None and team is not None and row.team != team:
            row = None
    else:
        query = select(Search).where(Search.name == key, visible(who, Search.team)).order_by(Search.id.desc())
        if team is not None:
            query = query.where(Search.team == team)
        row = session.scalars(query).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"search {key!r} not found; list searches with GET /api/v1/searches")
    check_team(who, row.team, required, f"search {key!r}")
    return row


def resolve_trial(session: Session, who: Principal, trial_id: int) -> tuple[Search, Trial]:
    """Find a trial by id whose search the caller may see.

    Raises:
        HTTPException: 404 when it does not exist or belongs to a team the caller cannot see.
    """
    trial = session.get(Trial, trial_id)
    search = session.get(Search, trial.search_id) if trial is not None else None
    if trial is None or search is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"trial {trial_id} not found")
    check_team(who, search.team, Role.VIEWER, f"trial {trial_id}")
    return search, trial


def trial_by_number(session: Session, search: Search, number: int) -> Trial:
    trial = session.scalars(select(Trial).where(Trial.search_id == search.id, Trial.number == number)).first()
    if trial is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"trial {number} of search {search.id} not found; list its trials with GET /api/v1/searches/{search.id}/trials",
        )
    return trial


# -- shapes ---------------------------------------------------------------------------------------


def trial_row(row: Trial, attempts: int) -> dict[str, Any]:
    return {
        "id": row.id,
        "search_id": row.search_id,
        "number": row.number,
        "state": row.state,
        "value": metric_value(stored_value(row.value, row.value_special)),
        "params": finite_json(row.params),
        "step": row.step,
        "attempts": attempts,
        "message": row.message,
    }


def attempt_row(row: Attempt, trial_number: int) -> dict[str, Any]:
    return {
        "id": row.id,
        "search_id": row.search_id,
        "trial_id": row.trial_id,
        "trial_number": trial_number,
        "number": row.number,
        "state": row.state,
        "pool": row.pool,
        "node": row.node,
        "slots": list(row.slots),
        "devices": row.devices,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "start_step": row.start_step,
        "end_step": row.end_step,
        "stop_requested": row.stop_requested,
        "reason": row.reason,
        "failure_kind": row.failure_kind,
        "progress_lost": row.progress_lost,
        "data_versions": finite_json(row.data_versions or {}),
        "traceback": row.traceback,
    }


def summaries(session: Session, searches: Sequence[Search]) -> list[dict[str, Any]]:
    """Summaries of ``searches`` with trial counts and best trials, in three queries."""
    ids = [s.id for s in searches]
    counts: dict[int, dict[str, int]] = {}
    best: dict[int, dict[str, Any]] = {}
    if ids:
        rows = session.execute(
            select(Trial.search_id, Trial.state, func.count()).where(Trial.search_id.in_(ids)).group_by(Trial.search_id, Trial.state)
        ).all()
        for search_id, state, count in rows:
            counts.setdefault(search_id, {})[state] = count
        best = _best_trials(session, searches)
    order = [state.value for state in TrialState]
    return [
        {
            "id": s.id,
            "team": s.team,
            "name": s.name,
            "state": s.state,
            "strategy": s.strategy,
            "priority": s.priority,
            "objective": {"metric": s.objective_metric, "direction": s.direction},
            "max_trials": s.max_trials,
            "trials": {state: counts[s.id][state] for state in order if counts.get(s.id, {}).get(state)},
            "best": best.get(s.id),
            "cancel_requested": bool(s.cancel_requested),
            "created_at": s.created_at,
            "finished_at": s.finished_at,
            "message": s.message,
        }
        for s in searches
    ]


def _best_trials(session: Session, searches: Sequence[Search]) -> dict[int, dict[str, Any]]:
    """Best completed trial of each search, ranked as the leaderboard ranks: finite values first."""
    by_id = {s.id: s for s in searches}
    rows = session.scalars(
        select(Trial).where(Trial.search_id.in_(list(by_id)), Trial.state == TrialState.COMPLETED.value)
    ).all()
    chosen: dict[int, Trial] = {}
    for row in rows:
        current = chosen.get(row.search_id)
        if current is None or _rank(row, by_id[row.search_id]) < _rank(current, by_id[row.search_id]):
            chosen[row.search_id] = row
    if not chosen:
        return {}
    attempts = attempt_counts(session, [t.id for t in chosen.values()])
    return {search_id: trial_row(row, attempts.get(row.id, 0)) for search_id, row in chosen.items()}


def _rank(row: Trial, search: Search) -> tuple[bool, float, int]:
    value = stored_value(row.value, row.value_special)
    if value is None or not math.isfinite(value):
        return (True, 0.0, row.number)
    return (False, -value if search.direction == "maximize" else value, row.number)


def attempt_counts(session: Session, trial_ids: Iterable[int]) -> dict[int, int]:
    ids = list(trial_ids)
    if not ids:
        return {}
    rows = session.execute(select(Attempt.trial_id, func.count()).where(Attempt.trial_id.in_(ids)).group_by(Attempt.trial_id)).all()
    return dict(rows)


def trial_numbers(session: Session, trial_ids: Iterable[int]) -> dict[int, int]:
    ids = list(set(trial_ids))
    if not ids:
        return {}
    return dict(session.execute(select(Trial.id, Trial.number).where(Trial.id.in_(ids))).all())
