"""Alerts: findings with a category, severity and owner, deduplicated by key."""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any

from sqlalchemy import Float, Index, Integer, JSON, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from neurfly.errors import NeurflyError, NotFoundError
from neurfly.store.models import Base

_logger = logging.getLogger(__name__)


class AlertCategory(str, Enum):
    DIVERGENCE = "divergence"
    PLATEAU = "plateau"
    STALL = "stall"
    RESOURCE = "resource"
    BUDGET = "budget"
    FAILURE = "failure"


class Severity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(str, Enum):
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Alert(Base):
    """One alert group: repeats of the same ``key`` update it instead of adding rows."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("key", name="uq_alerts_key"), Index("ix_alerts_state", "state"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255))
    category: Mapped[str] = mapped_column(String(31))
    severity: Mapped[str] = mapped_column(String(15))
    state: Mapped[str] = mapped_column(String(15))
    owner: Mapped[str] = mapped_column(String(63))
    team: Mapped[str | None] = mapped_column(String(63), nullable=True, index=True)
    search_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    trial_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_at: Mapped[float] = mapped_column(Float)
    last_at: Mapped[float] = mapped_column(Float)
    # Columns below come from migration 0004: acknowledgement, escalation and notification state.
    attempt_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    acknowledged_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(63), nullable=True)
    resolved_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(63), nullable=True)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    escalated_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    escalated_to: Mapped[str | None] = mapped_column(String(63), nullable=True)
    # Notification rounds of every episode so far, when this episode's last one was scheduled
    # (None before its first), and the occurrence count that round covered.
    notify_round: Mapped[int] = mapped_column(Integer, default=0)
    notified_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    notified_count: Mapped[int] = mapped_column(Integer, default=0)


def raise_alert(
    session: Session,
    *,
    key: str,
    category: AlertCategory,
    severity: Severity,
    owner: str,
    message: str,
    now: float,
    team: str | None = None,
    search_id: int | None = None,
    trial_id: int | None = None,
    evidence: dict[str, Any] | None = None,
) -> tuple[Alert, bool]:
    """Record a finding under ``key``; a repeat of a firing key only counts up.

    Args:
        key: Identity of the alert group, e.g. ``budget:team-a:2026-12:actual:80``.
        owner: The party that must act (a team name, or ``platform``).

    Returns:
        The alert row and whether it is new (a new key, or one resolved before).
    """
    alert = session.scalars(select(Alert).where(Alert.key == key)).first()
    if alert is not None and alert.state != AlertState.RESOLVED.value:
        alert.count += 1
        alert.last_at = now
        return alert, False
    if alert is None:
        alert = Alert(key=key, first_at=now, count=0)
        session.add(alert)
    _reset_response(alert, now)
    alert.category, alert.severity, alert.state = category.value, severity.value, AlertState.FIRING.value
    alert.owner, alert.team, alert.search_id, alert.trial_id = owner, team, search_id, trial_id
    alert.message, alert.evidence, alert.last_at = message, evidence or {}, now
    alert.count += 1
    session.flush()
    _logger.warning("alert %s (%s, %s) for %s: %s", key, category.value, severity.value, owner, message)
    return alert, True


def _reset_response(alert: Alert, now: float) -> None:
    """Start a new firing episode: clear acknowledgement, escalation and notification state."""
    alert.first_at, alert.count = now, 0
    alert.acknowledged_at = alert.acknowledged_by = alert.resolved_at = alert.resolved_by = None
    alert.escalation_level, alert.escalated_at, alert.escalated_to = 0, None, None
    # notify_round keeps counting across episodes, so each episode's deliveries get new round numbers.
    alert.notified_at, alert.notified_count = None, 0
    alert.notify_round = alert.notify_round or 0


def acknowledge_alert(session: Session, alert_id: int, by: str, now: float) -> Alert:
    """Mark a firing alert acknowledged: no more repeats or escalation for this episode.

    Raises:
        NotFoundError: No alert has that id.
        NeurflyError: The alert is resolved already.
    """
    alert = _get(session, alert_id)
    if alert.state == AlertState.RESOLVED.value:
        raise NeurflyError(f"alert {alert_id} is resolved; there is nothing to acknowledge")
    if alert.state == AlertState.FIRING.value:
        alert.state, alert.acknowledged_at, alert.acknowledged_by = AlertState.ACKNOWLEDGED.value, now, by
        _logger.info("alert %d (%s) acknowledged by %s", alert.id, alert.key, by)
    return alert


def resolve_alert(session: Session, alert_id: int, by: str, now: float) -> Alert:
    """Mark an alert resolved; the same key firing again starts a new episode.

    Raises:
        NotFoundError: No alert has that id.
    """
    alert = _get(session, alert_id)
    if alert.state != AlertState.RESOLVED.value:
        alert.state, alert.resolved_at, alert.resolved_by = AlertState.RESOLVED.value, now, by
        _logger.info("alert %d (%s) resolved by %s", alert.id, alert.key, by)
    return alert


def resolve_key(session: Session, key: str, by: str, now: float) -> Alert | None:
    """Resolve the alert of ``key`` if it is firing or acknowledged; returns it, or ``None``."""
    alert = session.scalars(select(Alert).where(Alert.key == key)).first()
    if alert is None or alert.state == AlertState.RESOLVED.value:
        return None
    return resolve_alert(session, alert.id, by, now)


def _get(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFoundError("alert", alert_id, "list alerts with 'neurfly alerts --all'")
    return alert


__all__ = [
    "Alert",
    "AlertCategory",
    "AlertState",
    "Severity",
    "acknowledge_alert",
    "raise_alert",
    "resolve_alert",
    "resolve_key",
]
