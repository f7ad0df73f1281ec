"""The controller service of data governance: admission, residency, warm starts, lineage and OpenLineage.

* ``check_submission`` admits a search only if its team may use every
  dataset and artifact it names and some pool in an allowed region can run
  it. It pins the exact versions.
* ``refine_snapshot`` gives the policy each pending trial's allowed
  regions, and hides trials of searches not yet checked by this controller.
* ``refine_launch`` passes the pinned versions to the trial and a warm-start
  artifact as the initial checkpoint of a trial without one.
* ``on_attempt_started`` and ``on_attempt_ended`` record inputs and send
  OpenLineage events once the tick has committed.
"""

from __future__ import annotations

import dataclasses
import logging
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openlineage.client.event_v2 import RunEvent
from sqlalchemy import event as orm_event
from sqlalchemy import func, select
from sqlalchemy.orm import Session, SessionTransaction

from neurfly.controller.services import ControllerService
from neurfly.core.cluster import ClusterConfig, default_cluster
from neurfly.core.scheduling.snapshot import Snapshot
from neurfly.core.spec import parse_spec
from neurfly.core.states import SearchState
from neurfly.executors.protocol import LaunchSpec
from neurfly.governance.access import Caller, current_user
from neurfly.governance.admission import admit, governs, pinned_inputs, pinnings_of
from neurfly.governance.audit import AuditEntry, record, record_after_transaction
from neurfly.governance.emitter import LineageEmitter, LineageSettings
from neurfly.governance.models import Artifact, AttemptInput, AuditAction, DataRole, Dataset, DatasetVersion, Decision, ResourceKind
from neurfly.governance.openlineage import attempt_event, search_event
from neurfly.governance.registry import version_descriptor
from neurfly.governance.residency import residency_problems
from neurfly.governance.run_facts import attempt_facts, input_facts, output_facts, search_facts
from neurfly.store import Attempt, Search

if TYPE_CHECKING:
    from neurfly.controller import Controller, Outbox
    from neurfly.controller.runtime import SearchRuntime, TrialRuntime

_logger = logging.getLogger(__name__)


@dataclass
class SearchPlan:
    """Inputs and placement constraints that this controller applies to a search's trials.

    Attributes:
        regions: Allowed regions; ``None`` means any.
        descriptors: Role to the version descriptor given to each trial.
        version_ids: Role to the dataset version row id, for lineage.
        warm_start: Id, URI and digest of the artifact a trial without a checkpoint starts from.
        blocked: The search failed this controller's checks; its trials never run.
    """

    regions: frozenset[str] | None = None
    descriptors: dict[str, dict[str, Any]] = field(default_factory=dict)
    version_ids: dict[str, int] = field(default_factory=dict)
    warm_start: tuple[int, str, str] | None = None
    blocked: bool = False


@dataclass
class _Launched:
    search_id: int
    roles: dict[str, int]
    warm_start_id: int | None
    violation: str | None = None


