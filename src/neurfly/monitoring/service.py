"""The monitoring service: detectors, resource samples, failure classes and alert delivery.

It runs inside the controller (see ``ControllerService``). Per running
attempt it keeps the trial's detectors and the current resource bucket.
Both are rebuilt from the store when an attempt starts, so a restarted
controller loses only the resource samples of the attempts it lost.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from neurfly.controller.lease import Lease
from neurfly.controller.services import ControllerService
from neurfly.core.detectors import (
    Detector,
    DetectorContext,
    Finding,
    FindingKind,
    ResourceSample,
    build_detectors,
    check_monitoring,
    detectors,
)
from neurfly.core.spec import SearchSpec, parse_spec
from neurfly.core.states import AttemptState, SearchState, StopRequest
from neurfly.errors import NeurflyError, SpecError
from neurfly.executors.protocol import ExecutorEvent, Report
from neurfly.monitoring.alerts import AlertCategory, Severity, raise_alert, resolve_key
from neurfly.monitoring.dispatch import Dispatcher, schedule_notifications
from neurfly.monitoring.failures import FailureFacts, classify_failure
from neurfly.monitoring.records import AttemptFailure, ResourceBucket
from neurfly.monitoring.resources import Bucket, oom_kill_count
from neurfly.monitoring.responsibilities import RaciCategory, Responsibilities, find_responsibility_file, load_responsibilities
from neurfly.store import Attempt, Event, MetricRecord, Search, Trial

if TYPE_CHECKING:
    from neurfly.controller import Controller, Outbox
    from neurfly.controller.runtime import AttemptRuntime, SearchRuntime

_logger = logging.getLogger(__name__)

METRICS_PORT_ENV = "NEURFLY_METRICS_PORT"
# Party name recorded on alerts the service resolves by itself.
SERVICE_PARTY = "monitoring"

_defaults: dict[str, object] = {}


def configure(responsibilities: str | Path | None = None, metrics_port: int | None = None, metrics_host: str | None = None) -> None:
    """Set what ``MonitoringService()`` uses when a controller creates it with no arguments (CLI options)."""
    for name, value in (("responsibilities", responsibilities), ("metrics_port", metrics_port), ("metrics_host", metrics_host)):
        if value is not None:
            _defaults[name] = value


@dataclass
class _Watch:
    """State of one running attempt: its detectors, last sample and open stall or resource alerts."""

    attempt_id: int
    trial_id: int
    search_id: int
    team: str
    spec: SearchSpec
    detectors: list[Detector]
    oom_kills_at_start: int | None
    last_sample: ResourceSample | None = None
    io_stalled: bool = False
    bucket: Bucket | None = None
    rules: set[str] = field(default_factory=set)


class MonitoringService(ControllerService):
    """Watches every running attempt and turns findings and failures into owned alerts.

    Args:
        responsibilities: Responsibility file; default: see ``find_responsibility_file``.
        metrics_port: Serve Prometheus metrics on this port while the controller runs; ``None`` for no server.
        metrics_host: Address the metrics server listens on.
        sample_interval_s: Seconds between resource samples of the running attempts.
        bucket_s: Width of a stored resource bucket, in seconds.
        check_interval_s: Seconds between time-based checks (stalls, notification rounds, escalation).
        dispatch: Deliver notifications from a background thread.
    """

    def __init__(
        self,
        responsibilities: str | Path | None = None,
        metrics_port: int | None = None,
        metrics_host: str | None = None,
        sample_interval_s: float = 5.0,
        bucket_s: float = 60.0,
        check_interval_s: float = 1.0,
        dispatch: bool = True,
    ) -> None:
        for name, value in (("sample_interval_s", sample_interval_s), ("bucket_s", bucket_s), ("check_interval_s", check_interval_s)):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        self._path = responsibilities if responsibilities is not None else _defaults.get("responsibilities")
        port = metrics_port if metrics_port is not None else _defaults.get("metrics_port") or os.environ.get(METRICS_PORT_ENV)
        self.metrics_port = int(port) if port else None
        self.metrics_host = metrics_host or str(_defaults.get("metrics_host", "127.0.0.1"))
        self.sample_interval_s = sample_interval_s
        self.bucket_s = bucket_s
        self.check_interval_s = check_interval_s
        self.dispatch = dispatch
        self.responsibilities = Responsibilities()
        self.dispatcher: Dispatcher | None = None
        self._watches: dict[int, _Watch] = {}
        self._last_check = 0.0
        self._last_sample = 0.0

    # -- hooks ---------------------------------------------------------------------------------

    def on_start(self, controller: Controller, session: Session) -> None:
        cluster_path = getattr(controller.cluster, "responsibilities", None)
        self.responsibilities = load_responsibilities(find_responsibility_file(self._path, cluster_path))
        self._watches.clear()
        self._classify_unclassified(controller, session)
        if self.dispatch:
            self.dispatcher = Dispatcher(controller.store, self.responsibilities, _leader_check(controller))
            self.dispatcher.start()
        if self.metrics_port is not None:
            from neurfly.monitoring.metrics import serve_metrics

            serve_metrics(controller.store, self.metrics_port, self.metrics_host, cluster=controller.cluster, controller=controller)

    def check_submission(self, session: Session, search: Search) -> list[str]:
        try:
            spec, _ = parse_spec(search.spec)
        except SpecError as exc:
            return exc.problems
        return check_monitoring(spec.monitoring, detectors.names())

    def on_attempt_started(self, controller: Controller, session: Session, attempt: Attempt) -> None:
        search = controller.searches.get(attempt.search_id)
        if search is None:
            return
        built = self._build(search, attempt)
        self._replay(session, attempt, built)
        for detector in built:
            detector.start_attempt(attempt.started_at)
        self._watches[attempt.id] = _Watch(attempt.id, attempt.trial_id, attempt.search_id, search.team, search.spec,
                                           built, oom_kill_count())

    def on_event(self, controller: Controller, session: Session, attempt: AttemptRuntime, event: ExecutorEvent, outbox: Outbox) -> None:
        watch = self._watches.get(attempt.id)
        if watch is None or not isinstance(event, Report):
            return
        findings = [f for d in watch.detectors for f in _safely(d, "observe", event.step, event.metrics, event.at)]
        self._handle(controller, session, watch, findings, event.at, outbox)

    def on_attempt_ended(self, controller: Controller, session: Session, attempt: Attempt) -> None:
        watch = self._watches.pop(attempt.id, None)
        now = attempt.ended_at or controller.clock()
        if watch is not None:
            for rule in sorted(watch.rules):
                resolve_key(session, rule, SERVICE_PARTY, now)
        if attempt.state == AttemptState.FAILED.value:
            self._record_failure(controller, session, attempt, watch, now)

    def on_tick(self, controller: Controller, session: Session, now: float, outbox: Outbox) -> None:
        if now - self._last_sample >= self.sample_interval_s:
            self._last_sample = now
            self._sample(controller, session, outbox)
        if now - self._last_check < self.check_interval_s:
            return
        self._last_check = now
        for watch in list(self._watches.values()):
            findings = [f for d in watch.detectors for f in _safely(d, "check", now)]
            self._handle(controller, session, watch, findings, now, outbox)
        schedule_notifications(session, self.responsibilities, now)
        if self.dispatcher is not None and not self.dispatcher.running:
            self.dispatcher = Dispatcher(controller.store, self.responsibilities, _leader_check(controller))
            self.dispatcher.start()

    # -- detectors -----------------------------------------------------------------------------

    def _build(self, search: SearchRuntime, attempt: Attempt) -> list[Detector]:
        spec = search.spec
        context = DetectorContext(spec.objective.metric, spec.objective.direction.value == "maximize", spec.budget.report_timeout_s)
        try:
            return build_detectors(spec.monitoring, context)
        except (NeurflyError, ValidationError, TypeError) as exc:
            _logger.error("search %d: detectors could not be built (%s); attempt %d runs without monitoring", search.id, exc, attempt.id)
            return []

    @staticmethod
    def _replay(session: Session, attempt: Attempt, built: list[Detector]) -> None:
        """Feed the trial's stored reports up to the attempt's start step, the last report of each step winning."""
        if not built or attempt.start_step <= 0:
            return
        rows = session.execute(
            select(MetricRecord.attempt_id, MetricRecord.step, MetricRecord.name, MetricRecord.value,
                   MetricRecord.value_special, MetricRecord.reported_at)
            .where(MetricRecord.trial_id == attempt.trial_id, MetricRecord.step <= attempt.start_step)
            .order_by(MetricRecord.id)
        )
        reports: dict[int, tuple[int, dict[str, float], float]] = {}
        for attempt_id, step, name, value, special, at in rows:
            previous = reports.get(step)
            if previous is None or previous[0] != attempt_id:
                reports[step] = (attempt_id, {}, at)
            reports[step][1][name] = float(special) if special is not None else value
        for step in sorted(reports):
            _, metrics, at = reports[step]
            for detector in built:
                _safely(detector, "observe", step, metrics, at)

    def _handle(self, controller: Controller, session: Session, watch: _Watch, findings: list[Finding], now: float,
                outbox: Outbox | None) -> None:
        for finding in findings:
            key = f"{finding.kind.value}:{watch.search_id}:{watch.trial_id}:{finding.rule}"
            if not finding.active:
                resolve_key(session, key, SERVICE_PARTY, now)
                watch.rules.discard(key)
                continue
            self._raise_finding(session, watch, finding, key, now)
            if finding.kind in (FindingKind.STALL, FindingKind.RESOURCE):
                watch.rules.add(key)
            if finding.rule == "io_stalled":
                watch.io_stalled = True
            if finding.kind is FindingKind.DIVERGENCE and watch.spec.monitoring.stop_diverged:
                self._stop_diverged(controller, session, watch, finding, now, outbox)

    def _raise_finding(self, session: Session, watch: _Watch, finding: Finding, key: str, now: float) -> None:
        raci = self.responsibilities.raci(RaciCategory(finding.kind.value), watch.team)
        evidence = {**finding.evidence, "detector": finding.detector, "rule": finding.rule, "step": finding.step,
                    "attempt_id": watch.attempt_id}
        alert, new = raise_alert(
            session, key=key, category=AlertCategory(finding.kind.value), severity=Severity(finding.severity.value),
            owner=raci.responsible, message=finding.message, now=now, team=watch.team, search_id=watch.search_id,
            trial_id=watch.trial_id, evidence=_jsonable(evidence),
        )
        alert.attempt_id = watch.attempt_id
        if new:
            session.add(Event(at=now, kind=f"alert.{finding.kind.value}", message=finding.message, search_id=watch.search_id,
                              trial_id=watch.trial_id, attempt_id=watch.attempt_id, data={"alert_id": alert.id, "rule": finding.rule}))

    @staticmethod
    def _stop_diverged(controller: Controller, session: Session, watch: _Watch, finding: Finding, now: float,
                       outbox: Outbox | None) -> None:
        attempt = controller.attempts.get(watch.attempt_id)
        if attempt is None or attempt.stop_requested is not None or outbox is None:
            return
        attempt.stop_requested = StopRequest.PRUNE
        attempt.stop_requested_at = now
        controller.transitions.mark_stop_requested(session, attempt, f"diverged ({finding.rule}); monitoring.stop_diverged is on")
        outbox.stops.append((attempt.id, StopRequest.PRUNE))

    # -- resources -----------------------------------------------------------------------------

    def _sample(self, controller: Controller, session: Session, outbox: Outbox) -> None:
        sample_resources = getattr(controller.executor, "sample_resources", None)
        if sample_resources is None or not self._watches:
            return
        for sample in sample_resources():
            watch = self._watches.get(sample.attempt_id)
            if watch is None:
                continue
            watch.last_sample = sample
            self._store_sample(session, watch, sample)
            findings = [f for d in watch.detectors for f in _safely(d, "observe_resources", sample)]
            self._handle(controller, session, watch, findings, sample.at, outbox)

    def _store_sample(self, session: Session, watch: _Watch, sample: ResourceSample) -> None:
        start = sample.at - sample.at % self.bucket_s
        if watch.bucket is None or watch.bucket.start != start:
            watch.bucket = Bucket(watch.attempt_id, start, self.bucket_s)
        bucket = watch.bucket
        bucket.add(sample)
        if bucket.row_id is None:
            row = ResourceBucket(attempt_id=watch.attempt_id, search_id=watch.search_id, **bucket.values())
            session.add(row)
            session.flush()
            bucket.row_id = row.id
        else:
            session.execute(update(ResourceBucket).where(ResourceBucket.id == bucket.row_id).values(**bucket.values()))

    # -- failures ------------------------------------------------------------------------------

    def _record_failure(self, controller: Controller, session: Session, attempt: Attempt, watch: _Watch | None, now: float) -> None:
        search = controller.searches.get(attempt.search_id)
        team = search.team if search is not None else session.get(Search, attempt.search_id).team
        spec = search.spec if search is not None else None
        oom_kills = None
        if watch is not None and watch.oom_kills_at_start is not None:
            current = oom_kill_count()
            oom_kills = current - watch.oom_kills_at_start if current is not None else None
        facts = FailureFacts(
            state=attempt.state, failure_kind=attempt.failure_kind, reason=attempt.reason, traceback=attempt.traceback,
            last_sample=watch.last_sample if watch else None,
            memory_fraction=spec.monitoring.resources.memory_fraction if spec else 0.9,
            oom_kills=oom_kills, io_stalled=watch.io_stalled if watch else False,
            dataset=spec.data.dataset if spec else None,
        )
        self._classify(session, attempt, team, facts, now, alert=True)

    def _classify(self, session: Session, attempt: Attempt, team: str, facts: FailureFacts, now: float, alert: bool) -> None:
        result = classify_failure(facts)
        data_owner = _registered_owner(session, facts.dataset) or self.responsibilities.data_owner(facts.dataset, team)
        owner = self.responsibilities.raci(RaciCategory(result.category.value), team, data_owner).responsible
        evidence = _jsonable({**result.evidence, "attempt_id": attempt.id, "attempt_number": attempt.number,
                              "node": attempt.node, "pool": attempt.pool, "data_owner": data_owner})
        session.add(AttemptFailure(attempt_id=attempt.id, search_id=attempt.search_id, team=team, category=result.category.value,
                                   cause=result.cause, owner=owner, evidence=evidence, classified_at=now))
        _logger.info("attempt %d of search %d failed: %s (%s), owner %s", attempt.id, attempt.search_id,
                     result.category.value, result.cause, owner)
        if not alert:
            return
        message = f"attempt {attempt.number} of trial {attempt.trial_id} failed ({result.category.value}: {result.cause}): {facts.reason}"
        row, _ = raise_alert(
            session, key=f"failure:{result.category.value}:{attempt.search_id}:{result.cause}", category=AlertCategory.FAILURE,
            severity=Severity.WARNING, owner=owner, message=message[:2000], now=now, team=team, search_id=attempt.search_id,
            trial_id=attempt.trial_id, evidence={**evidence, "failure_category": result.category.value, "cause": result.cause},
        )
        row.attempt_id = attempt.id

    def _classify_unclassified(self, controller: Controller, session: Session) -> None:
        """Classify failed and lost attempts that have no class yet (lost with a previous controller)."""
        states = [AttemptState.FAILED.value, AttemptState.LOST.value]
        rows = session.execute(
            select(Attempt, Search.team, Search.spec, Search.state)
            .join(Search, Search.id == Attempt.search_id)
            .where(Attempt.state.in_(states), ~exists().where(AttemptFailure.attempt_id == Attempt.id))
        ).all()
        now = controller.clock()
        for attempt, team, document, search_state in rows:
            dataset = (document.get("data") or {}).get("dataset") if isinstance(document, dict) else None
            facts = FailureFacts(state=attempt.state, failure_kind=attempt.failure_kind, reason=attempt.reason,
                                 traceback=attempt.traceback, dataset=dataset)
            self._classify(session, attempt, team, facts, now, alert=search_state == SearchState.RUNNING.value)
        if rows:
            session.flush()


def _registered_owner(session: Session, dataset: str | None) -> str | None:
    """Return the owning team of ``dataset`` in the governance dataset registry, if it is registered there."""
    if dataset is None or importlib.util.find_spec("neurfly.governance") is None:
        return None
    from neurfly.governance.access import parse_ref
    from neurfly.governance.models import Dataset

    try:
        ref = parse_ref(dataset)
    except ValueError:
        return None
    row = session.scalars(select(Dataset).where(Dataset.team == ref.team, Dataset.name == ref.name)).first()
    return row.team if row is not None else None


def _leader_check(controller: Controller):  # noqa: ANN202 - a closure
    owner = controller.lease.owner
    probe = Lease()

    def is_leader() -> bool:
        with controller.store.session() as session:
            return probe.holder(session, time.time()) == owner

    return is_leader


def _safely(detector: Detector, hook: str, *args: object) -> list[Finding]:
    try:
        return list(getattr(detector, hook)(*args))
    except Exception:  # noqa: BLE001 - a broken detector plug-in must not stop the controller
        _logger.exception("detector %r failed in %s; its finding is lost", detector.name, hook)
        return []


def _jsonable(value: object) -> object:
    """Replace non-finite floats (which JSON columns reject on PostgreSQL) with their text."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


__all__ = ["MonitoringService", "configure"]
