"""Admission of a search: may its team use the data and artifact it names, and can a pool serve it?

``admit`` checks a spec for one team against the store and a cluster and
returns the problems, the audit entries and the inputs to pin. It writes
nothing, so the submission path and the controller can each record the
outcome in the way their transaction needs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from neurfly.core.cluster import ClusterConfig
from neurfly.core.spec import PoolsBusy, SearchSpec
from neurfly.governance.access import Caller
from neurfly.governance.artifacts import check_artifact_use
from neurfly.governance.audit import AuditEntry
from neurfly.governance.lineage import artifact_label
from neurfly.governance.models import Artifact, AuditAction, DataRole, Dataset, DatasetVersion, Decision, ResourceKind, SearchInput
from neurfly.governance.registry import check_use
from neurfly.governance.residency import Pinning, allowed_regions, busy_problems, residency_problems


@dataclass
class Admission:
    """The outcome of admitting one search, not yet recorded.

    Attributes:
        problems: Reasons to reject the search; empty when it is admitted.
        entries: Audit entries of every decision made.
        inputs: Rows to pin the exact versions and artifact (without ``search_id``).
        regions: Regions the search may run in; ``None`` means any.
    """

    problems: list[str] = field(default_factory=list)
    entries: list[AuditEntry] = field(default_factory=list)
    inputs: list[SearchInput] = field(default_factory=list)
    pinnings: list[Pinning] = field(default_factory=list)
    regions: frozenset[str] | None = None


def governs(spec: SearchSpec) -> bool:
    """Return whether the spec names registered data or an artifact, so governance applies."""
    return bool(spec.data.training or spec.data.validation or spec.warm_start)


def admit(
    session: Session,
    caller: Caller,
    spec: SearchSpec,
    cluster: ClusterConfig,
    search_id: int | None = None,
    check_busy: bool = True,
    now: float | None = None,
) -> Admission:
    """Check every input of ``spec`` for ``caller``'s team, then where it may run."""
    now = time.time() if now is None else now
    admission = Admission()
    _check_shape(spec, admission)
    for role, reference in ((DataRole.TRAINING, spec.data.training), (DataRole.VALIDATION, spec.data.validation)):
        if reference is not None:
            _admit_dataset(session, caller, role, reference, search_id, now, admission)
    if spec.warm_start is not None:
        _admit_artifact(session, caller, spec.warm_start.artifact, search_id, now, admission)
    if admission.problems:
        return admission

    admission.regions = allowed_regions(admission.pinnings)
    placement = residency_problems(admission.pinnings, cluster, spec.resources.hardware)
    if not placement and check_busy and spec.data.when_pools_busy is PoolsBusy.REJECT:
        placement = busy_problems(session, admission.pinnings, cluster, spec.resources.hardware, spec.resources.devices)
    for pinning in admission.pinnings:
        if pinning.regions:
            decision = Decision.DENY if placement else Decision.ALLOW
            reason = placement[0] if placement else f"runs only in {', '.join(sorted(admission.regions or ()))}"
            admission.entries.append(AuditEntry(caller.user, caller.team, AuditAction.PLACE, ResourceKind.DATASET, pinning.dataset,
                                                decision, reason, search_id=search_id, data={"regions": list(pinning.regions)}, at=now))
    admission.problems.extend(placement)
    return admission


def _check_shape(spec: SearchSpec, admission: Admission) -> None:
    if spec.data.dataset and (spec.data.training or spec.data.validation):
        admission.problems.append(
            f"data: 'dataset' ({spec.data.dataset}) names a bundled set and 'training' names a registered one; keep one of them"
        )
    if spec.data.validation and not spec.data.training:
        admission.problems.append("data.validation: needs data.training; name the registered training dataset too")


def _admit_dataset(session: Session, caller: Caller, role: DataRole, reference: str, search_id: int | None, now: float, admission: Admission) -> None:
    check = check_use(session, caller, reference, role, search_id=search_id, now=now)
    admission.entries.append(check.entry)
    if check.problem is not None:
        admission.problems.append(check.problem)
        return
    regions = tuple(check.dataset.regions or ())
    admission.pinnings.append(Pinning(f"{check.dataset.ref}@{check.version.version}", regions, f"{role.value} data"))
    admission.inputs.append(SearchInput(role=role.value, dataset_version_id=check.version.id, regions=list(regions)))


def _admit_artifact(session: Session, caller: Caller, reference: str, search_id: int | None, now: float, admission: Admission) -> None:
    check = check_artifact_use(session, caller, reference, search_id=search_id, now=now)
    admission.entries.extend(check.entries)
    if check.problems:
        admission.problems.extend(check.problems)
        return
    own = []
    for dataset, exposure in check.datasets:
        reached_as = f"{exposure.role.value} data behind {' -> '.join(exposure.via)}"
        pinning = Pinning(f"{dataset.ref}@{exposure.version}", tuple(dataset.regions or ()), reached_as)
        admission.pinnings.append(pinning)
        own.append(pinning)
    regions = allowed_regions(own)
    admission.inputs.append(SearchInput(role=DataRole.WARM_START.value, artifact_id=check.artifact.id, regions=sorted(regions or ())))


def pinned_inputs(session: Session, search_id: int) -> list[SearchInput]:
    """Return the inputs a search was admitted with."""
    return list(session.scalars(select(SearchInput).where(SearchInput.search_id == search_id).order_by(SearchInput.id)))


def pinnings_of(session: Session, inputs: list[SearchInput]) -> list[Pinning]:
    """Return the region constraints of pinned inputs, with the current regions of each dataset."""
    pinnings = []
    for row in inputs:
        if row.dataset_version_id is not None:
            version = session.get(DatasetVersion, row.dataset_version_id)
            dataset = session.get(Dataset, version.dataset_id)
            pinnings.append(Pinning(f"{dataset.ref}@{version.version}", tuple(dataset.regions or ()), f"{row.role} data"))
        else:
            artifact = session.get(Artifact, row.artifact_id)
            pinnings.append(Pinning(f"the data behind {artifact_label(artifact)}", tuple(row.regions or ()), "warm start"))
    return pinnings
