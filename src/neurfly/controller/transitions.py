"""State transitions of searches, trials and attempts, written to the store.

Every method takes the tick's session and leaves executor side effects in
the ``Outbox``; the controller commits before it carries them out.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

import psutil
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from neurfly.controller.runtime import (
    AttemptRuntime,
    CheckpointRef,
    SearchRuntime,
    TrialRuntime,
    split_value,
)
from neurfly.core.scheduling.snapshot import Node, PendingTrial, Pool, PriorityClass, Reject, Reservation, Reserve, RunningAttempt, SearchLimit, Snapshot, Start, Preempt, Team
from neurfly.core.space import config_key
from neurfly.core.states import AttemptState, FailureKind, SearchState, StepDecision, StopRequest, TrialState
from neurfly.executors.protocol import CheckpointSaved, DataRecorded, ExecutorEvent, Exited, LaunchSpec, Outcome, Report
from neurfly.store import Attempt, Checkpoint, Event, MetricRecord, Search, Trial

if TYPE_CHECKING:
    from neurfly.controller import Controller, Outbox
    from neurfly.core.cluster import ClusterConfig

_logger = logging.getLogger(__name__)

def _checkpoint_step(session: Session, trial: Trial | None) -> int:
    """Return the step of the trial's latest checkpoint, or 0 when it has none."""
    if trial is None or trial.checkpoint_id is None:
        return 0
    checkpoint = session.get(Checkpoint, trial.checkpoint_id)
    return checkpoint.step if checkpoint is not None else 0


_STOP_TO_ATTEMPT = {
    StopRequest.PAUSE: AttemptState.PAUSED,
    StopRequest.PRUNE: AttemptState.PRUNED,
    StopRequest.PREEMPT: AttemptState.PREEMPTED,
    StopRequest.CANCEL: AttemptState.KILLED,
}


