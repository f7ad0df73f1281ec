"""Budgets as values: periods, limits, thresholds and the forecast.

This module is pure. A budget limits the usage cost of a team, or of one
search, per calendar month (UTC) or per custom period. Its evaluation at
time ``now`` inside the period ``[start, end)`` is::

    spent     = usage cost of the scope's attempts in [start, now]
    committed = sum over the scope's running attempts of
                devices * price * min(remaining_steps * seconds_per_step, end - now)
    run_rate  = usage cost in [max(start, now - window), now] / that length in seconds
    forecast  = spent + committed + round(run_rate * (end - now))

``remaining_steps`` is the search's ``budget.max_steps`` minus the attempt's
last reported step, and ``seconds_per_step`` is the attempt's own pace (see
``metering.seconds_per_step``). An attempt that has not reported a step yet
commits nothing. The run rate also counts the running attempts, so the
forecast errs high rather than low. Idle shares are not part of ``spent``,
because budgets track what a team's own work costs as it runs.

Alert thresholds and limits are percents of the budget's amount, compared
exactly in integer micro-units. A threshold fires on a basis (actual or
forecast) once the basis reaches it. The soft limit and the hard limit act
on actual spend only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import Enum

from neurfly.accounting.metering import AttemptRecord, meter, seconds_per_step
from neurfly.accounting.money import cost_micros, to_decimal
from neurfly.accounting.pricing import PoolRate

DEFAULT_THRESHOLDS = (50.0, 80.0, 100.0)
# Trailing window of the run rate: a day smooths out the start and end of single trials.
DEFAULT_FORECAST_WINDOW_S = 24 * 3600.0
# Highest threshold or limit, in percent of the amount.
MAX_PERCENT = 1000.0

_ZERO = Decimal(0)


class PeriodKind(str, Enum):
    MONTH = "month"
    CUSTOM = "custom"


class BudgetLevel(str, Enum):
    """How far over its limits a budget's actual spend is."""

    OK = "ok"
    SOFT = "soft"
    HARD = "hard"

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self]


_LEVEL_RANK = {BudgetLevel.OK: 0, BudgetLevel.SOFT: 1, BudgetLevel.HARD: 2}


class Basis(str, Enum):
    """Quantity a threshold is compared with: actual spend or forecast spend."""

    ACTUAL = "actual"
    FORECAST = "forecast"


@dataclass(frozen=True, slots=True)
class Period:
    """A budget period ``[start, end)`` in seconds since the epoch."""

    start: float
    end: float

    @property
    def label(self) -> str:
        """The start as UTC ISO 8601 text, as alert keys and reports show it."""
        return format_time(self.start)


def format_time(at: float) -> str:
    """Format seconds since the epoch as UTC ISO 8601 text, e.g. ``2026-12-01T00:00:00Z``."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def month_period(now: float) -> Period:
    """Return the calendar month (UTC) that contains ``now``."""
    moment = datetime.fromtimestamp(now, UTC)
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    end = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)
    return Period(start.timestamp(), end.timestamp())


@dataclass(frozen=True, slots=True)
class BudgetRule:
    """One budget.

    Attributes:
        id: Budget id in the store.
        team: Team whose searches it covers.
        amount_micros: Budget per period, in micro-units.
        period_kind: ``month`` (each calendar month, UTC) or ``custom``.
        search_id: Cover only this search of the team; ``None`` covers every search of the team.
        custom_start: Start of a custom period.
        custom_end: End of a custom period (exclusive).
        thresholds: Alert thresholds in percent of the amount.
        soft_limit_percent: Spend at which the soft limit acts; ``None`` for none.
        hard_limit_percent: Spend at which the hard limit acts; ``None`` for none.
    """

    id: int
    team: str
    amount_micros: int
    period_kind: PeriodKind = PeriodKind.MONTH
    search_id: int | None = None
    custom_start: float | None = None
    custom_end: float | None = None
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    soft_limit_percent: float | None = 100.0
    hard_limit_percent: float | None = None

    def __post_init__(self) -> None:
        if self.amount_micros <= 0:
            raise ValueError(f"budget {self.id}: the amount must be more than 0, got {self.amount_micros} micro-units")
        check_thresholds(self.thresholds)
        for name in ("soft_limit_percent", "hard_limit_percent"):
            check_percent(name, getattr(self, name))
        if self.period_kind is PeriodKind.CUSTOM:
            if self.custom_start is None or self.custom_end is None or self.custom_end <= self.custom_start:
                start = format_time(self.custom_start) if self.custom_start is not None else None
                end = format_time(self.custom_end) if self.custom_end is not None else None
                raise ValueError(f"budget {self.id}: a custom period needs a start before its end, got {start} to {end}")

    def period_at(self, now: float) -> Period | None:
        """Return the period that contains ``now``, or ``None`` outside a custom period."""
        if self.period_kind is PeriodKind.MONTH:
            return month_period(now)
        if self.custom_start <= now < self.custom_end:
            return Period(self.custom_start, self.custom_end)
        return None

    def covers(self, team: str, search_id: int) -> bool:
        """Return whether the budget counts the cost of ``search_id`` of ``team``."""
        return team == self.team and (self.search_id is None or self.search_id == search_id)

    def level_for(self, spent_micros: int) -> BudgetLevel:
        """Return the limit that ``spent_micros`` reaches."""
        if self.hard_limit_percent is not None and reaches(spent_micros, self.amount_micros, self.hard_limit_percent):
            return BudgetLevel.HARD
        if self.soft_limit_percent is not None and reaches(spent_micros, self.amount_micros, self.soft_limit_percent):
            return BudgetLevel.SOFT
        return BudgetLevel.OK

    @property
    def scope(self) -> str:
        """``team:<team>`` or ``search:<id>``, the budget's unique scope."""
        return scope_of(self.team, self.search_id)


