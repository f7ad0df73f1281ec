"""Budget periods, limits, thresholds and the forecast formula, on chosen records."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from neurfly.accounting.budgeting import (
    Basis,
    BudgetLevel,
    BudgetRule,
    Period,
    PeriodKind,
    alert_key,
    committed_cost,
    evaluate_records,
    month_period,
    reaches,
    run_rate,
)
from neurfly.accounting.metering import AttemptRecord
from neurfly.accounting.pricing import PoolRate
from neurfly.core.states import AttemptState

HOUR = 3600.0
# One device-hour costs 1.00, so a device-second costs 1/3600.
RATES = {"eu": PoolRate("eu", "cpu", 4, Decimal(1), Decimal(1), Decimal(1))}


def _ts(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()


def test_month_period_wraps_year() -> None:
    december = month_period(_ts(2026, 12, 31, 23, 59, 59))

    assert december == Period(_ts(2026, 12, 1), _ts(2027, 1, 1))
    assert december.label == "2026-12-01T00:00:00Z"
    assert month_period(_ts(2027, 1, 1)).start == _ts(2027, 1, 1)


def test_custom_period_only_inside() -> None:
    rule = BudgetRule(1, "team-a", 1_000_000, PeriodKind.CUSTOM, custom_start=100.0, custom_end=200.0)

    assert rule.period_at(99.9) is None
    assert rule.period_at(100.0) == Period(100.0, 200.0)
    assert rule.period_at(200.0) is None


def test_levels_follow_limits() -> None:
    rule = BudgetRule(1, "team-a", 100_000_000, soft_limit_percent=100.0, hard_limit_percent=120.0)

    assert rule.level_for(99_999_999) is BudgetLevel.OK
    assert rule.level_for(100_000_000) is BudgetLevel.SOFT
    assert rule.level_for(119_999_999) is BudgetLevel.SOFT
    assert rule.level_for(120_000_000) is BudgetLevel.HARD
    alerts_only = BudgetRule(2, "team-a", 100, soft_limit_percent=None)
    assert alerts_only.level_for(10_000) is BudgetLevel.OK


def test_scope_covers_team_or_search() -> None:
    team_rule = BudgetRule(1, "team-a", 100)
    search_rule = BudgetRule(2, "team-a", 100, search_id=7)

    assert team_rule.covers("team-a", 3)
    assert not team_rule.covers("team-b", 3)
    assert search_rule.covers("team-a", 7)
    assert not search_rule.covers("team-a", 3)
    assert search_rule.scope == "search:7"


def test_reaches_is_exact() -> None:
    assert reaches(80, 100, 80.0)
    assert not reaches(79, 100, 80.0)
    assert reaches(333_334, 1_000_000, 33.3334)
    assert not reaches(333_333, 1_000_000, 33.3334)


def test_alert_key_format() -> None:
    period = month_period(_ts(2026, 12, 5))

    assert alert_key(4, period, Basis.FORECAST, 80.0) == "budget:4:2026-12-01T00:00:00Z:forecast:80"
    assert alert_key(4, period, Basis.ACTUAL, 12.5) == "budget:4:2026-12-01T00:00:00Z:actual:12.5"


def test_forecast_formula() -> None:
    start = _ts(2026, 12, 1)
    now = start + 10 * HOUR
    rule = BudgetRule(1, "team-a", 1000 * 1_000_000, PeriodKind.CUSTOM, custom_start=start, custom_end=start + 20 * HOUR)
    ended = AttemptRecord(1, 1, 1, "team-a", "search", "eu", 1, start, start + 4 * HOUR, AttemptState.COMPLETED)
    # Running on 2 devices for 2 hours, 4 of 10 steps done in those 2 hours: 6 steps of 30 minutes remain.
    running = AttemptRecord(
        2, 2, 1, "team-a", "search", "eu", 2, now - 2 * HOUR, None, AttemptState.RUNNING,
        start_step=0, end_step=4, last_report_at=now, max_steps=10,
    )
    other_team = AttemptRecord(3, 3, 2, "team-b", "search", "eu", 4, start, None, AttemptState.RUNNING)

    evaluation = evaluate_records(rule, [ended, running, other_team], RATES, now, window_s=5 * HOUR)

    # spent: 4 device-hours ended + 4 running = 8.00
    assert evaluation.spent_micros == 8_000_000
    assert evaluation.running_micros == 4_000_000
    # committed: 2 devices * 6 steps * 0.5 h = 6.00
    assert evaluation.committed_micros == 6_000_000
    # run rate over the last 5 hours: only the running attempt, 4.00 in 5 h = 0.80 per hour
    assert evaluation.run_rate_micros_per_hour == 800_000
    # forecast: 8 + 6 + 0.8 * 10 h
    assert evaluation.forecast_micros == 8_000_000 + 6_000_000 + 8_000_000
    assert evaluation.level is BudgetLevel.OK


def test_thresholds_crossed_per_basis() -> None:
    start = 0.0
    rule = BudgetRule(1, "team-a", 10 * 1_000_000, PeriodKind.CUSTOM, custom_start=start, custom_end=10 * HOUR)
    # 1 device, running since the start: 5.00 spent at 5 h, 5.00 more forecast by the run rate.
    record = AttemptRecord(1, 1, 1, "team-a", "search", "eu", 1, start, None, AttemptState.RUNNING)

    evaluation = evaluate_records(rule, [record], RATES, 5 * HOUR, window_s=HOUR)

    assert evaluation.spent_micros == 5_000_000
    assert evaluation.forecast_micros == 10_000_000
    assert evaluation.crossed == ((Basis.ACTUAL, 50.0), (Basis.FORECAST, 50.0), (Basis.FORECAST, 80.0), (Basis.FORECAST, 100.0))


def test_committed_cut_at_period_end() -> None:
    running = AttemptRecord(1, 1, 1, "team-a", "search", "eu", 1, 0.0, None, AttemptState.RUNNING,
                            start_step=0, end_step=1, last_report_at=HOUR, max_steps=100)

    assert committed_cost([running], RATES, HOUR, 3 * HOUR) == 2_000_000


def test_committed_zero_before_first_report() -> None:
    running = AttemptRecord(1, 1, 1, "team-a", "search", "eu", 1, 0.0, None, AttemptState.RUNNING, max_steps=100)

    assert committed_cost([running], RATES, HOUR, 3 * HOUR) == 0


def test_run_rate_window_starts_at_period() -> None:
    record = AttemptRecord(1, 1, 1, "team-a", "search", "eu", 2, 0.0, None, AttemptState.RUNNING)

    rate = run_rate([record], RATES, Period(HOUR / 2, 10 * HOUR), HOUR, window_s=10 * HOUR)

    assert rate * 3600 == Decimal(2_000_000)


def test_invalid_rules_rejected() -> None:
    with pytest.raises(ValueError, match="amount must be more than 0"):
        BudgetRule(1, "team-a", 0)
    with pytest.raises(ValueError, match="at most 1000 percent"):
        BudgetRule(1, "team-a", 1, thresholds=(50.0, 5000.0))
    with pytest.raises(ValueError, match="distinct"):
        BudgetRule(1, "team-a", 1, thresholds=(50.0, 50.0))
    with pytest.raises(ValueError, match="start before its end"):
        BudgetRule(1, "team-a", 1, PeriodKind.CUSTOM, custom_start=10.0, custom_end=5.0)
    with pytest.raises(ValueError, match="soft_limit_percent"):
        BudgetRule(1, "team-a", 1, soft_limit_percent=0.0)
