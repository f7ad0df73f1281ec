"""Alerts: findings with a category, severity and owner, deduplicated by key."""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any

from sqlalchemy import Float, Integer, JSON, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

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
    __table_args__ = (UniqueConstraint("key", name="uq_alerts_key"),)

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
    alert.category, alert.severity, alert.state = category.value, severity.value, AlertState.FIRING.value
    alert.owner, alert.team, alert.search_id, alert.trial_id = owner, team, search_id, trial_id
    alert.message, alert.evidence, alert.last_at = message, evidence or {}, now
    alert.count += 1
    session.flush()
    _logger.warning("alert %s (%s, %s) for %s: %s", key, category.value, severity.value, owner, message)
    return alert, True