class Transitions:
    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        # The cluster's pools, nodes and priority classes as snapshot tuples,
        # kept while the cluster object stays the same. Passing the same
        # tuples on every tick lets the default policy reuse its node layout.
        self._cluster_tuples: tuple[ClusterConfig, tuple[Pool, ...], tuple[Node, ...], tuple[PriorityClass, ...]] | None = None

    # -- start-up ------------------------------------------------------------------------------

    def recover_lost_attempts(self, session: Session) -> None:
        """End attempts a previous controller left running, and queue their trials again."""
        now = self.controller.clock()
        open_states = [AttemptState.STARTING.value, AttemptState.RUNNING.value]
        for attempt in session.scalars(select(Attempt).where(Attempt.state.in_(open_states))):
            _kill_orphan(attempt)
            attempt.state = AttemptState.LOST.value
            attempt.ended_at = attempt.last_report_at or attempt.started_at
            attempt.reason = "the controller stopped before this attempt ended"
            attempt.failure_kind = FailureKind.INFRASTRUCTURE.value
            trial = session.get(Trial, attempt.trial_id)
            attempt.progress_lost = max(0, (attempt.end_step or 0) - _checkpoint_step(session, trial))
            if trial is not None and not TrialState(trial.state).is_final:
                trial.state = TrialState.PENDING.value
                trial.queued_at = now
            _event(session, now, "attempt.lost", attempt.reason, attempt.search_id, attempt.trial_id, attempt.id)
            _logger.info("attempt %d of trial %d lost with the previous controller; trial queued again", attempt.id, attempt.trial_id)
        session.flush()

    # -- executor events -----------------------------------------------------------------------

    def apply_event(self, session: Session, event: ExecutorEvent, outbox: Outbox) -> None:
        attempt = self.controller.attempts.get(event.attempt_id)
        if attempt is None:
            _logger.debug("event for unknown attempt %d ignored", event.attempt_id)
            return
        if isinstance(event, Report):
            self._on_report(session, attempt, event, outbox)
        elif isinstance(event, CheckpointSaved):
            self._on_checkpoint(session, attempt, event)
        elif isinstance(event, DataRecorded):
            session.execute(update(Attempt).where(Attempt.id == attempt.id).values(data_versions=event.versions))
        else:
            self._on_exit(session, attempt, event)
        for service in self.controller.services:
            service.on_event(self.controller, session, attempt, event, outbox)

    def _on_report(self, session: Session, attempt: AttemptRuntime, event: Report, outbox: Outbox) -> None:
        search = self.controller.searches[attempt.search_id]
        trial = search.trials[attempt.trial_id]
        rows = []
        for name, value in event.metrics.items():
            number, special = split_value(value)
            rows.append(dict(trial_id=trial.id, attempt_id=attempt.id, step=event.step, name=name, value=number, value_special=special, reported_at=event.at))
        if rows:
            session.execute(MetricRecord.__table__.insert(), rows)

        attempt.last_report_at = event.at
        attempt.reported_step = event.step
        trial.step = event.step
        objective = event.metrics.get(search.spec.objective.metric)
        if objective is not None:
            trial.intermediate[event.step] = objective
        session.execute(update(Attempt).where(Attempt.id == attempt.id).values(last_report_at=event.at, state=AttemptState.RUNNING.value, end_step=event.step))

        decision_steps = search.strategy.decision_steps()
        if event.step not in decision_steps or event.step >= search.spec.budget.max_steps:
            session.execute(update(Trial).where(Trial.id == trial.id).values(step=event.step))
            return
        decision = StepDecision.CONTINUE
        if objective is not None:
            decision = search.strategy.on_report(trial.view(), event.step, objective, search.progress())
        trial.decided_step = event.step
        session.execute(update(Trial).where(Trial.id == trial.id).values(step=event.step, decided_step=event.step))
        outbox.decisions.append((attempt.id, event.step, decision))
        if decision is not StepDecision.CONTINUE:
            attempt.stop_requested = StopRequest(decision.value)
            attempt.stop_requested_at = event.at
            self.mark_stop_requested(session, attempt, f"{decision.value} at step {event.step}")
        _event(session, event.at, "trial.decision", f"{decision.value} at step {event.step}", search.id, trial.id, attempt.id, {"value": _jsonable(objective)})

    def _on_checkpoint(self, session: Session, attempt: AttemptRuntime, event: CheckpointSaved) -> None:
        trial = self.controller.searches[attempt.search_id].trials[attempt.trial_id]
        row = Checkpoint(
            trial_id=trial.id, attempt_id=attempt.id, step=event.step, uri=event.uri,
            digest=event.digest, size_bytes=event.size_bytes, created_at=event.at,
        )
        session.add(row)
        session.flush()
        trial.checkpoint = CheckpointRef(row.id, row.uri, row.digest, row.step)
        session.execute(update(Trial).where(Trial.id == trial.id).values(checkpoint_id=row.id))
        session.execute(update(Attempt).where(Attempt.id == attempt.id).values(checkpoint_out_id=row.id))

    def _on_exit(self, session: Session, attempt: AttemptRuntime, event: Exited) -> None:
        search = self.controller.searches[attempt.search_id]
        trial = search.trials[attempt.trial_id]
        self.controller.attempts.pop(attempt.id, None)
        row = session.get(Attempt, attempt.id)
        row.ended_at = event.at
        row.end_step = attempt.reported_step or attempt.start_step
        now = event.at

        if event.outcome is Outcome.COMPLETED or (event.outcome is Outcome.STOPPED and attempt.stop_requested is None):
            self._complete(session, search, trial, row, now)
        elif event.outcome is Outcome.STOPPED or (event.outcome is Outcome.KILLED and attempt.stop_requested is not None and attempt.kill_reason != "timeout"):
            self._stopped(session, search, trial, attempt, row, now)
        elif event.outcome is Outcome.KILLED and attempt.kill_reason == "timeout":
            self._fail(session, search, trial, row, now, FailureKind.TIMEOUT, event.message or "report timeout", None)
        elif event.error_kind == FailureKind.INFRASTRUCTURE.value or event.outcome in (Outcome.CRASHED, Outcome.KILLED):
            self._infra_failure(session, search, trial, row, now, event)
        else:
            self._fail(session, search, trial, row, now, FailureKind(event.error_kind or "user"), event.message, event.traceback)
        session.flush()
        for service in self.controller.services:
            service.on_attempt_ended(self.controller, session, row)

    def _complete(self, session: Session, search: SearchRuntime, trial: TrialRuntime, row: Attempt, now: float) -> None:
        row.state = AttemptState.COMPLETED.value
        row.reason = "completed"
        if not trial.intermediate:
            metric = search.spec.objective.metric
            self._fail(session, search, trial, row, now, FailureKind.USER,
                       f"the trial returned without reporting the objective metric {metric!r}; "
                       f"call trial.report(step, {metric}=...)", None)
            return
        trial.value = trial.intermediate[max(trial.intermediate)]
        self._finish_trial(session, search, trial, TrialState.COMPLETED, now, "completed")

    def _stopped(self, session: Session, search: SearchRuntime, trial: TrialRuntime, attempt: AttemptRuntime, row: Attempt, now: float) -> None:
        reason = attempt.stop_requested
        row.state = _STOP_TO_ATTEMPT[reason].value
        row.reason = f"stopped: {reason.value}"
        lost = max(0, attempt.reported_step - trial.resume_step)
        if reason is StopRequest.PAUSE:
            trial.state = TrialState.PAUSED
            self._write_trial(session, trial, state=TrialState.PAUSED.value)
        elif reason is StopRequest.PRUNE:
            trial.value = trial.intermediate[max(trial.intermediate)] if trial.intermediate else None
            self._finish_trial(session, search, trial, TrialState.PRUNED, now, "pruned by the strategy")
        elif reason is StopRequest.PREEMPT:
            row.progress_lost = lost
            trial.state = TrialState.PENDING
            trial.queued_at = now
            self._write_trial(session, trial, state=TrialState.PENDING.value, queued_at=now)
        else:
            row.progress_lost = lost
            self._finish_trial(session, search, trial, TrialState.STOPPED, now, "cancelled")
        _event(session, now, f"attempt.{row.state}", row.reason, search.id, trial.id, row.id, {"progress_lost": lost})

    def _infra_failure(self, session: Session, search: SearchRuntime, trial: TrialRuntime, row: Attempt, now: float, event: Exited) -> None:
        row.state = AttemptState.FAILED.value
        row.failure_kind = FailureKind.INFRASTRUCTURE.value
        row.reason = event.message
        row.progress_lost = max(0, (row.end_step or 0) - trial.resume_step)
        trial.infra_failures += 1
        if trial.infra_failures > search.spec.budget.max_retries:
            self._finish_trial(session, search, trial, TrialState.FAILED, now,
                               f"{trial.infra_failures} infrastructure failures, more than budget.max_retries; last: {event.message}")
            return
        trial.state = TrialState.PENDING
        trial.queued_at = now
        self._write_trial(session, trial, state=TrialState.PENDING.value, queued_at=now, infra_failures=trial.infra_failures)
        _event(session, now, "attempt.failed", f"infrastructure: {event.message}; trial will resume", search.id, trial.id, row.id)
        _logger.warning("attempt %d of trial %d failed (%s); resuming from step %d", row.id, trial.id, event.message, trial.resume_step)

    def _fail(self, session: Session, search: SearchRuntime, trial: TrialRuntime, row: Attempt, now: float,
              kind: FailureKind, message: str | None, traceback: str | None) -> None:
        row.state = AttemptState.FAILED.value
        row.failure_kind = kind.value
        row.reason = message
        row.traceback = traceback
        self._finish_trial(session, search, trial, TrialState.FAILED, now, message or kind.value)
        _logger.info("trial %d of search %d failed (%s): %s", trial.number, search.id, kind.value, message)

    def _finish_trial(self, session: Session, search: SearchRuntime, trial: TrialRuntime, state: TrialState, now: float, message: str) -> None:
        trial.state = state
        value, special = split_value(trial.value)
        self._write_trial(session, trial, state=state.value, value=value, value_special=special, finished_at=now, message=message)
        _event(session, now, f"trial.{state.value}", message, search.id, trial.id, data={"value": _jsonable(trial.value)})

    @staticmethod
    def _write_trial(session: Session, trial: TrialRuntime, **values: object) -> None:
        session.execute(update(Trial).where(Trial.id == trial.id).values(**values))

    def mark_stop_requested(self, session: Session, attempt: AttemptRuntime, why: str) -> None:
        _logger.info("attempt %d asked to stop (%s): %s", attempt.id, attempt.stop_requested.value, why)
        session.execute(
            update(Attempt).where(Attempt.id == attempt.id)
            .values(stop_requested=attempt.stop_requested.value, stop_requested_at=attempt.stop_requested_at)
        )

    # -- searches ------------------------------------------------------------------------------

    def cancel_search(self, session: Session, search: SearchRuntime, now: float) -> None:
        if search.ending is None:
            self._end_search(session, search, SearchState.CANCELLED, now, "cancelled on request")

    def advance_search(self, session: Session, search: SearchRuntime, now: float, outbox: Outbox) -> None:
        if search.ending is not None:
            self._end_search(session, search, search.ending[0], now, search.ending[1], outbox)
            return
        budget = search.spec.budget
        failed = search.count(TrialState.FAILED)
        if budget.max_failed_trials is not None and failed >= budget.max_failed_trials:
            self._end_search(session, search, SearchState.FAILED, now,
                             f"{failed} trials failed, reaching budget.max_failed_trials ({budget.max_failed_trials})", outbox)
            return

        room = budget.max_concurrent_trials - search.count(TrialState.PENDING, *_ACTIVE)
        room -= self._promote(session, search, now, room)
        while room > 0 and search.can_create_more:
            if not self._create_trial(session, search, now):
                break
            room -= 1

        if search.can_create_more or search.count(TrialState.PENDING, *_ACTIVE):
            return
        if search.strategy.promotions(search.progress()):
            return
        self._finish_paused(session, search, now)
        failed = search.count(TrialState.FAILED)
        if failed and not search.count(TrialState.COMPLETED):
            # A search whose every finished trial failed found nothing, so it
            # must not read as a success to a script that checks its state.
            message = f"{_summary(search)}; every trial that ran to the end failed, see 'neurfly trials' for the errors"
            self._end_search(session, search, SearchState.FAILED, now, message)
            return
        self._end_search(session, search, SearchState.COMPLETED, now, _summary(search))

    def _promote(self, session: Session, search: SearchRuntime, now: float, room: int) -> int:
        if room <= 0 or not search.count(TrialState.PAUSED):
            return 0
        promoted = 0
        by_number = {t.number: t for t in search.trials.values()}
        for promotion in search.strategy.promotions(search.progress())[:room]:
            trial = by_number[promotion.number]
            trial.state = TrialState.PENDING
            trial.queued_at = now
            self._write_trial(session, trial, state=TrialState.PENDING.value, queued_at=now)
            _event(session, now, "trial.promoted", f"promoted from step {trial.resume_step} to {promotion.until_step}", search.id, trial.id)
            promoted += 1
        return promoted

    def _create_trial(self, session: Session, search: SearchRuntime, now: float) -> bool:
        number = search.created
        params = search.strategy.propose(number, search.progress())
        if params is None:
            search.exhausted = True
            _logger.info("search %d: strategy has no new configuration after %d trials", search.id, number)
            return False
        row = Trial(
            search_id=search.id, number=number, params=params, config_key=config_key(params),
            state=TrialState.PENDING.value, created_at=now, queued_at=now, step=0, decided_step=0, infra_failures=0,
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            # The strategy broke its contract by repeating a configuration, so the database rejected it.
            _logger.error("search %d: strategy %s proposed a known configuration for trial %d", search.id, search.spec.strategy.name, number)
            search.exhausted = True
            return False
        search.trials[row.id] = TrialRuntime(row.id, search.id, number, dict(params), TrialState.PENDING, now)
        return True

    def _finish_paused(self, session: Session, search: SearchRuntime, now: float) -> None:
        for trial in search.trials.values():
            if trial.state is TrialState.PAUSED:
                trial.value = trial.intermediate[max(trial.intermediate)] if trial.intermediate else None
                self._finish_trial(session, search, trial, TrialState.PRUNED, now, "paused at a rung and not promoted before the search ended")

    def _end_search(self, session: Session, search: SearchRuntime, state: SearchState, now: float, message: str, outbox: Outbox | None = None) -> None:
        search.ending = (state, message)
        active = [a for a in self.controller.attempts.values() if a.search_id == search.id]
        for attempt in active:
            if attempt.stop_requested is not StopRequest.CANCEL:
                attempt.stop_requested = StopRequest.CANCEL
                attempt.stop_requested_at = now
                self.mark_stop_requested(session, attempt, "search ended")
                if outbox is not None:
                    outbox.stops.append((attempt.id, StopRequest.CANCEL))
                else:
                    self.controller.executor.request_stop(attempt.id, StopRequest.CANCEL)
        for trial in search.trials.values():
            if trial.state in (TrialState.PENDING, TrialState.PAUSED):
                self._finish_trial(session, search, trial, TrialState.STOPPED, now, f"search {state.value}")
        if active:
            return

        session.execute(update(Search).where(Search.id == search.id).values(state=state.value, finished_at=now, message=message))
        _event(session, now, f"search.{state.value}", message, search.id)
        for service in self.controller.services:
            service.on_search_ended(self.controller, session, search)
        del self.controller.searches[search.id]
        _logger.info("search %d %s: %s", search.id, state.value, message)

    # -- timeouts ------------------------------------------------------------------------------

    def enforce_timeouts(self, session: Session, now: float, outbox: Outbox) -> None:
        grace = self.controller.settings.stop_grace_s
        for attempt in self.controller.attempts.values():
            if attempt.kill_reason is not None:
                continue
            timeout = self.controller.searches[attempt.search_id].spec.budget.report_timeout_s
            silent_for = now - (attempt.last_report_at or attempt.started_at)
            if attempt.stop_requested is not None and now - attempt.stop_requested_at > grace:
                attempt.kill_reason = "grace"
                outbox.kills.append(attempt.id)
                _logger.warning("attempt %d did not stop within %.0f s of a %s request; killing it", attempt.id, grace, attempt.stop_requested.value)
            elif silent_for > timeout:
                attempt.kill_reason = "timeout"
                outbox.kills.append(attempt.id)
                _logger.warning("attempt %d sent no report for %.0f s (budget.report_timeout_s=%.0f); killing it", attempt.id, silent_for, timeout)

    # -- scheduling ----------------------------------------------------------------------------

    def schedule(self, session: Session, now: float, outbox: Outbox) -> None:
        snapshot = self._snapshot(now)
        if not snapshot.pending:
            return
        started = time.perf_counter()
        decisions = self.controller.policy.schedule(snapshot)
        self.controller.last_schedule_s = time.perf_counter() - started
        for decision in decisions:
            if isinstance(decision, Start):
                self._start(session, decision, now, outbox)
            elif isinstance(decision, Reject):
                self._reject(session, decision, now)
            elif isinstance(decision, Preempt):
                self.preempt(session, decision, now, outbox)
            elif isinstance(decision, Reserve):
                self.controller.reservations[decision.trial_id] = Reservation(decision.trial_id, decision.node, decision.slots, now)

    def _snapshot(self, now: float) -> Snapshot:
        cluster = self.controller.cluster
        pending = []
        limits = []
        trial_index = {}
        for search in self.controller.searches.values():
            spec = search.spec
            limits.append(SearchLimit(search.id, search.team, spec.budget.max_concurrent_trials))
            for trial in search.trials.values():
                trial_index[trial.id] = trial
                if trial.state is TrialState.PENDING:
                    pending.append(PendingTrial(
                        trial.id, search.id, search.team, spec.priority, spec.resources.devices, spec.resources.hardware,
                        trial.queued_at, resumes=trial.checkpoint is not None or trial.infra_failures > 0,
                    ))
        running = tuple(
            RunningAttempt(
                a.id, a.trial_id, a.search_id, self.controller.searches[a.search_id].team,
                self.controller.searches[a.search_id].spec.priority, a.node, a.slots, a.started_at,
                progress_at_risk=float(max(0, a.reported_step - trial_index[a.trial_id].resume_step)),
                yielding=a.stop_requested is not None,
            )
            for a in self.controller.attempts.values()
        )
        pending_ids = {p.trial_id for p in pending}
        for trial_id in [t for t in self.controller.reservations if t not in pending_ids]:
            del self.controller.reservations[trial_id]
        teams = {s.team for s in self.controller.searches.values()}
        pools, nodes, classes = self._tuples_of(cluster)
        discovered = self.controller.executor.nodes(nodes)
        snapshot = Snapshot(
            now=now,
            pools=pools,
            nodes=nodes if discovered is None else tuple(discovered),
            priority_classes=classes,
            teams=tuple(_team(cluster.team(name)) for name in sorted(teams)),
            running=running,
            pending=tuple(pending),
            searches=tuple(limits),
            reservations=tuple(self.controller.reservations.values()),
            settings=self.controller.policy_settings,
        )
        for service in self.controller.services:
            snapshot = service.refine_snapshot(self.controller, snapshot)
        return snapshot

    def _tuples_of(self, cluster: ClusterConfig) -> tuple[tuple[Pool, ...], tuple[Node, ...], tuple[PriorityClass, ...]]:
        cached = self._cluster_tuples
        if cached is None or cached[0] is not cluster:
            cached = self._cluster_tuples = (
                cluster,
                tuple(Pool(p.name, p.region, p.hardware, p.price_per_device_hour) for p in cluster.pools),
                tuple(Node(n.name, p.name, n.devices) for p in cluster.pools for n in p.nodes),
                tuple(PriorityClass(c.name, c.value, c.preemptible) for c in cluster.priority_classes),
            )
        return cached[1], cached[2], cached[3]

    def _start(self, session: Session, decision: Start, now: float, outbox: Outbox) -> None:
        search, trial = self._find_trial(decision.trial_id)
        pool = self.controller.cluster.pool_of_node(decision.node)
        trial.attempts = session.query(Attempt).filter(Attempt.trial_id == trial.id).count() + 1
        row = Attempt(
            trial_id=trial.id, search_id=search.id, number=trial.attempts, state=AttemptState.STARTING.value,
            executor=self.controller.executor.name, pool=pool.name, node=decision.node, slots=list(decision.slots),
            devices=len(decision.slots), started_at=now, start_step=trial.resume_step,
            checkpoint_in_id=trial.checkpoint.id if trial.checkpoint else None, progress_lost=0, data_versions={},
        )
        session.add(row)
        session.flush()
        trial.state = TrialState.STARTING
        self._write_trial(session, trial, state=TrialState.STARTING.value)
        self.controller.reservations.pop(trial.id, None)
        self.controller.attempts[row.id] = AttemptRuntime(row.id, trial.id, search.id, pool.name, decision.node, tuple(decision.slots), now, trial.resume_step)
        outbox.launches.append(self._launch_spec(search, trial, row))
        for service in self.controller.services:
            service.on_attempt_started(self.controller, session, row)
        _event(session, now, "attempt.started", decision.reason or "placed", search.id, trial.id, row.id, {"node": decision.node, "slots": list(decision.slots)})

    def _launch_spec(self, search: SearchRuntime, trial: TrialRuntime, row: Attempt) -> LaunchSpec:
        spec = search.spec
        launch = LaunchSpec(
            attempt_id=row.id, trial_id=trial.id, search_id=search.id, trial_number=trial.number,
            entrypoint=spec.entrypoint, params=dict(trial.params), fixed=dict(spec.fixed),
            max_steps=spec.budget.max_steps, decision_steps=search.strategy.decision_steps(),
            objective=spec.objective.metric, metrics=tuple(spec.metrics), data=spec.data.model_dump(),
            seed=spec.strategy.seed, checkpoint_root=self.controller.settings.checkpoint_root,
            checkpoint_in=(trial.checkpoint.uri, trial.checkpoint.digest) if trial.checkpoint else None,
            start_step=trial.resume_step, node=row.node, slots=tuple(row.slots),
            env={"NEURFLY_NODE": row.node, "NEURFLY_SLOTS": ",".join(str(s) for s in row.slots)},
            hardware=spec.resources.hardware,
        )
        for service in self.controller.services:
            launch = service.refine_launch(self.controller, search, trial, launch)
        return launch

    def launch(self, launch: LaunchSpec) -> None:
        attempt = self.controller.attempts.get(launch.attempt_id)
        try:
            pid = self.controller.executor.launch(launch)
        except Exception as exc:  # noqa: BLE001 - any launch failure is an infrastructure failure of this attempt
            _logger.exception("attempt %d could not be launched", launch.attempt_id)
            with self.controller.store.session() as session:
                self.apply_event(session, Exited(launch.attempt_id, Outcome.CRASHED, time.time(), error_kind=FailureKind.INFRASTRUCTURE.value, message=f"launch failed: {exc}"), None)
                session.commit()
            return
        if attempt is None:
            return
        with self.controller.store.session() as session:
            if pid is not None:
                started = _process_start_time(pid)
                session.execute(update(Attempt).where(Attempt.id == launch.attempt_id).values(worker_pid=pid, worker_started_at=started))
            session.execute(update(Trial).where(Trial.id == launch.trial_id, Trial.state == TrialState.STARTING.value).values(state=TrialState.RUNNING.value))
            session.commit()
        search = self.controller.searches.get(launch.search_id)
        if search is not None and launch.trial_id in search.trials and search.trials[launch.trial_id].state is TrialState.STARTING:
            search.trials[launch.trial_id].state = TrialState.RUNNING

    def _reject(self, session: Session, decision: Reject, now: float) -> None:
        search, trial = self._find_trial(decision.trial_id)
        self._finish_trial(session, search, trial, TrialState.FAILED, now, f"rejected by the scheduler: {decision.reason}")

    def preempt(self, session: Session, decision: Preempt, now: float, outbox: Outbox) -> None:
        attempt = self.controller.attempts.get(decision.attempt_id)
        if attempt is None or attempt.stop_requested is not None:
            return
        attempt.stop_requested = StopRequest.PREEMPT
        attempt.stop_requested_at = now
        self.mark_stop_requested(session, attempt, decision.reason)
        trial = self.controller.searches[attempt.search_id].trials[attempt.trial_id]
        trial.state = TrialState.PREEMPTING
        self._write_trial(session, trial, state=TrialState.PREEMPTING.value)
        outbox.stops.append((attempt.id, StopRequest.PREEMPT))
        _event(session, now, "attempt.preempting", decision.reason, attempt.search_id, attempt.trial_id, attempt.id, {"for_trial": decision.for_trial})

    def _find_trial(self, trial_id: int) -> tuple[SearchRuntime, TrialRuntime]:
        for search in self.controller.searches.values():
            if trial_id in search.trials:
                return search, search.trials[trial_id]
        raise KeyError(trial_id)


_ACTIVE = (TrialState.STARTING, TrialState.RUNNING, TrialState.PREEMPTING)


def _team(config) -> Team:  # noqa: ANN001 - TeamConfig
    return Team(config.name, config.weight, dict(config.quota), dict(config.borrowing_limit), 0.0)


def _summary(search: SearchRuntime) -> str:
    completed = [t for t in search.trials.values() if t.state is TrialState.COMPLETED and t.value is not None and math.isfinite(t.value)]
    counts = {state.value: search.count(state) for state in (TrialState.COMPLETED, TrialState.PRUNED, TrialState.FAILED) if search.count(state)}
    counted = ", ".join(f"{n} {s}" for s, n in counts.items())
    trials = f"{search.created} trial" if search.created == 1 else f"{search.created} trials"
    if not completed:
        return f"{trials} ({counted}); no trial completed with a finite objective"
    maximise = search.spec.objective.direction.value == "maximize"
    best = max(completed, key=lambda t: t.value) if maximise else min(completed, key=lambda t: t.value)
    return f"{trials} ({counted}); best trial {best.number}: {search.spec.objective.metric}={best.value:.6g}"


def _event(session: Session, at: float, kind: str, message: str, search_id: int | None = None,
           trial_id: int | None = None, attempt_id: int | None = None, data: dict | None = None) -> None:
    session.add(Event(at=at, kind=kind, message=message, search_id=search_id, trial_id=trial_id, attempt_id=attempt_id, data=data or {}))


def _jsonable(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return repr(value)


def _process_start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _kill_orphan(attempt: Attempt) -> None:
    """Kill a worker that outlived its controller, if it still runs (same pid and start time)."""
    if attempt.worker_pid is None:
        return
    try:
        process = psutil.Process(attempt.worker_pid)
        if attempt.worker_started_at is not None and abs(process.create_time() - attempt.worker_started_at) > 1.0:
            return
        process.kill()
        _logger.info("killed orphaned worker %d of attempt %d", attempt.worker_pid, attempt.id)
    except psutil.Error:
        return
