"""Pricing, idle cost and the capacity identity of cost reports, on chosen records."""

from __future__ import annotations

import random
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from neurfly.accounting import report_csv_rows, report_to_dict
from neurfly.accounting.metering import AttemptRecord, meter
from neurfly.accounting.money import cost_micros, format_micros, parse_amount, round_to_cents, split_proportionally
from neurfly.accounting.pricing import pool_rates
from neurfly.accounting.report import PLATFORM, build_report
from neurfly.core.cluster import IdleCostPolicy, parse_cluster
from neurfly.core.states import AttemptState

T0 = 1_800_000_000.0


def _cluster(**extra):
    document = {
        "pools": [
            {"name": "gpu-eu", "region": "eu", "hardware": "h100", "price_per_device_hour": 2.37,
             "nodes": [{"name": "eu-1", "devices": 4}, {"name": "eu-2", "devices": 4}]},
            {"name": "cpu-us", "region": "us", "hardware": "cpu", "price_per_device_hour": 0.113,
             "nodes": [{"name": "us-1", "devices": 3}]},
        ],
    }
    document.update(extra)
    return parse_cluster(document)


def _random_records(seed: int, window: float) -> list[AttemptRecord]:
    """Attempts that never exceed a node's devices: each slot runs one attempt after another."""
    rng = random.Random(seed)
    records = []
    attempt_id = 0
    for pool, slots in (("gpu-eu", 8), ("cpu-us", 3)):
        for slot in range(slots):
            at = T0 + rng.uniform(0, 600)
            while at < T0 + window:
                attempt_id += 1
                length = rng.uniform(1.0, 900.0) + rng.random() / 7
                end = at + length
                records.append(AttemptRecord(
                    attempt_id=attempt_id, trial_id=attempt_id, search_id=1 + attempt_id % 5, team=f"team-{attempt_id % 3}",
                    priority="search", pool=pool, devices=1, started_at=at, ended_at=end if end < T0 + window else None,
                    state=AttemptState.COMPLETED if end < T0 + window else AttemptState.RUNNING, search_name=f"s{slot}",
                ))
                at = end + rng.uniform(0, 300)
    return records


@pytest.mark.parametrize("policy", [IdleCostPolicy.PLATFORM, IdleCostPolicy.SHARED])
def test_team_cost_plus_idle_equals_capacity(policy: IdleCostPolicy) -> None:
    cluster = _cluster(idle_cost_policy=policy.value)
    window = 6 * 3600.0 + 0.123
    now = T0 + window - 17.5
    records = _random_records(7, window)

    report = build_report(meter(records, T0, T0 + window, now), pool_rates(cluster), T0, T0 + window, now, policy)

    # Capacity times price over the metered period, computed apart from the report.
    seconds = Decimal(repr(now)) - Decimal(repr(T0))
    expected = (8 * Decimal("2.37") + 3 * Decimal("0.113")) * seconds / 3600
    expected_cents = expected.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    team_total = sum(t.total_micros for t in report.teams)
    total_cents = Decimal(round_to_cents(team_total + report.platform_idle_micros)) / 1_000_000
    assert total_cents == expected_cents
    assert team_total + report.platform_idle_micros == sum(p.capacity_micros for p in report.pools)
    assert report.total_micros == sum(p.capacity_micros for p in report.pools)
    assert not report.warnings


def test_idle_cost_matches_idle_device_seconds() -> None:
    cluster = _cluster()
    window = 3 * 3600.0
    records = _random_records(3, window)

    report = build_report(meter(records, T0, T0 + window, T0 + window), pool_rates(cluster), T0, T0 + window, T0 + window)

    for pool in report.pools:
        attempts = sum(1 for r in records if r.pool == pool.pool)
        direct = cost_micros(pool.idle_device_seconds, pool.price_per_device_hour)
        # Usage is rounded per attempt, so the idle remainder may differ by half a micro-unit per attempt.
        assert abs(pool.idle_micros - direct) <= attempts
        assert pool.idle_device_seconds + pool.used_device_seconds == pool.capacity_device_seconds


