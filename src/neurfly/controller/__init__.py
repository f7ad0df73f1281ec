"""The controller: one reconcile loop that drives every running search of a store.

Each tick collects executor events, records them, lets each search's
strategy decide and propose, asks the scheduling policy for placements, and
commits all of it before the executor acts on it. A controller killed at
any point restarts, marks the attempts it lost, and resumes their trials from
their last checkpoints.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from neurfly.controller.lease import Lease
from neurfly.controller.runtime import AttemptRuntime, SearchRuntime, load_search
from neurfly.controller.services import ControllerService, default_services
from neurfly.controller.transitions import Transitions
from neurfly.core.cluster import ClusterConfig
from neurfly.core.scheduling import SchedulingPolicy, policies
from neurfly.core.scheduling.snapshot import PolicySettings, Preempt, Reservation
from neurfly.core.states import SearchState, StepDecision, StopRequest
from neurfly.errors import ControllerLockedError
from neurfly.executors.base import Executor
from neurfly.executors.protocol import LaunchSpec
from neurfly.store import Search, Store

_logger = logging.getLogger(__name__)


@dataclass
class ControllerSettings:
    """Timing of the reconcile loop.

    Attributes:
        tick_s: Longest wait for executor events in one tick.
        refresh_s: How often new searches and cancel requests are read from the store.
        stop_grace_s: Time a trial gets to save and return after a stop request, before it is killed.
        checkpoint_root: Folder or fsspec URL of new checkpoints.
        policy: Settings passed to the scheduling policy in every snapshot.
    """

    tick_s: float = 0.05
    refresh_s: float = 0.5
    stop_grace_s: float = 30.0
    checkpoint_root: str = ".neurfly/checkpoints"
    policy: PolicySettings = field(default_factory=PolicySettings)


@dataclass
class Outbox:
    """Executor actions decided in a tick, carried out after the tick's commit."""

    decisions: list[tuple[int, int, StepDecision]] = field(default_factory=list)
    stops: list[tuple[int, StopRequest]] = field(default_factory=list)
    kills: list[int] = field(default_factory=list)
    launches: list[LaunchSpec] = field(default_factory=list)


