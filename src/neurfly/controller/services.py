"""Services the controller runs on each tick: accounting, monitoring, governance.

A service sees what the controller records and may refine the scheduling
snapshot, but never places work itself: the policy decides, the executor
carries out. Every hook runs inside the tick's session, before the commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from neurfly.core.cluster import ClusterConfig
from neurfly.core.scheduling.snapshot import Snapshot
from neurfly.executors.protocol import ExecutorEvent, LaunchSpec

if TYPE_CHECKING:
    from neurfly.controller import Controller, Outbox
    from neurfly.controller.runtime import AttemptRuntime, SearchRuntime, TrialRuntime
    from neurfly.store import Attempt, Search


class ControllerService:
    """Base class of the controller's services; every hook is a no-op by default.

    Contract:
        * Hooks run in the controller's process, inside the current tick's
          session; they write through that session and never commit it.
        * Executor side effects go into the ``Outbox`` (stops, kills), so
          they happen only after the tick's commit.
        * A service keeps no state that a restarted controller cannot rebuild
          from the store in ``on_start``.
        * ``refine_snapshot`` returns a snapshot (the same one or a copy with
          changed fields); it must not add devices or running attempts.
    """

    def on_start(self, controller: Controller, session: Session) -> None:
        """Rebuild state from the store after the controller took the lease."""

    def use_cluster(self, cluster: ClusterConfig) -> None:
        """Take the cluster a search outside any controller is submitted for."""

    def check_submission(self, session: Session, search: Search) -> list[str]:
        """Return the reasons to reject a new search; empty to accept it."""
        return []

    def on_event(self, controller: Controller, session: Session, attempt: AttemptRuntime, event: ExecutorEvent, outbox: Outbox) -> None:
        """Look at an executor event after the controller recorded it."""

    def on_attempt_started(self, controller: Controller, session: Session, attempt: Attempt) -> None:
        """Look at an attempt row the controller just created (placement recorded, not yet launched)."""

    def on_attempt_ended(self, controller: Controller, session: Session, attempt: Attempt) -> None:
        """Look at an attempt row the controller just ended (state, times and reason set)."""

    def on_search_ended(self, controller: Controller, session: Session, search: SearchRuntime) -> None:
        """Look at a search that just reached a final state."""

    def refine_snapshot(self, controller: Controller, snapshot: Snapshot) -> Snapshot:
        """Return the snapshot the policy should see (team usage, constraints, priorities)."""
        return snapshot

    def refine_launch(self, controller: Controller, search: SearchRuntime, trial: TrialRuntime, launch: LaunchSpec) -> LaunchSpec:
        """Return the launch request to send (data the trial may read, its initial checkpoint)."""
        return launch

    def on_tick(self, controller: Controller, session: Session, now: float, outbox: Outbox) -> None:
        """Run once per tick after scheduling, before the commit."""


def default_services() -> list[ControllerService]:
    """Return the services every controller runs, in order."""
    from neurfly.accounting.service import AccountingService
    from neurfly.controller.usage import UsageService
    from neurfly.governance.service import GovernanceService
    from neurfly.monitoring.service import MonitoringService

    return [UsageService(), MonitoringService(), AccountingService(), GovernanceService()]
