"""Figures of merit: Jain's index, max-min shares, step integrals and the per-policy summary."""

from __future__ import annotations

import numpy as np
import pytest

from neurfly.core.cluster import parse_cluster
from neurfly.core.scheduling.baselines import FifoPolicy
from neurfly.sim.engine import Simulator
from neurfly.sim.metrics import (
    cumulative,
    entitlement_shares,
    integral,
    jain_index,
    summarize,
    water_fill,
    windowed_jain,
)
from neurfly.sim.results import SimulationResult, StepSeries
from neurfly.sim.trace import TraceJob


def test_jain_of_equal_shares_is_one():
    assert jain_index([0.3, 0.3, 0.3, 0.3]) == pytest.approx(1.0)


def test_jain_of_one_hog_is_one_over_n():
    assert jain_index([5.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)


@pytest.mark.parametrize("values, message", [([], "at least one"), ([1, -1], "0 or more"), ([0, 0], "every value")])
def test_jain_rejects_invalid_values(values, message):
    with pytest.raises(ValueError, match=message):
        jain_index(values)


def test_water_fill_caps_at_demand():
    shares = water_fill(10.0, np.array([2.0, 10.0, 10.0]), np.array([1.0, 1.0, 1.0]))

    assert shares == pytest.approx([2.0, 4.0, 4.0])


def test_water_fill_follows_weights():
    shares = water_fill(10.0, np.array([2.0, 10.0, 10.0]), np.array([1.0, 1.0, 2.0]))

    assert shares == pytest.approx([2.0, 8 / 3, 16 / 3])


def test_water_fill_gives_leftover_to_weight_zero():
    shares = water_fill(10.0, np.array([2.0, 5.0]), np.array([1.0, 0.0]))

    assert shares == pytest.approx([2.0, 5.0])


def test_step_series_integrals():
    series = StepSeries()
    series.record(10.0, 2.0)
    series.record(20.0, 5.0)
    series.record(20.0, 4.0)
    series.record(30.0, 0.0)

    assert series.times == [10.0, 20.0, 30.0]
    assert integral(series, 40.0) == pytest.approx(2 * 10 + 4 * 10)
    assert list(cumulative(series, np.array([0.0, 15.0, 25.0]))) == pytest.approx([0.0, 10.0, 40.0])


def test_entitlement_by_quota_then_weight():
    with_quota = parse_cluster(
        {
            "pools": [{"name": "p", "region": "r", "nodes": [{"name": "n", "devices": 4}]}],
            "teams": [{"name": "a", "quota": {"p": 3}}, {"name": "b", "quota": {"p": 1}}],
        }
    )
    by_weight = parse_cluster(
        {
            "pools": [{"name": "p", "region": "r", "nodes": [{"name": "n", "devices": 4}]}],
            "teams": [{"name": "a", "weight": 1}, {"name": "b", "weight": 3}],
        }
    )

    assert entitlement_shares(with_quota, ["a", "b"]) == {"a": 0.75, "b": 0.25}
    assert entitlement_shares(by_weight, ["a", "b"]) == {"a": 0.25, "b": 0.75}


def test_windowed_jain_against_fair_share():
    # Capacity 2 for 100 s. Team a uses both devices while team b waits for one.
    # Max-min fair shares are 100 device-seconds each; usage is 200 and 0, so x = (2, 0).
    held_a, held_b, demand_a, demand_b = StepSeries(), StepSeries(), StepSeries(), StepSeries()
    held_a.record(0.0, 2.0)
    held_a.record(100.0, 0.0)
    held_b.record(0.0, 0.0)
    demand_a.record(0.0, 0.0)
    demand_b.record(0.0, 1.0)
    demand_b.record(100.0, 0.0)
    result = SimulationResult(
        policy="p",
        jobs=[],
        capacity=2,
        end=100.0,
        devices_held=StepSeries(),
        devices_held_by_team={"a": held_a, "b": held_b},
        demand_by_team={"a": demand_a, "b": demand_b},
    )

    index, windows = windowed_jain(result, {"a": 0.5, "b": 0.5}, window_s=100.0)

    assert windows == 1
    assert index == pytest.approx(0.5)


def test_summary_of_hand_built_run():
    cluster = parse_cluster(
        {"pools": [{"name": "p", "region": "r", "hardware": "gpu", "nodes": [{"name": "n1", "devices": 4}]}]}
    )
    jobs = [
        TraceJob(0, "a", 2, 100, "search", None, "gpu"),
        TraceJob(10, "a", 4, 50, "production", None, "gpu"),
        TraceJob(20, "b", 2, 30, "search", None, "gpu"),
    ]

    metrics = summarize(Simulator(cluster, FifoPolicy()).run(jobs), cluster)

    assert metrics.completed == 3
    assert metrics.completion_time.mean == pytest.approx((100 + 140 + 160) / 3)
    assert metrics.completion_time.median == pytest.approx(140)
    assert metrics.queueing_delay.mean == pytest.approx((0 + 90 + 130) / 3)
    # Devices held: 2 for 0-100, 4 for 100-150, 2 for 150-180, out of 4 x 180.
    assert metrics.utilisation == pytest.approx((200 + 200 + 60) / 720)
    assert metrics.top_class == "production"
    assert metrics.top_class_time_to_start.mean == pytest.approx(90)
    assert metrics.preemptions == 0
    assert [team.team for team in metrics.teams] == ["a", "b"]
    assert metrics.teams[0].usage_share == pytest.approx(400 / 460)
