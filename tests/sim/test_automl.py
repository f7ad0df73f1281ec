"""The seeded AutoML workload generator: ASHA searches and production jobs."""

from __future__ import annotations

from collections import Counter

import pytest

from neurfly.sim.automl import AutoMLWorkload, generate_automl_trace

WORKLOAD = AutoMLWorkload(horizon_s=6 * 3600.0, searches_per_hour=4.0, production_per_hour=1.0, hardware="gpu")


def test_same_seed_same_trace():
    assert generate_automl_trace(WORKLOAD, seed=1) == generate_automl_trace(WORKLOAD, seed=1)


def test_other_seed_other_trace():
    assert generate_automl_trace(WORKLOAD, seed=1) != generate_automl_trace(WORKLOAD, seed=2)


def test_rungs_follow_reduction_factor():
    assert AutoMLWorkload(min_epochs=1, max_epochs=27, reduction_factor=3).rungs() == [1, 3, 9, 27]
    assert AutoMLWorkload(min_epochs=2, max_epochs=20, reduction_factor=3).rungs() == [2, 6, 18, 20]


def test_most_trials_stop_at_first_rung():
    workload = AutoMLWorkload(horizon_s=48 * 3600.0, production_per_hour=0.0, epoch_s=100.0)
    trials = generate_automl_trace(workload, seed=0)
    rungs = workload.rungs()
    # Each trial's epoch length is within +-20 % of epoch_s, so its rung is the nearest one.
    stopped_at = Counter(min(rungs, key=lambda r: abs(job.duration / 100.0 - r)) for job in trials)
    total = len(trials)

    assert stopped_at[1] / total == pytest.approx(2 / 3, abs=0.03)
    assert stopped_at[3] / total == pytest.approx(2 / 9, abs=0.03)
    assert stopped_at[27] / total == pytest.approx(1 / 27, abs=0.01)


def test_searches_and_production_marked():
    jobs = generate_automl_trace(WORKLOAD, seed=3)
    trials = [job for job in jobs if job.priority == "search"]
    production = [job for job in jobs if job.priority == "production"]
    per_search = Counter(job.search_id for job in trials)

    assert trials and production
    assert set(per_search.values()) == {WORKLOAD.trials_per_search}
    assert {job.max_concurrent for job in trials} == {WORKLOAD.max_concurrent}
    assert {job.devices for job in production} <= set(WORKLOAD.production_devices)
    assert all(job.hardware == "gpu" for job in jobs)
    assert [job.arrival for job in jobs] == sorted(job.arrival for job in jobs)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"teams": ()}, "teams"),
        ({"reduction_factor": 1}, "reduction_factor"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"trials_per_search": 0}, "trials_per_search"),
        ({"horizon_s": 0}, "horizon_s"),
    ],
)
def test_invalid_workload_rejected(fields, message):
    with pytest.raises(ValueError, match=message):
        AutoMLWorkload(**fields)