class Controller:
    """Drives every running search of ``store`` on ``executor``.

    Args:
        store: The store.
        cluster: Pools, nodes, teams and priority classes.
        executor: Where attempts run.
        policy: The scheduling policy; the registered ``default`` when omitted.
        settings: Loop timing and checkpoint location.
        clock: Seconds since the epoch; tests pass a fake one.
    """

    def __init__(
        self,
        store: Store,
        cluster: ClusterConfig,
        executor: Executor,
        policy: SchedulingPolicy | None = None,
        settings: ControllerSettings | None = None,
        clock: Callable[[], float] = time.time,
        services: list[ControllerService] | None = None,
    ) -> None:
        self.store = store
        self.cluster = cluster
        self.executor = executor
        self.policy = policy or policies.get("default")()
        self.settings = settings or ControllerSettings()
        self.clock = clock
        self.services = default_services() if services is None else services
        self.policy_settings = self.settings.policy
        self.lease = Lease()
        self.searches: dict[int, SearchRuntime] = {}
        self.attempts: dict[int, AttemptRuntime] = {}
        self.reservations: dict[int, Reservation] = {}
        # Seconds the last call of the scheduling policy took; None before the first call.
        self.last_schedule_s: float | None = None
        self.transitions = Transitions(self)
        self._last_refresh = 0.0
        self._started = False

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Take the lease and reconcile with what the previous controller left.

        Raises:
            ControllerLockedError: Another live controller holds the lease.
        """
        with self.store.session() as session:
            if not self.lease.try_acquire(session, self.clock()):
                holder = self.lease.holder(session, self.clock())
                raise ControllerLockedError(f"another controller ({holder}) drives this store")
            self.transitions.recover_lost_attempts(session)
            for service in self.services:
                service.on_start(self, session)
            self._refresh(session, force=True)
            session.commit()
        self._started = True
        _logger.info("controller %s started with %d running searches", self.lease.owner, len(self.searches))

    def stop(self, grace_s: float | None = None) -> None:
        """Hand running attempts back to the store and release the lease.

        Attempts still running get ``grace_s`` to checkpoint (asked as a
        preemption); their trials go back to pending for the next controller.
        """
        if not self._started:
            return
        grace = self.settings.stop_grace_s if grace_s is None else grace_s
        if self.attempts:
            self._hand_over(grace)
        self.executor.shutdown()
        with self.store.session() as session:
            self.lease.release(session)
        self._started = False
        _logger.info("controller %s stopped", self.lease.owner)

    def run(self, until: Callable[[], bool] | None = None, on_tick: Callable[[], None] | None = None) -> None:
        """Tick until ``until()`` is true, or until no search is running."""
        finished = until or (lambda: not self.searches)
        while not finished():
            self.tick()
            if on_tick is not None:
                on_tick()

    # -- one tick --------------------------------------------------------------------------------

    def tick(self) -> None:
        events = self.executor.poll(self.settings.tick_s)
        outbox = Outbox()
        now = self.clock()

        with self.store.session() as session:
            if not self.lease.renew(session, now):
                raise ControllerLockedError("this controller lost its lease; another controller took over")
            for event in events:
                self.transitions.apply_event(session, event, outbox)
            self._refresh(session)
            self.transitions.enforce_timeouts(session, now, outbox)
            for search in list(self.searches.values()):
                self.transitions.advance_search(session, search, now, outbox)
            self.transitions.schedule(session, now, outbox)
            for service in self.services:
                service.on_tick(self, session, now, outbox)
            session.commit()

        self._carry_out(outbox)

    def preempt(self, attempt_id: int, reason: str) -> None:
        """Ask a running attempt to checkpoint and yield; its trial goes back to pending."""
        outbox = Outbox()
        with self.store.session() as session:
            self.transitions.preempt(session, Preempt(attempt_id, for_trial=-1, reason=reason), self.clock(), outbox)
            session.commit()
        self._carry_out(outbox)

    def _carry_out(self, outbox: Outbox) -> None:
        for attempt_id, step, decision in outbox.decisions:
            self.executor.decide(attempt_id, step, decision)
        for attempt_id, reason in outbox.stops:
            self.executor.request_stop(attempt_id, reason)
        for attempt_id in outbox.kills:
            self.executor.kill(attempt_id)
        for launch in outbox.launches:
            self.transitions.launch(launch)

    def _refresh(self, session: Session, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._last_refresh < self.settings.refresh_s:
            return
        self._last_refresh = now

        rows = session.scalars(select(Search).where(Search.state == SearchState.RUNNING.value)).all()
        for row in rows:
            if row.id not in self.searches:
                self.searches[row.id] = load_search(session, row)
                _logger.info("search %d (%s/%s) picked up", row.id, row.team, row.name)
            if row.cancel_requested:
                self.transitions.cancel_search(session, self.searches[row.id], now)

    def _hand_over(self, grace_s: float) -> None:
        outbox = Outbox(stops=[(attempt_id, StopRequest.PREEMPT) for attempt_id in self.attempts])
        with self.store.session() as session:
            for attempt in self.attempts.values():
                attempt.stop_requested = StopRequest.PREEMPT
                attempt.stop_requested_at = self.clock()
                self.transitions.mark_stop_requested(session, attempt, "controller stopping")
            session.commit()
        self._carry_out(outbox)

        deadline = time.monotonic() + grace_s
        while self.attempts and time.monotonic() < deadline:
            events = self.executor.poll(self.settings.tick_s)
            with self.store.session() as session:
                for event in events:
                    self.transitions.apply_event(session, event, Outbox())
                session.commit()
        for attempt_id in list(self.attempts):
            self.executor.kill(attempt_id)
        while self.attempts and self.executor.active():
            events = self.executor.poll(self.settings.tick_s)
            with self.store.session() as session:
                for event in events:
                    self.transitions.apply_event(session, event, Outbox())
                session.commit()