def scope_of(team: str, search_id: int | None) -> str:
    """Return the scope key of a budget of ``team``, or of one of its searches."""
    return f"team:{team}" if search_id is None else f"search:{search_id}"


def check_percent(name: str, value: float | None) -> None:
    """Raise ``ValueError`` unless ``value`` is ``None`` or a percent in (0, ``MAX_PERCENT``]."""
    if value is None:
        return
    if not 0 < value <= MAX_PERCENT:
        raise ValueError(f"{name} must be more than 0 and at most {MAX_PERCENT:g} percent, got {value!r}")


def check_thresholds(thresholds: Sequence[float]) -> None:
    """Raise ``ValueError`` unless ``thresholds`` are distinct percents in (0, ``MAX_PERCENT``]."""
    for value in thresholds:
        check_percent("each alert threshold", value)
    if len(set(thresholds)) != len(thresholds):
        raise ValueError(f"alert thresholds must be distinct, got {list(thresholds)}")


def reaches(micros: int, amount_micros: int, percent: float) -> bool:
    """Return whether ``micros`` is at least ``percent`` percent of ``amount_micros``, exactly."""
    return Decimal(micros) * 100 >= Decimal(amount_micros) * to_decimal(percent)


def alert_key(budget_id: int, period: Period, basis: Basis, percent: float) -> str:
    """Return the alert key of one threshold: ``budget:<id>:<period start>:<basis>:<percent>``."""
    return f"{alert_key_prefix(budget_id)}{period.label}:{basis.value}:{percent:g}"


def alert_key_prefix(budget_id: int) -> str:
    """Return the start shared by the alert keys of every threshold and period of one budget."""
    return f"budget:{budget_id}:"


@dataclass(frozen=True, slots=True)
class BudgetEvaluation:
    """A budget's spend, forecast and level at ``now``.

    Attributes:
        rule: The budget.
        period: The period that contains ``now``.
        now: Time of the evaluation.
        spent_micros: Usage cost in ``[period.start, now]``, running attempts included.
        running_micros: The part of ``spent_micros`` from attempts still running.
        committed_micros: Cost the running attempts need to reach their step budget, within the period.
        run_rate_micros_per_hour: Usage cost per hour over the trailing window.
        forecast_micros: ``spent + committed + run_rate * (period.end - now)``.
        level: The limit that ``spent_micros`` reaches.
        crossed: Every (basis, threshold) that the spend or forecast has reached.
    """

    rule: BudgetRule
    period: Period
    now: float
    spent_micros: int
    running_micros: int
    committed_micros: int
    run_rate_micros_per_hour: int
    forecast_micros: int
    level: BudgetLevel
    crossed: tuple[tuple[Basis, float], ...]

    @property
    def percent_spent(self) -> float:
        return 100.0 * self.spent_micros / self.rule.amount_micros

    @property
    def percent_forecast(self) -> float:
        return 100.0 * self.forecast_micros / self.rule.amount_micros


