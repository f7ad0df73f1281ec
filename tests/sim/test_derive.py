"""The stated, seeded rule that fills priorities, searches and hardware a trace lacks."""

from __future__ import annotations

import pytest

from neurfly.core.cluster import parse_cluster
from neurfly.sim.derive import DerivationRule, derive_missing
from neurfly.sim.trace import TraceError, TraceJob

CLUSTER = parse_cluster(
    {
        "pools": [
            {"name": "big", "region": "eu", "hardware": "gpu", "nodes": [{"name": "g", "devices": 8}]},
            {"name": "small", "region": "eu", "hardware": "cpu", "nodes": [{"name": "c", "devices": 2}]},
        ]
    }
)


def bare(arrival: float, team: str = "a", devices: int = 1, **fields) -> TraceJob:
    return TraceJob(arrival=arrival, team=team, devices=devices, duration=10.0, **fields)


def test_burst_becomes_one_search():
    jobs = [bare(0), bare(100), bare(350), bare(2000), bare(50, team="b"), bare(60, devices=2)]

    completed, derivation = derive_missing(jobs, CLUSTER, DerivationRule(search_gap_s=300))
    ids = [job.search_id for job in completed]

    assert ids[0] == ids[1] == ids[2]
    assert len(set(ids)) == 4
    assert derivation.searches_derived == 4
    assert derivation.jobs_in_derived_searches == 3
    assert [job.priority for job in completed[:3]] == ["search"] * 3


def test_given_values_kept():
    jobs = [bare(0, priority="best-effort", search_id="mine", hardware="cpu")]

    completed, derivation = derive_missing(jobs, CLUSTER)

    assert completed[0] == jobs[0]
    assert derivation.priorities_derived == {}
    assert derivation.hardware is None


def test_hardware_with_most_devices():
    completed, derivation = derive_missing([bare(0)], CLUSTER)

    assert completed[0].hardware == "gpu"
    assert derivation.hardware == "gpu"


def test_production_fraction_seeded():
    jobs = [bare(index * 10_000.0) for index in range(2000)]
    rule = DerivationRule(seed=7, production_fraction=0.25)

    first, derivation = derive_missing(jobs, CLUSTER, rule)
    second, _ = derive_missing(jobs, CLUSTER, rule)
    other, _ = derive_missing(jobs, CLUSTER, DerivationRule(seed=8, production_fraction=0.25))
    production = derivation.priorities_derived["production"]

    assert first == second
    assert first != other
    assert 400 < production < 600
    assert derivation.priorities_derived["interactive"] == 2000 - production


def test_description_states_numbers():
    _, derivation = derive_missing([bare(0)], CLUSTER, DerivationRule(seed=3, production_fraction=0.5))

    text = derivation.describe()

    assert "seed 3" in text
    assert "probability 0.5" in text
    assert "300 s" in text


def test_unknown_priority_named():
    with pytest.raises(TraceError, match=r"\['urgent'\] are not in the cluster"):
        derive_missing([bare(0, priority="urgent")], CLUSTER)


def test_unknown_hardware_named():
    with pytest.raises(TraceError, match=r"\['tpu'\] match no pool"):
        derive_missing([bare(0, hardware="tpu")], CLUSTER)


@pytest.mark.parametrize("fields", [{"production_fraction": 1.5}, {"search_gap_s": -1}])
def test_rule_rejects_invalid_values(fields):
    with pytest.raises(ValueError, match=next(iter(fields))):
        DerivationRule(**fields)


def test_description_when_nothing_derived():
    complete = [bare(0, priority="search", search_id="s", hardware="gpu")]

    _, derivation = derive_missing(complete, CLUSTER)

    assert derivation.describe().startswith("- Nothing was derived")
