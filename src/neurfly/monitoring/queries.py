"""Reads of the monitoring tables shared by the CLI and the REST API."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from neurfly.monitoring.failures import FailureCategory
from neurfly.monitoring.records import AttemptFailure
from neurfly.store import Attempt


def list_failures(
    session: Session,
    *,
    teams: Collection[str] | None = None,
    search_id: int | None = None,
    category: FailureCategory | None = None,
    limit: int | None = None,
) -> list[tuple[AttemptFailure, int]]:
    """Return classified failures with the trial id of each failed attempt, oldest first.

    Args:
        session: An open session.
        teams: Only failures of searches of these teams; ``None`` for every team.
        search_id: Only failures of this search.
        category: Only failures of this class.
        limit: Only the newest ``limit`` failures; ``None`` for all.
    """
    query = select(AttemptFailure, Attempt.trial_id).join(Attempt, Attempt.id == AttemptFailure.attempt_id)
    if teams is not None:
        query = query.where(AttemptFailure.team.in_(sorted(teams)))
    if search_id is not None:
        query = query.where(AttemptFailure.search_id == search_id)
    if category is not None:
        query = query.where(AttemptFailure.category == category.value)
    rows = session.execute(query.order_by(AttemptFailure.id.desc()).limit(limit)).all()
    return [(failure, trial_id) for failure, trial_id in reversed(rows)]


__all__ = ["list_failures"]
