"""The append-only audit log of data access decisions.

Rows are only ever inserted. ``record`` adds a row to the caller's session.
``record_after_transaction`` keeps rows aside until the caller's transaction
ends, committed or rolled back, and then writes them in a session of their
own. So a denial that makes the caller roll back is still on record.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction

from neurfly.governance.models import AuditAction, AuditRecord, Decision, ResourceKind

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditEntry:
    """One decision, before it is written."""

    actor: str
    team: str
    action: AuditAction
    resource_kind: ResourceKind
    resource: str
    decision: Decision
    reason: str
    version: str | None = None
    search_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    def row(self) -> AuditRecord:
        return AuditRecord(
            at=self.at, actor=self.actor, team=self.team, action=self.action.value,
            resource_kind=self.resource_kind.value, resource=self.resource, version=self.version,
            decision=self.decision.value, reason=self.reason, search_id=self.search_id, data=self.data,
        )


def record(session: Session, entry: AuditEntry) -> None:
    """Add ``entry`` to ``session``; it is written when the caller commits."""
    session.add(entry.row())
    _log(entry)


# Entries waiting for the end of a session's outermost transaction, and the sessions listened to.
_deferred: weakref.WeakKeyDictionary[Session, list[AuditEntry]] = weakref.WeakKeyDictionary()
_listening: weakref.WeakSet[Session] = weakref.WeakSet()


def record_after_transaction(session: Session, entries: Iterable[AuditEntry]) -> None:
    """Write ``entries`` in their own transaction once ``session``'s transaction ends.

    Use this inside a transaction that may be rolled back because of the
    decision being recorded (a rejected submission).
    """
    entries = list(entries)
    if not entries:
        return
    for entry in entries:
        _log(entry)
    _deferred.setdefault(session, []).extend(entries)
    if session not in _listening:
        # The listener stays for the session's life; a listener cannot remove itself while the event runs.
        event.listen(session, "after_transaction_end", _write_deferred)
        _listening.add(session)


def _write_deferred(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None or transaction.nested:
        return
    entries = _deferred.pop(session, [])
    if not entries:
        return
    bind = session.get_bind()
    with Session(bind) as own:
        own.add_all(entry.row() for entry in entries)
        own.commit()


def _log(entry: AuditEntry) -> None:
    _logger.info("data access %s: team %s (%s) %s %s %s: %s", entry.decision.value, entry.team, entry.actor,
                entry.action.value, entry.resource_kind.value, entry.resource, entry.reason)


def audit_trail(
    session: Session,
    *,
    team: str | None = None,
    resource: str | None = None,
    decision: Decision | None = None,
    limit: int = 200,
) -> list[AuditRecord]:
    """Return the newest audit records first, filtered by team (acting team or owner), resource and decision.

    ``team`` matches records where that team acted or where the resource
    belongs to it (its name starts with ``team/``).
    """
    query = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit)
    if team is not None:
        query = query.where((AuditRecord.team == team) | AuditRecord.resource.startswith(f"{team}/", autoescape=True))
    if resource is not None:
        query = query.where(AuditRecord.resource == resource)
    if decision is not None:
        query = query.where(AuditRecord.decision == decision.value)
    return list(session.scalars(query))
