"""Prometheus metrics of a NeurFly store, computed from the store on every scrape.

Every metric has the ``neurfly_`` prefix, base units (seconds, ratios from 0
to 1) and only low-cardinality labels: ``team``, ``pool``, ``region``,
``priority_class``, and for alerts and failures their ``category``,
``severity`` and ``owner``. Search, trial and attempt ids never become labels.

The values come from the store, so a metrics server in another process
(``neurfly metrics-server``) reports the same numbers as one inside the
controller. Only ``neurfly_scheduling_latency_seconds`` needs the controller.
"""

from __future__ import annotations

import importlib.util
import logging
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import psutil
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from neurfly.controller.lease import Lease
from neurfly.core.cluster import ClusterConfig
from neurfly.core.states import AttemptState, SearchState, TrialState
from neurfly.monitoring.alerts import Alert, AlertState
from neurfly.monitoring.records import AttemptFailure, ResourceBucket
from neurfly.store import Attempt, ControllerLease, Search, Store, Trial

if TYPE_CHECKING:
    from neurfly.controller import Controller

_logger = logging.getLogger(__name__)

_RUNNING_LABELS = ["team", "pool", "region", "priority_class"]
_servers: dict[tuple[str, int], tuple[Any, StoreCollector]] = {}
_servers_lock = threading.Lock()


class StoreCollector(Collector):
    """Collects the platform's metrics from the store at scrape time.

    Args:
        store: The store to read.
        cluster: Gives each pool's region; without it ``region`` is empty.
        controller: The controller of this process, for the scheduling latency.
    """

    def __init__(self, store: Store, cluster: ClusterConfig | None = None, controller: Controller | None = None) -> None:
        self.store = store
        self.cluster = cluster
        self.controller = controller

    def describe(self) -> list[Metric]:
        # No description up front, so registering the collector does not query the store.
        return []

    def collect(self) -> Iterator[Metric]:
        with self.store.session() as session:
            yield from self._running(session)
            yield self._pending(session)
            yield self._utilisation(session)
            yield self._alerts(session)
            yield self._preemptions(session)
            yield self._failures(session)
            yield from _accounting_metrics(session, self.cluster)
        latency = getattr(self.controller, "last_schedule_s", None) if self.controller is not None else None
        if latency is not None:
            gauge = GaugeMetricFamily("neurfly_scheduling_latency_seconds", "Duration of the last scheduling policy call.")
            gauge.add_metric([], latency)
            yield gauge

    def _region(self, pool: str) -> str:
        if self.cluster is None:
            return ""
        return next((p.region for p in self.cluster.pools if p.name == pool), "")

    def _running(self, session: Session) -> Iterator[Metric]:
        trials = GaugeMetricFamily("neurfly_trials_running", "Attempts starting or running now.", labels=_RUNNING_LABELS)
        devices = GaugeMetricFamily("neurfly_devices_allocated", "Device slots held by running attempts.", labels=_RUNNING_LABELS)
        counts: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0])
        for team, pool, priority, slots_held in _live_attempts(session):
            entry = counts[(team, pool, self._region(pool), priority)]
            entry[0] += 1
            entry[1] += slots_held
        for labels, (count, slots_held) in sorted(counts.items()):
            trials.add_metric(list(labels), count)
            devices.add_metric(list(labels), slots_held)
        yield trials
        yield devices

    def _pending(self, session: Session) -> Metric:
        gauge = GaugeMetricFamily("neurfly_trials_pending", "Trials waiting for devices.", labels=["team", "priority_class"])
        rows = session.execute(
            select(Search.team, Search.priority, func.count(Trial.id))
            .join(Search, Search.id == Trial.search_id)
            .where(Trial.state == TrialState.PENDING.value, Search.state == SearchState.RUNNING.value)
            .group_by(Search.team, Search.priority)
        )
        for team, priority, count in sorted(rows):
            gauge.add_metric([team, priority], count)
        return gauge

    def _utilisation(self, session: Session) -> Metric:
        gauge = GaugeMetricFamily("neurfly_device_utilisation_ratio",
                                  "Mean device utilisation of running attempts in their latest resource sample bucket.",
                                  labels=["team", "pool", "region"])
        latest = (
            select(ResourceBucket.attempt_id, func.max(ResourceBucket.bucket_start).label("start"))
            .join(Attempt, Attempt.id == ResourceBucket.attempt_id)
            .where(Attempt.ended_at.is_(None))
            .group_by(ResourceBucket.attempt_id)
            .subquery()
        )
        rows = session.execute(
            select(Search.team, Attempt.pool, func.avg(ResourceBucket.device_utilisation_mean))
            .join(latest, (latest.c.attempt_id == ResourceBucket.attempt_id) & (latest.c.start == ResourceBucket.bucket_start))
            .join(Attempt, Attempt.id == ResourceBucket.attempt_id)
            .join(Search, Search.id == Attempt.search_id)
            .where(ResourceBucket.device_utilisation_mean.is_not(None))
            .group_by(Search.team, Attempt.pool)
        )
        for team, pool, mean in sorted(rows):
            gauge.add_metric([team, pool, self._region(pool)], float(mean))
        return gauge

    @staticmethod
    def _alerts(session: Session) -> Metric:
        gauge = GaugeMetricFamily("neurfly_alerts_firing", "Alerts firing and not acknowledged.", labels=["team", "category", "severity"])
        rows = session.execute(
            select(Alert.team, Alert.category, Alert.severity, func.count(Alert.id))
            .where(Alert.state == AlertState.FIRING.value)
            .group_by(Alert.team, Alert.category, Alert.severity)
        )
        for team, category, severity, count in sorted(rows, key=lambda r: tuple(str(v) for v in r)):
            gauge.add_metric([team or "", category, severity], count)
        return gauge

    def _preemptions(self, session: Session) -> Metric:
        counter = CounterMetricFamily("neurfly_preemptions", "Attempts preempted so far.", labels=["team", "pool", "region"])
        rows = session.execute(
            select(Search.team, Attempt.pool, func.count(Attempt.id))
            .join(Search, Search.id == Attempt.search_id)
            .where(Attempt.state == AttemptState.PREEMPTED.value)
            .group_by(Search.team, Attempt.pool)
        )
        for team, pool, count in sorted(rows):
            counter.add_metric([team, pool, self._region(pool)], count)
        return counter

    @staticmethod
    def _failures(session: Session) -> Metric:
        counter = CounterMetricFamily("neurfly_attempt_failures", "Failed attempts by class and owner.", labels=["team", "category", "owner"])
        rows = session.execute(
            select(AttemptFailure.team, AttemptFailure.category, AttemptFailure.owner, func.count(AttemptFailure.id))
            .group_by(AttemptFailure.team, AttemptFailure.category, AttemptFailure.owner)
        )
        for team, category, owner, count in sorted(rows):
            counter.add_metric([team, category, owner], count)
        return counter


