"""The controller's accounting service: cost accrual, budget alerts and limits.

On every tick the service adds the cost that running attempts accrued so
far to the cost of ended attempts, per budget, without a query. Every
``interval_s`` seconds it also re-reads the budgets (one query), refreshes
each forecast and records each budget's state. A threshold fires once per
budget, period and basis; the alerts table keeps the keys, so a restarted
controller does not fire them again. A soft limit lowers the priority of the
team's pending trials and rejects its new searches. A hard limit requests
that its running attempts checkpoint and yield, and hides its pending trials
from the scheduling policy while the limit is reached.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from neurfly.accounting.budgeting import (
    DEFAULT_FORECAST_WINDOW_S,
    Basis,
    BudgetEvaluation,
    BudgetLevel,
    BudgetRule,
    Period,
    alert_key,
    committed_cost,
    evaluate,
    format_time,
    period_spend,
    run_rate,
)
from neurfly.accounting.budgets import rule_of, submission_problems
from neurfly.accounting.metering import AttemptRecord
from neurfly.accounting.models import Budget, BudgetState
from neurfly.accounting.money import format_micros, format_money
from neurfly.accounting.pricing import PoolRate, pool_rates
from neurfly.accounting.records import BUDGET_LEVEL_EVENT, PREEMPTING_EVENT, load_ended_records, load_records, record_of
from neurfly.controller.services import ControllerService
from neurfly.core.scheduling.snapshot import Snapshot
from neurfly.core.states import AttemptState, StopRequest
from neurfly.errors import NeurflyError
from neurfly.monitoring.alerts import Alert, AlertCategory, Severity, raise_alert
from neurfly.store import Event, Search

if TYPE_CHECKING:
    from neurfly.controller import Controller, Outbox
    from neurfly.controller.runtime import AttemptRuntime
    from neurfly.store import Attempt

_logger = logging.getLogger(__name__)

# Seconds between budget refreshes (re-read budgets, forecasts, recorded states).
DEFAULT_INTERVAL_S = 5.0
INTERVAL_ENV = "NEURFLY_ACCOUNTING_INTERVAL_S"


class AccountingSettingsError(NeurflyError, ValueError):
    """A setting of the accounting service is invalid; the message names the value and the fix."""


def interval_from_env() -> float:
    """Return ``$NEURFLY_ACCOUNTING_INTERVAL_S``, or ``DEFAULT_INTERVAL_S`` when unset.

    Raises:
        AccountingSettingsError: The variable is not a number more than 0.
    """
    text = os.environ.get(INTERVAL_ENV)
    if not text:
        return DEFAULT_INTERVAL_S
    try:
        value = float(text)
    except ValueError:
        raise AccountingSettingsError(f"{INTERVAL_ENV}={text!r} is not a number; set it to seconds, e.g. 5") from None
    if not math.isfinite(value) or value <= 0:
        raise AccountingSettingsError(f"{INTERVAL_ENV}={text!r} must be a finite number of seconds more than 0, e.g. 5")
    return value


@dataclasses.dataclass
class _Terms:
    """Forecast terms of one budget from its last refresh."""

    committed_micros: int = 0
    rate_micros_per_s: Decimal = Decimal(0)


class AccountingService(ControllerService):
    """Accrues cost in real time and enforces budgets.

    Args:
        interval_s: Seconds between budget refreshes; ``$NEURFLY_ACCOUNTING_INTERVAL_S``
            or 5 when ``None``. Actual spend is checked on every tick regardless.
        forecast_window_s: Trailing window of the run rate, in seconds.
    """

    def __init__(self, interval_s: float | None = None, forecast_window_s: float = DEFAULT_FORECAST_WINDOW_S) -> None:
        if interval_s is not None and not interval_s > 0:
            raise ValueError(f"interval_s must be more than 0 seconds, got {interval_s!r}")
        if not forecast_window_s > 0:
            raise ValueError(f"forecast_window_s must be more than 0 seconds, got {forecast_window_s!r}")
        self.interval_s = interval_s if interval_s is not None else interval_from_env()
        self.forecast_window_s = forecast_window_s
        self._rates: dict[str, PoolRate] = {}
        self._rules: dict[int, BudgetRule] = {}
        self._ended: dict[tuple[int, float, float], int] = {}
        self._terms: dict[int, _Terms] = {}
        self._recent: list[AttemptRecord] = []
        self._fired: set[str] = set()
        self._levels: dict[int, BudgetLevel] = {}
        self._evaluations: dict[int, BudgetEvaluation] = {}
        self._last_refresh = float("-inf")

    # -- controller hooks ------------------------------------------------------------------------

    def on_start(self, controller: Controller, session: Session) -> None:
        now = controller.clock()
        self._rates = pool_rates(controller.cluster)
        self._fired = set(session.scalars(select(Alert.key).where(Alert.key.like("budget:%"))))
        self._recent = load_ended_records(session, now - self.forecast_window_s)
        self._ended.clear()
        self._levels.clear()
        self._evaluations.clear()
        self._refresh(controller, session, now, outbox=None)
        _logger.info("accounting started: %d budgets, %d alert keys already fired", len(self._rules), len(self._fired))

    def check_submission(self, session: Session, search: Search) -> list[str]:
        return submission_problems(session, search.team, time.time())

    def on_attempt_ended(self, controller: Controller, session: Session, attempt: Attempt) -> None:
        record = self._ended_record(controller, session, attempt)
        self._recent.append(record)
        for (budget_id, start, end), spent in list(self._ended.items()):
            rule = self._rules.get(budget_id)
            if rule is None or not rule.covers(record.team, record.search_id):
                continue
            added, _ = period_spend([record], self._rates, Period(start, end), record.ended_at)
            self._ended[(budget_id, start, end)] = spent + added

    def refine_snapshot(self, controller: Controller, snapshot: Snapshot) -> Snapshot:
        if not any(level is not BudgetLevel.OK for level in self._levels.values()):
            return snapshot
        lowest = controller.cluster.lowest_priority_class.name
        pending = []
        hidden = set()
        for trial in snapshot.pending:
            level = self.level_for(trial.team, trial.search_id)
            if level is BudgetLevel.HARD:
                hidden.add(trial.trial_id)
                continue
            if level is BudgetLevel.SOFT and trial.priority != lowest:
                trial = dataclasses.replace(trial, priority=lowest)
            pending.append(trial)
        reservations = tuple(r for r in snapshot.reservations if r.trial_id not in hidden)
        return dataclasses.replace(snapshot, pending=tuple(pending), reservations=reservations)

    def on_tick(self, controller: Controller, session: Session, now: float, outbox: Outbox) -> None:
        if now - self._last_refresh >= self.interval_s:
            self._refresh(controller, session, now, outbox)
            return
        self._evaluate_all(controller, session, now, outbox, refresh=False)

    # -- queries for callers ---------------------------------------------------------------------

    def level_for(self, team: str, search_id: int) -> BudgetLevel:
        """Return the strongest limit reached by a budget that covers ``search_id`` of ``team``."""
        level = BudgetLevel.OK
        for budget_id, budget_level in self._levels.items():
            rule = self._rules.get(budget_id)
            if rule is not None and rule.covers(team, search_id) and budget_level.rank > level.rank:
                level = budget_level
        return level

    def evaluations(self) -> dict[int, BudgetEvaluation]:
        """Return the latest evaluation of each budget in a period, by budget id."""
        return dict(self._evaluations)

    # -- evaluation ------------------------------------------------------------------------------

    def _refresh(self, controller: Controller, session: Session, now: float, outbox: Outbox | None) -> None:
        self._last_refresh = now
        # One query: the states come along so that recording them below finds them in the session.
        rows = session.execute(select(Budget, BudgetState).outerjoin(BudgetState, BudgetState.budget_id == Budget.id)).all()
        self._rules = {budget.id: rule_of(budget) for budget, _ in rows}
        self._recent = [r for r in self._recent if r.ended_at >= now - self.forecast_window_s]
        for key in [k for k in self._ended if k[0] not in self._rules or k[2] <= now]:
            del self._ended[key]
        for budget_id in [b for b in self._levels if b not in self._rules]:
            del self._levels[budget_id]
            self._evaluations.pop(budget_id, None)
            self._terms.pop(budget_id, None)
        self._evaluate_all(controller, session, now, outbox, refresh=True)

    def _evaluate_all(self, controller: Controller, session: Session, now: float, outbox: Outbox | None, refresh: bool) -> None:
        running = self._running_records(controller)
        for rule in self._rules.values():
            period = rule.period_at(now)
            if period is None:
                self._set_level(session, rule, BudgetLevel.OK, now, None)
                self._evaluations.pop(rule.id, None)
                continue
            evaluation = self._evaluate(session, rule, period, running, now, refresh)
            self._evaluations[rule.id] = evaluation
            self._fire(session, evaluation, now)
            self._set_level(session, rule, evaluation.level, now, evaluation)
            if refresh:
                self._record_state(session, evaluation)
        if outbox is not None:
            self._enforce(controller, session, now, outbox)

    def _evaluate(
        self, session: Session, rule: BudgetRule, period: Period, running: list[AttemptRecord], now: float, refresh: bool
    ) -> BudgetEvaluation:
        covered = [r for r in running if rule.covers(r.team, r.search_id)]
        running_spent, _ = period_spend(covered, self._rates, period, now)
        spent = self._ended_spend(session, rule, period, now) + running_spent
        terms = self._terms.setdefault(rule.id, _Terms())
        if refresh:
            recent = [r for r in self._recent if rule.covers(r.team, r.search_id)]
            terms.committed_micros = committed_cost(covered, self._rates, now, period.end)
            terms.rate_micros_per_s = run_rate(recent + covered, self._rates, period, now, self.forecast_window_s)
        return evaluate(
            rule, period, now,
            spent_micros=spent,
            running_micros=running_spent,
            committed_micros=terms.committed_micros,
            rate_micros_per_s=terms.rate_micros_per_s,
        )

    def _ended_spend(self, session: Session, rule: BudgetRule, period: Period, now: float) -> int:
        key = (rule.id, period.start, period.end)
        if key not in self._ended:
            records = load_records(session, period.start, period.end, team=rule.team, search_id=rule.search_id)
            ended = [r for r in records if r.ended_at is not None]
            self._ended[key], _ = period_spend(ended, self._rates, period, now)
        return self._ended[key]

    def _running_records(self, controller: Controller) -> list[AttemptRecord]:
        records = []
        for attempt in controller.attempts.values():
            search = controller.searches.get(attempt.search_id)
            if search is None:
                continue
            records.append(AttemptRecord(
                attempt_id=attempt.id, trial_id=attempt.trial_id, search_id=attempt.search_id, team=search.team,
                priority=search.spec.priority, pool=attempt.pool, devices=len(attempt.slots), started_at=attempt.started_at,
                ended_at=None, state=AttemptState.RUNNING, start_step=attempt.start_step,
                end_step=attempt.reported_step or None, last_report_at=attempt.last_report_at,
                search_name=search.spec.name, max_steps=search.spec.budget.max_steps,
            ))
        return records

    def _ended_record(self, controller: Controller, session: Session, attempt: Attempt) -> AttemptRecord:
        search = controller.searches.get(attempt.search_id)
        if search is not None:
            return record_of(attempt, search.team, search.spec.priority, search.spec.name, search.spec.budget.max_steps)
        row = session.get(Search, attempt.search_id)
        return record_of(attempt, row.team, row.priority, row.name, None)

    # -- alerts, states and limits ---------------------------------------------------------------

    def _fire(self, session: Session, evaluation: BudgetEvaluation, now: float) -> None:
        for basis, percent in evaluation.crossed:
            key = alert_key(evaluation.rule.id, evaluation.period, basis, percent)
            if key in self._fired:
                continue
            self._fired.add(key)
            raise_alert(
                session,
                key=key,
                category=AlertCategory.BUDGET,
                severity=_severity(basis, percent),
                owner=evaluation.rule.team,
                message=_alert_message(evaluation, basis, percent),
                now=now,
                team=evaluation.rule.team,
                search_id=evaluation.rule.search_id,
                evidence=_evidence(evaluation),
            )

    def _set_level(self, session: Session, rule: BudgetRule, level: BudgetLevel, now: float, evaluation: BudgetEvaluation | None) -> None:
        previous = self._levels.get(rule.id, BudgetLevel.OK)
        self._levels[rule.id] = level
        if level is previous:
            return
        spent = format_money(evaluation.spent_micros) if evaluation is not None else "-"
        message = f"budget {rule.id} ({rule.scope}): {previous.value} -> {level.value} at spend {spent} of {format_money(rule.amount_micros)}"
        session.add(Event(at=now, kind=BUDGET_LEVEL_EVENT, message=message, search_id=rule.search_id,
                          data={"budget_id": rule.id, "team": rule.team, "level": level.value, "previous": previous.value}))
        log = _logger.warning if level.rank > previous.rank else _logger.info
        log("%s", message)
        if evaluation is not None:
            self._record_state(session, evaluation)

    def _record_state(self, session: Session, evaluation: BudgetEvaluation) -> None:
        state = session.get(BudgetState, evaluation.rule.id)
        if state is None:
            state = BudgetState(budget_id=evaluation.rule.id)
            session.add(state)
        state.period_start = evaluation.period.start
        state.spent_micros = evaluation.spent_micros
        state.forecast_micros = evaluation.forecast_micros
        state.level = evaluation.level.value
        state.evaluated_at = evaluation.now

    def _enforce(self, controller: Controller, session: Session, now: float, outbox: Outbox) -> None:
        if not any(level is BudgetLevel.HARD for level in self._levels.values()):
            return
        for attempt in list(controller.attempts.values()):
            search = controller.searches.get(attempt.search_id)
            if search is None or attempt.stop_requested is not None:
                continue
            budget_id = self._hard_budget(search.team, attempt.search_id)
            if budget_id is not None:
                self._stop(controller, session, attempt, budget_id, now, outbox)

    def _hard_budget(self, team: str, search_id: int) -> int | None:
        for budget_id, level in self._levels.items():
            rule = self._rules.get(budget_id)
            if level is BudgetLevel.HARD and rule is not None and rule.covers(team, search_id):
                return budget_id
        return None

    def _stop(self, controller: Controller, session: Session, attempt: AttemptRuntime, budget_id: int, now: float, outbox: Outbox) -> None:
        reason = f"hard limit of budget {budget_id} reached"
        attempt.stop_requested = StopRequest.PREEMPT
        attempt.stop_requested_at = now
        controller.transitions.mark_stop_requested(session, attempt, reason)
        outbox.stops.append((attempt.id, StopRequest.PREEMPT))
        session.add(Event(at=now, kind=PREEMPTING_EVENT, message=reason, search_id=attempt.search_id, trial_id=attempt.trial_id,
                          attempt_id=attempt.id, data={"for_trial": -1, "budget_id": budget_id}))


def _severity(basis: Basis, percent: float) -> Severity:
    if basis is Basis.ACTUAL and percent >= 100:
        return Severity.CRITICAL
    if percent >= 100 or (basis is Basis.ACTUAL and percent >= 80):
        return Severity.WARNING
    return Severity.INFO


def _alert_message(evaluation: BudgetEvaluation, basis: Basis, percent: float) -> str:
    rule = evaluation.rule
    what = f"team {rule.team}" if rule.search_id is None else f"search {rule.search_id} of team {rule.team}"
    budget = f"{rule.period_kind.value} budget of {format_money(rule.amount_micros)} (budget {rule.id})"
    if basis is Basis.ACTUAL:
        return f"{what} has spent {format_money(evaluation.spent_micros)}, {evaluation.percent_spent:.0f}% of its {budget}; threshold {percent:g}%"
    return (
        f"{what} is forecast to spend {format_money(evaluation.forecast_micros)} by {format_time(evaluation.period.end)}, "
        f"{evaluation.percent_forecast:.0f}% of its {budget}; threshold {percent:g}%"
    )


def _evidence(evaluation: BudgetEvaluation) -> dict[str, object]:
    return {
        "budget_id": evaluation.rule.id,
        "period_start": format_time(evaluation.period.start),
        "period_end": format_time(evaluation.period.end),
        "amount": format_micros(evaluation.rule.amount_micros, 6),
        "spent": format_micros(evaluation.spent_micros, 6),
        "committed": format_micros(evaluation.committed_micros, 6),
        "run_rate_per_hour": format_micros(evaluation.run_rate_micros_per_hour, 6),
        "forecast": format_micros(evaluation.forecast_micros, 6),
        "level": evaluation.level.value,
    }


__all__ = ["DEFAULT_INTERVAL_S", "INTERVAL_ENV", "AccountingService", "AccountingSettingsError", "interval_from_env"]
