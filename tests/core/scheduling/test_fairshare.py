"""The Slurm fair-share factor and the team ranking derived from it."""

from __future__ import annotations

import itertools
import math

import pytest

from neurfly.core.scheduling._fairshare import fair_share_factor, fair_share_rank


@pytest.mark.parametrize(
    ("usage", "weight", "total_usage", "total_weight", "expected"),
    [
        (0.0, 1.0, 0.0, 2.0, 1.0),
        (50.0, 1.0, 100.0, 2.0, 0.5),
        (100.0, 1.0, 100.0, 2.0, 0.25),
        (0.0, 1.0, 100.0, 2.0, 1.0),
        (25.0, 3.0, 100.0, 4.0, 2.0 ** (-0.25 / 0.75)),
        (100.0, 0.0, 100.0, 1.0, 0.0),
        (0.0, 0.0, 0.0, 0.0, 0.0),
    ],
)
def test_factor_matches_slurm_formula(usage, weight, total_usage, total_weight, expected):
    assert fair_share_factor(usage, weight, total_usage, total_weight) == pytest.approx(expected)


def test_factor_is_never_nan():
    values = [0.0, 1e-300, 1.0, 1e300]
    for usage, weight, total_usage, total_weight in itertools.product(values, repeat=4):
        if usage > total_usage or weight > total_weight:
            continue
        factor = fair_share_factor(usage, weight, total_usage, total_weight)
        assert not math.isnan(factor)
        assert 0.0 <= factor <= 1.0


def test_factor_rejects_value_above_total():
    with pytest.raises(ValueError, match="must not exceed their totals"):
        fair_share_factor(10.0, 1.0, 5.0, 1.0)


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_factor_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="finite number"):
        fair_share_factor(bad, 1.0, 1.0, 1.0)


def test_rank_orders_like_factor():
    teams = [(0.0, 1.0), (10.0, 1.0), (10.0, 4.0), (40.0, 2.0), (5.0, 0.0), (0.0, 0.0)]
    total_usage = sum(usage for usage, _ in teams)
    total_weight = sum(weight for _, weight in teams)

    by_rank = sorted(teams, key=lambda team: fair_share_rank(*team))
    by_factor = sorted(teams, key=lambda team: (-fair_share_factor(team[0], team[1], total_usage, total_weight), team[0]))

    assert by_rank == by_factor


def test_rank_puts_weight_zero_last():
    assert fair_share_rank(1e12, 1.0) < fair_share_rank(0.0, 0.0)