def _live_attempts(session: Session) -> list[tuple[str, str, str, int]]:
    """Return (team, pool, priority class, devices) of attempts that run now.

    With no live controller lease nothing runs, because workers exit with
    their controller. When the lease holder runs on this host, an attempt
    whose worker process is gone is left out even before the controller
    has recorded its exit.
    """
    lease = session.get(ControllerLease, 1)
    if Lease().holder(session, time.time()) is None:
        return []
    same_host = lease is not None and lease.host == socket.gethostname()
    rows = session.execute(
        select(Search.team, Attempt.pool, Search.priority, Attempt.devices, Attempt.worker_pid, Attempt.worker_started_at)
        .join(Search, Search.id == Attempt.search_id)
        .where(Attempt.state.in_([AttemptState.STARTING.value, AttemptState.RUNNING.value]), Attempt.ended_at.is_(None))
    )
    return [(team, pool, priority, devices) for team, pool, priority, devices, pid, started in rows
            if not same_host or pid is None or _alive(pid, started)]


def _alive(pid: int, started_at: float | None) -> bool:
    try:
        process = psutil.Process(pid)
        if started_at is not None and abs(process.create_time() - started_at) > 1.0:
            return False
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _accounting_metrics(session: Session, cluster: ClusterConfig | None) -> Iterator[Metric]:
    """Yield cost and budget metrics when the accounting service is installed; nothing otherwise."""
    if importlib.util.find_spec("neurfly.accounting") is None:
        return
    from neurfly.accounting import budget_status, cost_report

    now = time.time()
    try:
        report = cost_report(session, now=now, cluster=cluster)
        statuses = budget_status(session, cluster=cluster, now=now)
    except Exception:  # noqa: BLE001 - a failing cost query must not take the other metrics down
        _logger.exception("reading costs and budgets for the metrics failed; the cost metrics are left out of this scrape")
        return

    cost = GaugeMetricFamily("neurfly_cost_accrued", "Cost of the current calendar month (UTC) so far, "
                             "in the currency of the pools' prices.", labels=["team"])
    for line in report.teams:
        cost.add_metric([line.team], line.total_micros / 1e6)
    yield cost

    used = GaugeMetricFamily("neurfly_budget_used_ratio", "Spent fraction of the fullest budget of each team and scope "
                             "in its current period.", labels=["team", "scope"])
    fullest: dict[tuple[str, str], float] = {}
    for status in statuses:
        if status.evaluation is None:
            continue
        labels = (str(status.budget.get("team") or ""), str(status.budget.get("scope") or ""))
        fullest[labels] = max(fullest.get(labels, 0.0), status.evaluation.percent_spent / 100.0)
    for labels, ratio in sorted(fullest.items()):
        used.add_metric(list(labels), ratio)
    yield used


def serve_metrics(store: Store, port: int, host: str = "127.0.0.1", cluster: ClusterConfig | None = None,
                  controller: Controller | None = None) -> StoreCollector:
    """Serve ``/metrics`` on ``host:port`` from a background thread; returns the collector.

    A second call for the same address in one process reuses the running
    server and points it at the new store, cluster and controller.

    Raises:
        OSError: The port is taken by another process.
    """
    if not 0 < port < 65536:
        raise ValueError(f"port must be from 1 to 65535, got {port!r}")
    with _servers_lock:
        existing = _servers.get((host, port))
        if existing is not None:
            collector = existing[1]
            collector.store, collector.cluster, collector.controller = store, cluster, controller
            return collector
        collector = StoreCollector(store, cluster, controller)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        server, _thread = start_http_server(port, addr=host, registry=registry)
        _servers[(host, port)] = (server, collector)
    _logger.info("serving Prometheus metrics on http://%s:%d/metrics", host, port)
    return collector


def stop_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Stop the metrics server of this process on ``host:port``, if one runs."""
    with _servers_lock:
        entry = _servers.pop((host, port), None)
    if entry is not None:
        entry[0].shutdown()
        entry[0].server_close()


__all__ = ["StoreCollector", "serve_metrics", "stop_metrics"]