def test_shared_idle_split_by_usage() -> None:
    cluster = _cluster(idle_cost_policy="shared")
    hour = 3600.0
    records = [
        AttemptRecord(1, 1, 1, "team-a", "search", "cpu-us", 1, T0, T0 + hour, AttemptState.COMPLETED),
        AttemptRecord(2, 2, 2, "team-b", "search", "cpu-us", 2, T0, T0 + hour, AttemptState.COMPLETED),
    ]

    report = build_report(meter(records, T0, T0 + 2 * hour, T0 + 2 * hour), pool_rates(cluster), T0, T0 + 2 * hour, T0 + 2 * hour,
                          IdleCostPolicy.SHARED)

    cpu = next(p for p in report.pools if p.pool == "cpu-us")
    assert cpu.idle_micros == 3 * 113_000
    assert report.idle_shares["team-a"]["cpu-us"] == 113_000
    assert report.idle_shares["team-b"]["cpu-us"] == 226_000
    teams = {t.team: t for t in report.teams}
    assert teams["team-a"].total_micros == 113_000 + 113_000
    # No team used the GPU pool, so its idle cost stays with the platform.
    assert report.platform_idle_micros == 8 * 2 * 2_370_000
    assert any("stays with the platform" in w for w in report.warnings)


def test_billing_weight_scales_pool_price() -> None:
    cluster = _cluster(billing_weights={"h100": 1.5})
    record = AttemptRecord(1, 1, 1, "team-a", "search", "gpu-eu", 2, T0, T0 + 3600.0, AttemptState.COMPLETED)

    rates = pool_rates(cluster)
    report = build_report(meter([record], T0, T0 + 3600.0, T0 + 3600.0), rates, T0, T0 + 3600.0, T0 + 3600.0)

    assert rates["gpu-eu"].price_per_device_hour == Decimal("3.555")
    assert rates["cpu-us"].price_per_device_hour == Decimal("0.113")
    assert report.teams[0].usage_micros == 2 * 3_555_000


def test_unknown_pool_priced_zero_with_warning() -> None:
    record = AttemptRecord(1, 1, 1, "team-a", "search", "retired-pool", 1, T0, T0 + 60.0, AttemptState.COMPLETED)

    report = build_report(meter([record], T0, T0 + 60.0, T0 + 60.0), pool_rates(_cluster()), T0, T0 + 60.0, T0 + 60.0)

    assert report.teams[0].usage_micros == 0
    assert report.teams[0].device_seconds == Decimal(60)
    assert any("retired-pool" in w and "price_per_device_hour" in w for w in report.warnings)


def test_overbooked_pool_warns() -> None:
    records = [
        AttemptRecord(i, i, 1, "team-a", "search", "cpu-us", 2, T0, T0 + 60.0, AttemptState.COMPLETED) for i in range(1, 4)
    ]

    report = build_report(meter(records, T0, T0 + 60.0, T0 + 60.0), pool_rates(_cluster()), T0, T0 + 60.0, T0 + 60.0)

    cpu = next(p for p in report.pools if p.pool == "cpu-us")
    assert cpu.idle_micros < 0
    assert any("cpu-us" in w and "device-seconds" in w for w in report.warnings)


def test_csv_amounts_sum_to_capacity() -> None:
    cluster = _cluster(idle_cost_policy="shared")
    window = 2 * 3600.0
    report = build_report(meter(_random_records(11, window), T0, T0 + window, T0 + window), pool_rates(cluster),
                          T0, T0 + window, T0 + window, IdleCostPolicy.SHARED)

    rows = report_csv_rows(report)
    described = report_to_dict(report)

    assert sum(parse_amount(row["amount"]) for row in rows) == sum(p.capacity_micros for p in report.pools)
    assert {row["kind"] for row in rows} <= {"usage", "idle_share", "idle"}
    assert described["total"] == format_micros(report.total_micros, 6)
    assert all(row["team"] != PLATFORM for row in rows if row["kind"] == "usage")


def test_money_helpers() -> None:
    assert parse_amount("1250.50") == 1_250_500_000
    assert parse_amount(0.8) == 800_000
    assert format_micros(1_234_567) == "1.23"
    assert format_micros(1_235_000) == "1.24"
    assert format_micros(-5_000_000, 6) == "-5.000000"
    assert round_to_cents(1_005_000) == 1_000_000
    assert cost_micros(Decimal(1800), Decimal("0.8")) == 400_000
    assert split_proportionally(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    with pytest.raises(ValueError, match="more than 6 decimals"):
        parse_amount("0.0000001")
    with pytest.raises(ValueError, match="not a number"):
        parse_amount("ten")
    with pytest.raises(ValueError, match="not a finite number"):
        parse_amount("inf")
    with pytest.raises(ValueError, match="at least one weight"):
        split_proportionally(10, {"a": 0})
