"""Helpers of the simulator tests: small clusters, jobs, test policies and trace files.

The helpers are handed to tests as fixtures because the suite imports test
modules by path, so a helper module beside them is not importable by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from neurfly.core.cluster import ClusterConfig, parse_cluster
from neurfly.core.scheduling import Decision, Preempt, SchedulingPolicy, Snapshot
from neurfly.core.scheduling.baselines import FifoPolicy
from neurfly.sim.trace import TraceJob


def make_cluster(nodes: dict[str, int] | None = None, **fields: Any) -> ClusterConfig:
    """Return a cluster of one gpu pool with ``nodes`` (name to devices), plus any top-level fields."""
    nodes = nodes or {"n1": 4}
    document = {
        "pools": [
            {
                "name": "p",
                "region": "eu",
                "hardware": "gpu",
                "nodes": [{"name": name, "devices": devices} for name, devices in nodes.items()],
            }
        ],
        **fields,
    }
    return parse_cluster(document)


def job(arrival: float, devices: int, duration: float, team: str = "a", priority: str = "search", **fields) -> TraceJob:
    """Return a complete trace job on gpu hardware."""
    return TraceJob(
        arrival=arrival, team=team, devices=devices, duration=duration, priority=priority, hardware="gpu", **fields
    )


class PreemptOncePolicy(SchedulingPolicy):
    """FIFO, plus one preemption of ``attempt_id`` for ``for_trial`` at exactly ``at``."""

    name = "preempt-once"

    def __init__(self, at: float, attempt_id: int, for_trial: int) -> None:
        self.at = at
        self.attempt_id = attempt_id
        self.for_trial = for_trial

    def schedule(self, snapshot: Snapshot) -> list[Decision]:
        decisions: list[Decision] = []
        if snapshot.now == self.at:
            decisions.append(Preempt(self.attempt_id, self.for_trial, reason="test"))
        return decisions + FifoPolicy().schedule(snapshot)


class RecordingPolicy(SchedulingPolicy):
    """Wraps a policy and keeps every snapshot it is given."""

    name = "recording"

    def __init__(self, inner: SchedulingPolicy | None = None) -> None:
        self.inner = inner or FifoPolicy()
        self.snapshots: list[Snapshot] = []

    def schedule(self, snapshot: Snapshot) -> list[Decision]:
        self.snapshots.append(snapshot)
        return self.inner.schedule(snapshot)


class ScriptedPolicy(SchedulingPolicy):
    """Returns the decisions a script gives for ``snapshot.now`` (nothing at other times)."""

    name = "scripted"

    def __init__(self, script: dict[float, Callable[[Snapshot], list[Decision]]]) -> None:
        self.script = script

    def schedule(self, snapshot: Snapshot) -> list[Decision]:
        step = self.script.get(snapshot.now)
        return step(snapshot) if step else []


@pytest.fixture
def cluster_of() -> Callable[..., ClusterConfig]:
    """``cluster_of(nodes, **fields)``: a one-pool gpu cluster."""
    return make_cluster


@pytest.fixture
def gpu_job() -> Callable[..., TraceJob]:
    """``gpu_job(arrival, devices, duration, team="a", priority="search", **fields)``."""
    return job


@pytest.fixture
def preempt_once() -> type[PreemptOncePolicy]:
    return PreemptOncePolicy


@pytest.fixture
def recording() -> type[RecordingPolicy]:
    return RecordingPolicy


@pytest.fixture
def scripted() -> type[ScriptedPolicy]:
    return ScriptedPolicy


@pytest.fixture
def small_trace_file(tmp_path):
    """A neutral CSV of two teams' jobs on a 4-device node, with priorities and searches given."""
    path = tmp_path / "trace.csv"
    path.write_text(
        "arrival,team,devices,duration,priority,search_id\n"
        "0,a,2,100,search,s1\n"
        "10,a,4,50,production,\n"
        "20,b,2,30,search,s2\n"
        "25,b,1,400,search,s2\n"
        "30,b,8,10,search,\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def small_cluster_file(tmp_path):
    """A cluster YAML with one 4-device node and teams a and b with equal quotas."""
    path = tmp_path / "cluster.yaml"
    path.write_text(
        "pools:\n"
        "  - name: p\n"
        "    region: eu\n"
        "    hardware: gpu\n"
        "    nodes: [{name: n1, devices: 4}]\n"
        "teams:\n"
        "  - {name: a, quota: {p: 2}}\n"
        "  - {name: b, quota: {p: 2}}\n",
        encoding="utf-8",
    )
    return path
