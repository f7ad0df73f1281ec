"""Residency: a search on EU-only data runs only on EU pools, waits or is rejected when they are full."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from neurfly.controller import Controller, ControllerSettings
from neurfly.core.cluster import default_cluster
from neurfly.core.scheduling.default import DefaultPolicy
from neurfly.errors import SpecError
from neurfly.executors.local import LocalExecutor
from neurfly.governance import AttemptInput, AuditRecord, Sensitivity
from neurfly.store import Store
from gov_support import TEAM_A, attempts_of, noop_spec, register_csv, search_row, submit, trials_of, write_csv


@pytest.fixture
def eu_data(store: Store, tmp_path: Path) -> str:
    return register_csv(store, TEAM_A, "eu-customers", write_csv(tmp_path / "eu.csv", 40), Sensitivity.CONFIDENTIAL, regions=("eu-west",))


def test_unservable_region_rejected(store: Store, tmp_path: Path) -> None:
    register_csv(store, TEAM_A, "apac", write_csv(tmp_path / "apac.csv", 20), Sensitivity.INTERNAL, regions=("ap-south",))

    with pytest.raises(SpecError) as caught:
        submit(store, noop_spec("apac-search", "team-a", data={"training": "team-a/apac"}))

    message = str(caught.value)
    assert "team-a/apac@sha256:" in message
    assert "ap-south" in message
    assert "eu-local (eu-west, cpu)" in message
    assert "us-local (us-east, cpu)" in message
    with store.session() as session:
        denial = session.scalars(select(AuditRecord).where(AuditRecord.action == "place")).one()
    assert denial.decision == "deny"


def test_disjoint_regions_rejected(store: Store, eu_data: str, tmp_path: Path) -> None:
    register_csv(store, TEAM_A, "us-holdout", write_csv(tmp_path / "us.csv", 20), Sensitivity.INTERNAL, regions=("us-east",))

    with pytest.raises(SpecError, match="share no region"):
        submit(store, noop_spec("split", "team-a", data={"training": "team-a/eu-customers", "validation": "team-a/us-holdout"}))


@pytest.mark.slow
def test_eu_search_waits_for_eu_pool(store: Store, home: Path, eu_data: str) -> None:
    filler = submit(store, noop_spec("filler", "team-a", data={"training": "team-a/eu-customers"},
                                     budget={"max_trials": 2, "max_concurrent_trials": 2, "max_steps": 8}, fixed={"sleep_s": 0.25}))
    controller = Controller(store, default_cluster(), LocalExecutor(), settings=ControllerSettings(checkpoint_root=str(home / "checkpoints")))
    state: dict[str, object] = {}

    def on_tick() -> None:
        running = [a for a in attempts_of(store, filler) if a.ended_at is None and a.pool == "eu-local"]
        if "waiting" not in state and len(running) == 2:
            state["waiting"] = submit(store, noop_spec("waits", "team-a", data={"training": "team-a/eu-customers"}))
            with pytest.raises(SpecError) as caught:
                submit(store, noop_spec("impatient", "team-a", data={"training": "team-a/eu-customers", "when_pools_busy": "reject"}))
            state["rejection"] = str(caught.value)
        if "waiting" in state and len(running) == 2:
            # Both EU slots are taken and us-local is idle: the waiting search must not start anywhere.
            state.setdefault("checks", 0)
            state["checks"] = int(state["checks"]) + 1
            assert attempts_of(store, int(state["waiting"])) == []

    controller.start()
    try:
        deadline = time.monotonic() + 90
        controller.run(until=lambda: ("waiting" in state and not controller.searches) or time.monotonic() > deadline, on_tick=on_tick)
    finally:
        controller.stop(grace_s=5.0)

    waiting = int(state["waiting"])
    assert search_row(store, waiting).state == "completed"
    assert int(state["checks"]) > 3
    assert {a.pool for a in attempts_of(store, filler) + attempts_of(store, waiting)} == {"eu-local"}
    first_end = min(a.ended_at for a in attempts_of(store, filler))
    assert attempts_of(store, waiting)[0].started_at >= first_end
    assert "every pool allowed for team-a/eu-customers@sha256:" in str(state["rejection"])
    assert "eu-local (eu-west) 2/2 devices in use" in str(state["rejection"])


class RegionBlindPolicy(DefaultPolicy):
    """A policy that drops every region constraint, to exercise the launch-time guard."""

    def schedule(self, snapshot):  # noqa: ANN001, ANN201 - the SchedulingPolicy signature
        pending = tuple(dataclasses.replace(p, allowed_regions=None) for p in snapshot.pending)
        return super().schedule(dataclasses.replace(snapshot, pending=pending))


@pytest.mark.slow
def test_guard_withholds_data_from_wrong_region(store: Store, home: Path, eu_data: str) -> None:
    search_id = submit(store, noop_spec("misplaced", "team-a", data={"training": "team-a/eu-customers"},
                                        budget={"max_trials": 1, "max_concurrent_trials": 1, "max_steps": 40, "max_retries": 0},
                                        fixed={"sleep_s": 0.1}))
    controller = Controller(store, default_cluster(), LocalExecutor(), policy=RegionBlindPolicy(),
                            settings=ControllerSettings(checkpoint_root=str(home / "checkpoints")))
    controller.start()
    try:
        controller.run(until=lambda: search_id not in controller.searches)
    finally:
        controller.stop(grace_s=5.0)

    attempt = attempts_of(store, search_id)[0]
    assert attempt.pool == "us-local"
    assert attempt.state == "failed"
    assert attempt.reason == "killed by the controller"
    assert (attempt.end_step or 0) < 40
    assert trials_of(store, search_id)[0].state == "failed"
    with store.session() as session:
        assert session.scalars(select(AttemptInput).where(AttemptInput.attempt_id == attempt.id)).all() == []
        denial = session.scalars(select(AuditRecord).where(AuditRecord.action == "place", AuditRecord.decision == "deny")).one()
    assert "us-east" in denial.reason