class GovernanceService(ControllerService):
    """Enforces data access and residency for searches, and records their lineage.

    Args:
        cluster: The cluster that submissions are checked against; the
            controller's own cluster replaces it in ``on_start``. Without
            either, the embedded default cluster is used.
        lineage: Where OpenLineage events go; read from the environment when omitted.
    """

    def __init__(self, cluster: ClusterConfig | None = None, lineage: LineageSettings | None = None) -> None:
        self.cluster = cluster
        self.emitter = LineageEmitter(lineage)
        self._plans: dict[int, SearchPlan] = {}
        self._launched: dict[int, _Launched] = {}
        self._violations: list[int] = []
        self._new_violations: list[int] = []
        # Events per session, each with its search and whether it ends the search's run.
        self._pending: weakref.WeakKeyDictionary[Session, list[tuple[int, RunEvent, bool]]] = weakref.WeakKeyDictionary()

    # -- admission ---------------------------------------------------------------------------

    def use_cluster(self, cluster: ClusterConfig) -> None:
        self.cluster = cluster

    def check_submission(self, session: Session, search: Search) -> list[str]:
        spec, _ = parse_spec(search.spec)
        if not governs(spec):
            return []
        # Without a cluster from the caller or a controller, the embedded default is checked; the controller checks again with its own.
        cluster = self.cluster or default_cluster()
        admission = admit(session, Caller(search.team, current_user()), spec, cluster, search_id=search.id)
        record_after_transaction(session, admission.entries)
        if admission.problems:
            return admission.problems
        for row in admission.inputs:
            row.search_id = search.id
            session.add(row)
        return []

    # -- controller life -----------------------------------------------------------------------

    def on_start(self, controller: Controller, session: Session) -> None:
        self.cluster = controller.cluster
        self._plans.clear()
        self._launched.clear()
        self._violations.clear()
        self._new_violations.clear()

    def on_tick(self, controller: Controller, session: Session, now: float, outbox: Outbox) -> None:
        for search_id, search in list(controller.searches.items()):
            if search_id not in self._plans and search.ending is None:
                self._plans[search_id] = self._plan(controller, session, search, now)
        for attempt_id in self._violations:
            if attempt_id in controller.attempts:
                outbox.kills.append(attempt_id)
        self._violations, self._new_violations = self._new_violations, []

    def _plan(self, controller: Controller, session: Session, search: SearchRuntime, now: float) -> SearchPlan:
        if not session.scalar(select(func.count()).select_from(Attempt).where(Attempt.search_id == search.id)):
            row = session.get(Search, search.id)
            self._queue(session, search.id, search_event(search_facts(row, SearchState.RUNNING), self.emitter.settings.namespace, now), False)

        inputs = pinned_inputs(session, search.id)
        if governs(search.spec) and not inputs:
            admission = admit(session, Caller(search.team, current_user()), search.spec, controller.cluster, search.id, check_busy=False, now=now)
            for entry in admission.entries:
                record(session, entry)
            if admission.problems:
                return self._block(search, admission.problems)
            for row in admission.inputs:
                row.search_id = search.id
                session.add(row)
            session.flush()
            inputs = admission.inputs
        else:
            problems = residency_problems(pinnings_of(session, inputs), controller.cluster, search.spec.resources.hardware)
            if problems:
                return self._block(search, problems)

        plan = self._build_plan(session, inputs)
        if plan.regions is not None:
            _logger.info("search %d may run only in %s", search.id, ", ".join(sorted(plan.regions)))
        return plan

    @staticmethod
    def _block(search: SearchRuntime, problems: list[str]) -> SearchPlan:
        message = "rejected by data governance: " + "; ".join(problems)
        search.ending = (SearchState.FAILED, message)
        _logger.warning("search %d %s", search.id, message)
        return SearchPlan(blocked=True)

    @staticmethod
    def _build_plan(session: Session, inputs: list[Any]) -> SearchPlan:
        plan = SearchPlan()
        for row in inputs:
            if row.regions:
                regions = frozenset(row.regions)
                plan.regions = regions if plan.regions is None else plan.regions & regions
            if row.dataset_version_id is not None:
                version = session.get(DatasetVersion, row.dataset_version_id)
                dataset = session.get(Dataset, version.dataset_id)
                # The dataset's current regions apply too, in case its owner narrowed them after admission.
                if dataset.regions:
                    current = frozenset(dataset.regions)
                    plan.regions = current if plan.regions is None else plan.regions & current
                plan.descriptors[row.role] = version_descriptor(dataset, version)
                plan.version_ids[row.role] = version.id
            elif row.artifact_id is not None:
                artifact = session.get(Artifact, row.artifact_id)
                plan.warm_start = (artifact.id, artifact.uri, artifact.digest)
        return plan

    # -- scheduling and launch -------------------------------------------------------------------

    def refine_snapshot(self, controller: Controller, snapshot: Snapshot) -> Snapshot:
        pending = []
        for trial in snapshot.pending:
            plan = self._plans.get(trial.search_id)
            if plan is None:
                search = controller.searches.get(trial.search_id)
                # Governed searches wait for this controller's own check before any trial is placed.
                if search is None or governs(search.spec):
                    continue
            elif plan.blocked:
                continue
            elif plan.regions is not None:
                regions = plan.regions if trial.allowed_regions is None else trial.allowed_regions & plan.regions
                trial = dataclasses.replace(trial, allowed_regions=regions)
            pending.append(trial)
        return dataclasses.replace(snapshot, pending=tuple(pending))

    def refine_launch(self, controller: Controller, search: SearchRuntime, trial: TrialRuntime, launch: LaunchSpec) -> LaunchSpec:
        plan = self._plans.get(search.id)
        if plan is None:
            return launch
        region = controller.cluster.pool_of_node(launch.node).region
        if plan.regions is not None and region not in plan.regions:
            return self._withhold(search, launch, region, plan)

        data = {**launch.data, **plan.descriptors}
        checkpoint_in = launch.checkpoint_in
        warm_start_id = None
        if checkpoint_in is None and plan.warm_start is not None:
            warm_start_id, uri, digest = plan.warm_start
            checkpoint_in = (uri, digest)
        self._launched[launch.attempt_id] = _Launched(search.id, dict(plan.version_ids), warm_start_id)
        return dataclasses.replace(launch, data=data, checkpoint_in=checkpoint_in)

    def _withhold(self, search: SearchRuntime, launch: LaunchSpec, region: str, plan: SearchPlan) -> LaunchSpec:
        reason = (
            f"attempt {launch.attempt_id} of search {search.id} was placed on node {launch.node} in region {region}, "
            f"but its data may be processed only in {', '.join(sorted(plan.regions))}; its data is withheld and the attempt is stopped"
        )
        _logger.error("%s (the scheduling policy ignored allowed_regions)", reason)
        self._launched[launch.attempt_id] = _Launched(search.id, {}, None, violation=reason)
        self._new_violations.append(launch.attempt_id)
        data = {key: value for key, value in launch.data.items() if key not in ("training", "validation")}
        return dataclasses.replace(launch, data={**data, "withheld": reason}, checkpoint_in=launch.checkpoint_in)

    # -- lineage ---------------------------------------------------------------------------------

    def on_attempt_started(self, controller: Controller, session: Session, attempt: Attempt) -> None:
        launched = self._launched.pop(attempt.id, None)
        now = attempt.started_at
        if launched is not None and launched.violation is not None:
            row = session.get(Search, attempt.search_id)
            record(session, AuditEntry("controller", row.team, AuditAction.PLACE, ResourceKind.DATASET, f"search {row.id}",
                                       Decision.DENY, launched.violation, search_id=row.id, at=now))
        elif launched is not None:
            for role, version_id in launched.roles.items():
                session.add(AttemptInput(attempt_id=attempt.id, search_id=attempt.search_id, trial_id=attempt.trial_id, role=role,
                                         dataset_version_id=version_id, recorded_at=now))
            if launched.warm_start_id is not None:
                session.add(AttemptInput(attempt_id=attempt.id, search_id=attempt.search_id, trial_id=attempt.trial_id,
                                         role=DataRole.WARM_START.value, artifact_id=launched.warm_start_id, recorded_at=now))
            session.flush()
        self._queue_attempt(session, attempt, include_reported=False, at=now)

    def on_attempt_ended(self, controller: Controller, session: Session, attempt: Attempt) -> None:
        # NOTE: attempts a crashed controller left running are marked lost at restart without this hook, so they get no final event.
        self._queue_attempt(session, attempt, include_reported=True, at=attempt.ended_at or controller.clock())

    def on_search_ended(self, controller: Controller, session: Session, search: SearchRuntime) -> None:
        self._plans.pop(search.id, None)
        row = session.get(Search, search.id)
        state = search.ending[0] if search.ending else SearchState(row.state)
        facts = dataclasses.replace(search_facts(row, state), message=search.ending[1] if search.ending else row.message)
        self._queue(session, search.id, search_event(facts, self.emitter.settings.namespace, controller.clock()), True)

    def _queue_attempt(self, session: Session, attempt: Attempt, include_reported: bool, at: float) -> None:
        search = session.get(Search, attempt.search_id)
        event = attempt_event(
            search_facts(search), attempt_facts(session, attempt), input_facts(session, attempt, include_reported),
            output_facts(session, attempt) if include_reported else [], self.emitter.settings.namespace, at,
        )
        self._queue(session, attempt.search_id, event, False)

    def _queue(self, session: Session, search_id: int, event: RunEvent, ends_search: bool) -> None:
        """Hold ``event`` until ``session`` commits; a rollback drops it."""
        pending = self._pending.get(session)
        if pending is None:
            self._pending[session] = pending = []
            orm_event.listen(session, "after_commit", self._emit_pending)
            orm_event.listen(session, "after_transaction_end", self._drop_pending)
        pending.append((search_id, event, ends_search))

    def _emit_pending(self, session: Session) -> None:
        for search_id, event, ends_search in self._pending.pop(session, []):
            self.emitter.emit(search_id, event)
            if ends_search:
                self.emitter.close(search_id)

    def _drop_pending(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None and not transaction.nested:
            dropped = self._pending.pop(session, [])
            if dropped:
                _logger.info("%d OpenLineage event(s) dropped with a rolled-back transaction", len(dropped))
