"""Tables of the monitoring service: notification deliveries, failure classes, resource samples.

The schema comes from migration 0004, which also adds the acknowledgement
and escalation columns of ``alerts``.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from neurfly.store.models import Base


class DeliveryState(str, Enum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    # The alert was acknowledged or resolved before the delivery went out.
    CANCELLED = "cancelled"


class DeliveryReason(str, Enum):
    """Why a notification goes out: the first round, a repeat, or an escalation."""

    FIRING = "firing"
    REPEAT = "repeat"
    ESCALATION = "escalation"


class Delivery(Base):
    """One notification of one alert round to one party through one route.

    The unique constraint makes scheduling a round twice (a restarted
    controller) a no-op, so each round reaches each route once.
    """

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("alert_id", "reason", "round", "party", "route", name="uq_alert_deliveries_round"),
        Index("ix_alert_deliveries_due", "state", "next_try_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(15))
    round: Mapped[int] = mapped_column(Integer)
    party: Mapped[str] = mapped_column(String(63))
    role: Mapped[str] = mapped_column(String(15))
    route: Mapped[str] = mapped_column(String(63))
    notifier: Mapped[str] = mapped_column(String(31))
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(15))
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[float] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    sent_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class AttemptFailure(Base):
    """The class and owner of one failed attempt, with the evidence behind them."""

    __tablename__ = "attempt_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"), unique=True)
    search_id: Mapped[int] = mapped_column(Integer, index=True)
    team: Mapped[str] = mapped_column(String(63), index=True)
    category: Mapped[str] = mapped_column(String(31))
    cause: Mapped[str] = mapped_column(String(63))
    owner: Mapped[str] = mapped_column(String(63))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    classified_at: Mapped[float] = mapped_column(Float)


class ResourceBucket(Base):
    """Resource samples of one attempt folded into one time bucket (mean and max)."""

    __tablename__ = "resource_samples"
    __table_args__ = (UniqueConstraint("attempt_id", "bucket_start", name="uq_resource_samples_bucket"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"), index=True)
    search_id: Mapped[int] = mapped_column(Integer)
    bucket_start: Mapped[float] = mapped_column(Float)
    bucket_s: Mapped[float] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[float] = mapped_column(Float)
    cpu_percent_mean: Mapped[float] = mapped_column(Float)
    cpu_percent_max: Mapped[float] = mapped_column(Float)
    memory_bytes_max: Mapped[int] = mapped_column(BigInteger)
    memory_limit_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    device_utilisation_mean: Mapped[float | None] = mapped_column(Float, nullable=True)
    device_utilisation_max: Mapped[float | None] = mapped_column(Float, nullable=True)
    device_memory_bytes_max: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    device_memory_total_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    read_bytes_per_s_mean: Mapped[float | None] = mapped_column(Float, nullable=True)
    write_bytes_per_s_mean: Mapped[float | None] = mapped_column(Float, nullable=True)


__all__ = ["AttemptFailure", "Delivery", "DeliveryReason", "DeliveryState", "ResourceBucket"]
