"""Tables of budgets, their audit log and the controller's last evaluation of each.

The schema comes from the Alembic migration ``0003`` (branch ``costs``).
``budget_changes`` is append-only: the migration adds database triggers that
reject an UPDATE or DELETE on it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from neurfly.store.models import Base


class Budget(Base):
    """A limit on the usage cost of a team, or of one search, per period.

    ``scope`` is ``team:<team>`` or ``search:<id>``; a scope has at most one
    budget. Amounts are integer micro-units of the cluster's price currency.
    """

    __tablename__ = "budgets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(127), unique=True)
    team: Mapped[str] = mapped_column(String(63), index=True)
    search_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    period: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[float | None] = mapped_column(Float, nullable=True)
    period_end: Mapped[float | None] = mapped_column(Float, nullable=True)
    thresholds: Mapped[list[float]] = mapped_column(JSON)
    soft_limit_percent: Mapped[float | None] = mapped_column(Float, nullable=True)
    hard_limit_percent: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(127))
    updated_at: Mapped[float] = mapped_column(Float)
    updated_by: Mapped[str] = mapped_column(String(127))


class BudgetChange(Base):
    """One change of a budget: who made it, when, and the budget before and after.

    Rows outlive the budget they describe, so ``budget_id`` has no foreign key.
    """

    __tablename__ = "budget_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    budget_id: Mapped[int] = mapped_column(Integer, index=True)
    scope: Mapped[str] = mapped_column(String(127))
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(127))
    at: Mapped[float] = mapped_column(Float)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class BudgetState(Base):
    """The controller's last evaluation of a budget, read by submission checks and ``budget list``."""

    __tablename__ = "budget_states"

    budget_id: Mapped[int] = mapped_column(ForeignKey("budgets.id", ondelete="CASCADE"), primary_key=True)
    period_start: Mapped[float] = mapped_column(Float)
    spent_micros: Mapped[int] = mapped_column(BigInteger)
    forecast_micros: Mapped[int] = mapped_column(BigInteger)
    level: Mapped[str] = mapped_column(String(8))
    evaluated_at: Mapped[float] = mapped_column(Float)


__all__ = ["Budget", "BudgetChange", "BudgetState"]
