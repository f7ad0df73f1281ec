"""Tables of the store. The schema is managed by Alembic (``store/migrations``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Search(Base):
    __tablename__ = "searches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63))
    team: Mapped[str] = mapped_column(String(63), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    strategy: Mapped[str] = mapped_column(String(63))
    objective_metric: Mapped[str] = mapped_column(String(127))
    direction: Mapped[str] = mapped_column(String(8))
    max_trials: Mapped[int] = mapped_column(Integer)
    priority: Mapped[str] = mapped_column(String(63))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Trial(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("search_id", "number", name="uq_trials_search_number"),
        # A configuration is evaluated at most once per search, enforced by the database.
        UniqueConstraint("search_id", "config_key", name="uq_trials_search_config"),
        Index("ix_trials_search_state", "search_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    config_key: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    # "nan", "inf" or "-inf" where the value is not finite; SQLite stores NaN as NULL.
    value_special: Mapped[str | None] = mapped_column(String(8), nullable=True)
    step: Mapped[int] = mapped_column(Integer, default=0)
    decided_step: Mapped[int] = mapped_column(Integer, default=0)
    checkpoint_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    infra_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    queued_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (
        UniqueConstraint("trial_id", "number", name="uq_attempts_trial_number"),
        Index("ix_attempts_state", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    executor: Mapped[str] = mapped_column(String(31))
    pool: Mapped[str] = mapped_column(String(63))
    node: Mapped[str] = mapped_column(String(63))
    slots: Mapped[list[int]] = mapped_column(JSON)
    devices: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_report_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    start_step: Mapped[int] = mapped_column(Integer, default=0)
    end_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    checkpoint_in_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    checkpoint_out_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    stop_requested: Mapped[str | None] = mapped_column(String(16), nullable=True)
    stop_requested_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    failure_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    traceback: Mapped[str | None] = mapped_column(Text, nullable=True)
    progress_lost: Mapped[int] = mapped_column(Integer, default=0)
    data_versions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    worker_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    worker_started_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Checkpoint(Base):
    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    uri: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(80))
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class MetricRecord(Base):
    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_trial_name_step", "trial_id", "name", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(127))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    value_special: Mapped[str | None] = mapped_column(String(8), nullable=True)
    reported_at: Mapped[float] = mapped_column(Float)


class Event(Base):
    """The decision and audit log: what happened, to what, and why."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    kind: Mapped[str] = mapped_column(String(31))
    search_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    trial_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attempt_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ControllerLease(Base):
    """One row: which controller process drives this store."""

    __tablename__ = "controller_lease"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(127), nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    heartbeat_at: Mapped[float] = mapped_column(Float, default=0.0)
