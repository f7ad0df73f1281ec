"""The accounting service's hooks on a real store, driven tick by tick with chosen times and no workers."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from neurfly.accounting import AccountingService, BudgetLevel, BudgetState, PeriodKind, set_budget
from neurfly.accounting.service import AccountingSettingsError, interval_from_env
from neurfly.controller import Outbox
from neurfly.controller.runtime import AttemptRuntime, build_strategy
from neurfly.core.cluster import default_cluster
from neurfly.core.scheduling.snapshot import Node, PendingTrial, Pool, PriorityClass, Reservation, Snapshot
from neurfly.core.spec import parse_spec
from neurfly.core.states import StopRequest
from neurfly.monitoring.alerts import Alert
from neurfly.store import Event, Search, Store
from support import make_spec

START = time.time() - 1800


class _Transitions:
    def __init__(self) -> None:
        self.marked: list[tuple[int, str]] = []

    def mark_stop_requested(self, session, attempt: AttemptRuntime, why: str) -> None:  # noqa: ANN001 - a Session
        self.marked.append((attempt.id, why))


def _controller(clock: list[float], searches: dict, attempts: dict) -> SimpleNamespace:
    return SimpleNamespace(
        clock=lambda: clock[0], cluster=default_cluster(), searches=searches, attempts=attempts, transitions=_Transitions(),
    )


def _search(store: Store, team: str) -> SimpleNamespace:
    spec, _ = parse_spec(make_spec(team=team, budget={"max_trials": 2, "max_steps": 10}))
    with store.session() as session:
        row = Search(name="probe", team=team, state="running", spec={}, strategy="random", objective_metric="objective",
                     direction="minimize", max_trials=2, priority="search", cancel_requested=False, created_at=START)
        session.add(row)
        session.commit()
    return SimpleNamespace(id=row.id, team=team, spec=spec, strategy=build_strategy(spec))


def _tick(service: AccountingService, store: Store, controller: SimpleNamespace, now: float) -> Outbox:
    outbox = Outbox()
    with store.session() as session:
        service.on_tick(controller, session, now, outbox)
        session.commit()
    return outbox


@pytest.fixture
def hard_setup(store: Store) -> tuple[AccountingService, SimpleNamespace, list[float], int]:
    team_a = _search(store, "team-a")
    team_b = _search(store, "team-b")
    budget = set_budget(store, "team-a", "0.5", period=PeriodKind.CUSTOM, period_start=START, period_end=START + 7200,
                        soft_limit_percent=80.0, hard_limit_percent=100.0, actor="test", now=START)
    # One device each on eu-local at 1.00 per device-hour, from START + 60.
    attempts = {
        1: AttemptRuntime(1, 11, team_a.id, "eu-local", "eu-node-1", (0,), START + 60, 0),
        2: AttemptRuntime(2, 21, team_b.id, "eu-local", "eu-node-1", (1,), START + 60, 0),
    }
    clock = [START + 60]
    controller = _controller(clock, {team_a.id: team_a, team_b.id: team_b}, attempts)
    service = AccountingService(interval_s=30.0)
    with store.session() as session:
        service.on_start(controller, session)
        session.commit()
    return service, controller, clock, budget["id"]


def test_levels_follow_spend_tick_by_tick(store: Store, hard_setup) -> None:
    service, controller, clock, budget_id = hard_setup
    team_a = next(s for s in controller.searches.values() if s.team == "team-a")

    levels = []
    for minutes in (20, 25, 29, 31):
        clock[0] = START + 60 + minutes * 60
        _tick(service, store, controller, clock[0])
        levels.append(service.level_for("team-a", team_a.id))

    # 0.5 is 30 device-minutes: soft at 24 minutes (80 percent), hard at 30.
    assert levels == [BudgetLevel.OK, BudgetLevel.SOFT, BudgetLevel.SOFT, BudgetLevel.HARD]
    with store.session() as session:
        state = session.get(BudgetState, budget_id)
        changes = session.scalars(select(Event.message).where(Event.kind == "budget.level")).all()
    assert state.level == "hard"
    assert len(changes) == 2


def test_hard_limit_stops_once_per_attempt(store: Store, hard_setup) -> None:
    service, controller, clock, budget_id = hard_setup

    outboxes = []
    for minutes in (31, 31.1, 31.2):
        clock[0] = START + 60 + minutes * 60
        outboxes.append(_tick(service, store, controller, clock[0]))

    assert outboxes[0].stops == [(1, StopRequest.PREEMPT)]
    assert outboxes[1].stops == []
    assert outboxes[2].stops == []
    assert controller.attempts[1].stop_requested is StopRequest.PREEMPT
    assert controller.attempts[2].stop_requested is None
    assert controller.transitions.marked == [(1, f"hard limit of budget {budget_id} reached")]
    with store.session() as session:
        events = session.scalars(select(Event).where(Event.kind == "attempt.preempting")).all()
    assert [(e.attempt_id, e.data["budget_id"]) for e in events] == [(1, budget_id)]


def test_alerts_fire_once_per_key(store: Store, hard_setup) -> None:
    service, controller, clock, budget_id = hard_setup

    for minutes in range(20, 40):
        clock[0] = START + 60 + minutes * 60
        _tick(service, store, controller, clock[0])
    restarted = AccountingService(interval_s=30.0)
    with store.session() as session:
        restarted.on_start(controller, session)
        session.commit()
    _tick(restarted, store, controller, clock[0] + 1)

    with store.session() as session:
        alerts = session.scalars(select(Alert)).all()
    actual = sorted(a.key.rsplit(":", 2)[1:] for a in alerts if ":actual:" in a.key)
    assert actual == [["actual", "100"], ["actual", "50"], ["actual", "80"]]
    assert all(a.count == 1 for a in alerts)
    assert all(a.key.startswith(f"budget:{budget_id}:") for a in alerts)


def test_hard_limit_hides_pending_and_reservations(store: Store, hard_setup) -> None:
    service, controller, clock, _ = hard_setup
    team_a = next(s for s in controller.searches.values() if s.team == "team-a")
    team_b = next(s for s in controller.searches.values() if s.team == "team-b")
    clock[0] = START + 60 + 31 * 60
    _tick(service, store, controller, clock[0])
    snapshot = Snapshot(
        now=clock[0],
        pools=(Pool("eu-local", "eu-west", "cpu"),),
        nodes=(Node("eu-node-1", "eu-local", 2),),
        priority_classes=(PriorityClass("best-effort", 0), PriorityClass("search", 100)),
        pending=(PendingTrial(12, team_a.id, "team-a", "search", 1, "cpu", 0.0), PendingTrial(22, team_b.id, "team-b", "search", 1, "cpu", 0.0)),
        reservations=(Reservation(12, "eu-node-1", (0,), 0.0), Reservation(22, "eu-node-1", (1,), 0.0)),
    )

    refined = service.refine_snapshot(controller, snapshot)

    assert [p.trial_id for p in refined.pending] == [22]
    assert [r.trial_id for r in refined.reservations] == [22]
    assert refined.pending[0].priority == "search"


def test_ended_attempts_accrue_once(store: Store, hard_setup) -> None:
    service, controller, clock, budget_id = hard_setup
    clock[0] = START + 60 + 10 * 60
    _tick(service, store, controller, clock[0])
    before = service.evaluations()[budget_id].spent_micros

    runtime = controller.attempts.pop(1)
    with store.session() as session:
        row = SimpleNamespace(id=1, trial_id=runtime.trial_id, search_id=runtime.search_id, state="preempted", pool="eu-local",
                              devices=1, started_at=runtime.started_at, ended_at=clock[0], start_step=0, end_step=None,
                              last_report_at=None, progress_lost=0)
        service.on_attempt_ended(controller, session, row)
    _tick(service, store, controller, clock[0])
    clock[0] += 600
    _tick(service, store, controller, clock[0])

    # Ten minutes on one device is 1/6 of 1.00, and the spend stays there after the attempt ended.
    assert before == 166_667
    assert service.evaluations()[budget_id].spent_micros == 166_667


def test_interval_setting_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NEURFLY_ACCOUNTING_INTERVAL_S", raising=False)
    assert interval_from_env() == 5.0
    monkeypatch.setenv("NEURFLY_ACCOUNTING_INTERVAL_S", "0.5")
    assert AccountingService().interval_s == 0.5
    for bad in ("soon", "0", "-1", "inf"):
        monkeypatch.setenv("NEURFLY_ACCOUNTING_INTERVAL_S", bad)
        with pytest.raises(AccountingSettingsError, match="NEURFLY_ACCOUNTING_INTERVAL_S"):
            AccountingService()
    with pytest.raises(ValueError, match="interval_s must be more than 0"):
        AccountingService(interval_s=0)
    with pytest.raises(ValueError, match="forecast_window_s"):
        AccountingService(interval_s=1, forecast_window_s=-5)
