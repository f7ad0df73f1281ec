"""Cluster views: slots in use, per-team usage and utilisation buckets from attempt records."""

from __future__ import annotations

import time

import pytest

from neurfly.store import Attempt
from api.conftest import Api

API = "/api/v1"


def _attempt(api: Api, team: str, pool: str, node: str, started: float, ended: float | None, devices: int = 1) -> None:
    with api.store.session() as session:
        search_id = api.world.searches["a" if team == "team-a" else "b"]
        trial_id = api.world.trials["a0" if team == "team-a" else "b0"]
        number = session.query(Attempt).filter(Attempt.trial_id == trial_id).count() + 1
        session.add(Attempt(
            trial_id=trial_id, search_id=search_id, number=number, state="completed" if ended else "running", executor="local",
            pool=pool, node=node, slots=list(range(devices)), devices=devices, started_at=started, ended_at=ended,
            start_step=0, progress_lost=0, data_versions={},
        ))
        session.commit()


def test_utilisation_averages_devices_per_bucket(api: Api) -> None:
    until = time.time() + 10_000
    _attempt(api, "team-a", "us-local", "us-node-1", until - 100, until - 50, devices=2)

    response = api.call("GET", f"{API}/cluster/utilisation?window_s=100&buckets=4&until={until}", "a-viewer")

    assert response.status_code == 200
    body = response.json()
    assert body["bucket_s"] == 25
    assert body["capacity"] == {"eu-local": 2, "us-local": 2}
    series = {(s["team"], s["pool"]): s["devices"] for s in body["series"]}
    assert series[("team-a", "us-local")] == pytest.approx([2.0, 2.0, 0.0, 0.0])


def test_utilisation_hides_other_teams(api: Api) -> None:
    until = time.time() + 10_000
    _attempt(api, "team-b", "eu-local", "eu-node-1", until - 60, until - 30)

    as_a = api.call("GET", f"{API}/cluster/utilisation?window_s=60&buckets=2&until={until}", "a-viewer").json()
    as_root = api.call("GET", f"{API}/cluster/utilisation?window_s=60&buckets=2&until={until}", "root").json()

    hidden = {s["pool"]: s["devices"] for s in as_a["series"] if s["team"] is None}
    assert "team-b" not in {s["team"] for s in as_a["series"]}
    assert ("team-b", "eu-local") in {(s["team"], s["pool"]) for s in as_root["series"]}
    assert hidden["eu-local"] == pytest.approx([1.0, 0.0])


def test_cluster_state_counts_slots(api: Api) -> None:
    body = api.call("GET", f"{API}/cluster", "a-viewer").json()

    pools = {p["name"]: p for p in body["pools"]}
    assert pools["eu-local"]["devices_in_use"] == 1
    assert pools["us-local"]["devices_in_use"] == 1
    assert [a["trial_number"] for a in body["running_attempts"]] == [2]
    usage = {u["team"]: u for u in body["usage"]}
    assert usage["team-a"]["devices_in_use"] == {"eu-local": 1}
    assert usage[None]["devices_in_use"] == {"us-local": 1}
    assert usage["team-a"]["device_seconds"]["eu-local"] > 0
    assert body["controller"] == {"running": False, "holder": None, "in_this_process": False}


def test_window_before_epoch_rejected(api: Api) -> None:
    response = api.call("GET", f"{API}/cluster/utilisation?window_s=100&until=10", "a-viewer")

    assert response.status_code == 400
    assert "before 1970" in response.json()["detail"]