def period_spend(
    records: Iterable[AttemptRecord], rates: Mapping[str, PoolRate], period: Period, now: float
) -> tuple[int, int]:
    """Return the usage cost of ``records`` in ``[period.start, now]``, and the part of running attempts."""
    spent = running = 0
    for item in meter(records, period.start, period.end, now):
        cost = cost_micros(item.device_seconds, _price(rates, item.record.pool))
        spent += cost
        running += cost if item.running else 0
    return spent, running


def committed_cost(records: Iterable[AttemptRecord], rates: Mapping[str, PoolRate], now: float, period_end: float) -> int:
    """Return the cost that running ``records`` need to reach their ``max_steps``, cut at ``period_end``."""
    horizon = to_decimal(max(0.0, period_end - now))
    total = 0
    for record in records:
        ended = record.ended_at is not None and record.ended_at <= now
        if ended or record.max_steps is None:
            continue
        per_step = seconds_per_step(record, now)
        if per_step is None:
            continue
        done = record.end_step if record.end_step is not None else record.start_step
        remaining_s = min(max(0, record.max_steps - done) * per_step, horizon)
        total += cost_micros(record.devices * remaining_s, _price(rates, record.pool))
    return total


def run_rate(
    records: Iterable[AttemptRecord], rates: Mapping[str, PoolRate], period: Period, now: float, window_s: float
) -> Decimal:
    """Return the usage cost per second of ``records`` over the trailing window, in micro-units."""
    start = max(period.start, now - window_s)
    if now <= start:
        return _ZERO
    spent = sum(cost_micros(item.device_seconds, _price(rates, item.record.pool)) for item in meter(records, start, now, now))
    return Decimal(spent) / (to_decimal(now) - to_decimal(start))


def evaluate(
    rule: BudgetRule,
    period: Period,
    now: float,
    *,
    spent_micros: int,
    running_micros: int,
    committed_micros: int,
    rate_micros_per_s: Decimal,
) -> BudgetEvaluation:
    """Combine a budget's spend terms into its forecast, level and crossed thresholds."""
    remaining = to_decimal(max(0.0, period.end - now))
    forecast = spent_micros + committed_micros + _round(rate_micros_per_s * remaining)
    crossed = []
    for percent in sorted(rule.thresholds):
        if reaches(spent_micros, rule.amount_micros, percent):
            crossed.append((Basis.ACTUAL, percent))
        if reaches(forecast, rule.amount_micros, percent):
            crossed.append((Basis.FORECAST, percent))
    return BudgetEvaluation(
        rule=rule,
        period=period,
        now=now,
        spent_micros=spent_micros,
        running_micros=running_micros,
        committed_micros=committed_micros,
        run_rate_micros_per_hour=_round(rate_micros_per_s * 3600),
        forecast_micros=forecast,
        level=rule.level_for(spent_micros),
        crossed=tuple(crossed),
    )


def evaluate_records(
    rule: BudgetRule,
    records: Sequence[AttemptRecord],
    rates: Mapping[str, PoolRate],
    now: float,
    window_s: float = DEFAULT_FORECAST_WINDOW_S,
) -> BudgetEvaluation | None:
    """Evaluate ``rule`` at ``now`` from attempt records; ``None`` when no period of it contains ``now``.

    ``records`` may hold attempts of other teams and searches; only those the
    budget covers count. Open attempts are metered up to ``now``.
    """
    period = rule.period_at(now)
    if period is None:
        return None
    covered = [r for r in records if rule.covers(r.team, r.search_id)]
    spent, running = period_spend(covered, rates, period, now)
    return evaluate(
        rule, period, now,
        spent_micros=spent,
        running_micros=running,
        committed_micros=committed_cost(covered, rates, now, period.end),
        rate_micros_per_s=run_rate(covered, rates, period, now, window_s),
    )


def _round(micros: Decimal) -> int:
    return int(micros.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _price(rates: Mapping[str, PoolRate], pool: str) -> Decimal:
    rate = rates.get(pool)
    return rate.price_per_device_hour if rate is not None else _ZERO


__all__ = [
    "DEFAULT_FORECAST_WINDOW_S",
    "DEFAULT_THRESHOLDS",
    "Basis",
    "BudgetEvaluation",
    "BudgetLevel",
    "BudgetRule",
    "Period",
    "PeriodKind",
    "alert_key",
    "alert_key_prefix",
    "committed_cost",
    "evaluate",
    "evaluate_records",
    "format_time",
    "month_period",
    "period_spend",
    "reaches",
    "run_rate",
    "scope_of",
]
