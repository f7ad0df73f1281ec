"""Decayed usage: the half-life rule that fair share reads."""

from __future__ import annotations

import math

import pytest

from neurfly.core.usage import UsageAccumulator, accrue, decay


def test_decay_halves_after_half_life():
    assert decay(100.0, 3600.0, 3600.0) == pytest.approx(50.0)


def test_decay_quarters_after_two_half_lives():
    assert decay(100.0, 7200.0, 3600.0) == pytest.approx(25.0)


def test_decay_of_zero_elapsed_is_identity():
    assert decay(42.0, 0.0, 10.0) == 42.0


@pytest.mark.parametrize(
    "elapsed_s, half_life_s, message",
    [(-1.0, 10.0, "elapsed_s"), (1.0, 0.0, "half_life_s"), (1.0, -5.0, "half_life_s")],
)
def test_decay_rejects_invalid_arguments(elapsed_s, half_life_s, message):
    with pytest.raises(ValueError, match=message):
        decay(1.0, elapsed_s, half_life_s)


def test_accrue_over_one_half_life():
    # The integral of 2 devices over one half-life h, decayed to its end, is 2 * h / ln 2 * (1 - 1/2).
    assert accrue(2.0, 3600.0, 3600.0) == pytest.approx(2 * 3600 / math.log(2) * 0.5)


def test_accrue_short_interval_is_device_seconds():
    assert accrue(3.0, 1e-3, 1e9) == pytest.approx(3e-3)


def test_accrue_in_steps_equals_one_step():
    whole = accrue(4.0, 10_000.0, 3000.0)

    stepped = 0.0
    for _ in range(10):
        stepped = decay(stepped, 1000.0, 3000.0) + accrue(4.0, 1000.0, 3000.0)

    assert stepped == pytest.approx(whole)


def test_accrue_rejects_negative_devices():
    with pytest.raises(ValueError, match="devices"):
        accrue(-1.0, 1.0, 1.0)


def test_accumulator_decays_and_accrues():
    usage = UsageAccumulator(half_life_s=100.0)

    usage.advance(100.0, {"a": 1.0})
    usage.advance(200.0, {"a": 0.0, "b": 2.0})

    assert usage.usage("a") == pytest.approx(accrue(1.0, 100.0, 100.0) / 2)
    assert usage.usage("b") == pytest.approx(accrue(2.0, 100.0, 100.0))
    assert usage.usage("c") == 0.0


def test_accumulator_lump_sum_decays_from_its_time():
    usage = UsageAccumulator(half_life_s=50.0)
    usage.advance(100.0)

    usage.add("a", 80.0, at=50.0)

    assert usage.usage("a") == pytest.approx(40.0)


def test_accumulator_rejects_time_going_back():
    usage = UsageAccumulator(half_life_s=50.0, start=10.0)

    with pytest.raises(ValueError, match="backwards"):
        usage.advance(5.0)


def test_accumulator_rejects_future_lump_sum():
    usage = UsageAccumulator(half_life_s=50.0)

    with pytest.raises(ValueError, match="advance first"):
        usage.add("a", 1.0, at=10.0)
