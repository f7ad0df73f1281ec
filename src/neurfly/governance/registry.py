"""The dataset registry: register, list, describe, read and resolve dataset versions.

Every function takes the caller's session and a ``Caller``; it flushes and
leaves the commit to the caller. Each access decision is audited: allowed
ones in the caller's transaction, denied ones in a transaction of their own
that is written even when the caller rolls back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from neurfly.core.spec import NAME_PATTERN
from neurfly.errors import NeurflyError
from neurfly.governance.access import (
    AccessDeniedError,
    Caller,
    Ref,
    Verdict,
    can_see_dataset,
    can_use_dataset,
    parse_ref,
)
from neurfly.governance.audit import AuditEntry, record, record_after_transaction
from neurfly.governance.models import (
    AuditAction,
    DataRole,
    Dataset,
    DatasetVersion,
    Decision,
    HashAlgorithm,
    ResourceKind,
    Sensitivity,
)
from neurfly.governance.versions import VersionInfo

_logger = logging.getLogger(__name__)

# A version may be named by this many leading hex characters of its digest, or more.
MIN_VERSION_PREFIX = 7


class DatasetError(NeurflyError, ValueError):
    """A dataset reference or registration is invalid; the message names the value and the fix."""


@dataclass(frozen=True)
class UseCheck:
    """The outcome of checking one dataset reference for one role, not yet audited."""

    ref: Ref
    role: DataRole
    entry: AuditEntry
    dataset: Dataset | None = None
    version: DatasetVersion | None = None
    problem: str | None = None


def _hidden_message(ref: Ref | str, team: str) -> str:
    owner = str(ref).split("/")[0]
    return (
        f"dataset {ref} not found, or team {team} may not see it; check the name with 'neurfly dataset list', "
        f"or ask team {owner} for a grant ('neurfly grant dataset {str(ref).split('@')[0]} --to {team} --role ...')"
    )


# -- register -----------------------------------------------------------------------------------


def register_version(
    session: Session,
    caller: Caller,
    name: str,
    info: VersionInfo,
    *,
    sensitivity: Sensitivity | None = None,
    tags: Iterable[str] = (),
    regions: Iterable[str] = (),
    description: str = "",
    now: float | None = None,
) -> DatasetVersion:
    """Add a version to a dataset of the caller's team, creating the dataset on first use.

    ``name`` is ``NAME`` or ``TEAM/NAME`` (the team must be the caller's).
    Registering the same content again returns the existing version.

    Raises:
        DatasetError: The dataset is new and ``sensitivity`` is missing, or
            ``sensitivity``, ``tags`` or ``regions`` differ from the existing
            dataset's (change them with ``update_dataset``).
        AccessDeniedError: ``name`` belongs to another team.
    """
    now = time.time() if now is None else now
    ref = own_ref(session, caller, name, AuditAction.REGISTER, now)
    dataset = _find(session, ref)
    if dataset is None:
        dataset = _create(session, caller, ref, sensitivity, tags, regions, description, now)
    else:
        check_same_policy(dataset, sensitivity, tags, regions)

    existing = session.scalars(select(DatasetVersion).where(
        DatasetVersion.dataset_id == dataset.id, DatasetVersion.algorithm == info.algorithm.value, DatasetVersion.digest == info.digest,
    )).first()
    if existing is not None:
        return existing
    version = DatasetVersion(
        dataset_id=dataset.id, algorithm=info.algorithm.value, digest=info.digest, source=info.source.value, uri=info.uri,
        format=info.format, label_column=info.label_column, rows=info.rows, size_bytes=info.size_bytes,
        details=dict(info.details), created_at=now, created_by=caller.user,
    )
    session.add(version)
    session.flush()
    record(session, AuditEntry(caller.user, caller.team, AuditAction.REGISTER, ResourceKind.DATASET, dataset.ref, Decision.ALLOW,
                               f"version {version.version} registered from {info.source.value}", version=version.version, at=now))
    _logger.info("dataset %s: version %s registered by %s", dataset.ref, version.version, caller.user)
    return version


def own_ref(session: Session, caller: Caller, name: str, action: AuditAction, now: float) -> Ref:
    """Parse ``name`` (``NAME`` or ``TEAM/NAME``) as a dataset the caller's team may change.

    Raises:
        DatasetError: ``name`` carries a version.
        AccessDeniedError: The dataset belongs to another team; the denial is
            audited even when the caller rolls back.
    """
    ref = parse_ref(name if "/" in name else f"{caller.team}/{name}")
    if ref.version is not None:
        raise DatasetError(f"{name!r}: a registration names the dataset without a version; the version is computed")
    if ref.team != caller.team:
        reason = f"team {caller.team} cannot change dataset {ref.key} of team {ref.team}"
        record_after_transaction(session, [AuditEntry(caller.user, caller.team, action, ResourceKind.DATASET, ref.key, Decision.DENY, reason, at=now)])
        raise AccessDeniedError(reason, ref.key, action)
    return ref


def _create(session: Session, caller: Caller, ref: Ref, sensitivity: Sensitivity | None, tags: Iterable[str],
            regions: Iterable[str], description: str, now: float) -> Dataset:
    if sensitivity is None:
        choices = ", ".join(s.value for s in Sensitivity)
        raise DatasetError(f"dataset {ref.key} is new; give its sensitivity ({choices}), e.g. --sensitivity confidential")
    dataset = Dataset(
        team=ref.team, name=ref.name, sensitivity=Sensitivity(sensitivity).value, tags=normalise_tags(tags),
        regions=normalise_regions(regions), description=description, created_at=now, created_by=caller.user,
    )
    session.add(dataset)
    session.flush()
    return dataset


def check_same_policy(dataset: Dataset, sensitivity: Sensitivity | None, tags: Iterable[str], regions: Iterable[str]) -> None:
    """Raise ``DatasetError`` when a new registration would change a dataset's sensitivity, tags or regions."""
    tags, regions = normalise_tags(tags), normalise_regions(regions)
    changes = []
    if sensitivity is not None and Sensitivity(sensitivity).value != dataset.sensitivity:
        changes.append(f"sensitivity {dataset.sensitivity} -> {Sensitivity(sensitivity).value}")
    if tags and tags != dataset.tags:
        changes.append(f"tags {dataset.tags} -> {tags}")
    if regions and regions != dataset.regions:
        changes.append(f"regions {dataset.regions} -> {regions}")
    if changes:
        raise DatasetError(
            f"dataset {dataset.ref} exists with other settings ({'; '.join(changes)}); a new version keeps the dataset's "
            "settings. Change them with 'neurfly dataset set' first"
        )


def normalise_tags(tags: Iterable[str]) -> list[str]:
    """Return tags upper-cased, unique and sorted (``pii`` and ``PII`` are one tag)."""
    cleaned = []
    for tag in tags:
        value = str(tag).strip().upper()
        if not value or not value.replace("-", "").replace("_", "").isalnum():
            raise DatasetError(f"tag {tag!r} is invalid; use letters, digits, '-' or '_', e.g. PII or PHI")
        cleaned.append(value)
    return sorted(set(cleaned))


def normalise_regions(regions: Iterable[str]) -> list[str]:
    """Return region names unique and sorted; an empty list means any region."""
    cleaned = []
    for region in regions:
        value = str(region).strip()
        if not value or not NAME_PATTERN.match(value):
            raise DatasetError(f"region {region!r} is invalid; use the region names of the cluster's pools, e.g. eu-west")
        cleaned.append(value)
    return sorted(set(cleaned))


def update_dataset(
    session: Session,
    caller: Caller,
    name: str,
    *,
    sensitivity: Sensitivity | None = None,
    tags: Iterable[str] | None = None,
    regions: Iterable[str] | None = None,
    now: float | None = None,
) -> Dataset:
    """Change a dataset's sensitivity, tags or regions; searches admitted before keep their pinned regions.

    Raises:
        AccessDeniedError: The dataset belongs to another team.
        DatasetError: No dataset has that name.
    """
    now = time.time() if now is None else now
    ref = own_ref(session, caller, name, AuditAction.REGISTER, now)
    dataset = _find(session, ref)
    if dataset is None:
        raise DatasetError(f"dataset {ref.key} not found; register a version first with 'neurfly dataset register'")
    before = {"sensitivity": dataset.sensitivity, "tags": list(dataset.tags), "regions": list(dataset.regions)}
    if sensitivity is not None:
        dataset.sensitivity = Sensitivity(sensitivity).value
    if tags is not None:
        dataset.tags = normalise_tags(tags)
    if regions is not None:
        dataset.regions = normalise_regions(regions)
    after = {"sensitivity": dataset.sensitivity, "tags": list(dataset.tags), "regions": list(dataset.regions)}
    record(session, AuditEntry(caller.user, caller.team, AuditAction.REGISTER, ResourceKind.DATASET, dataset.ref, Decision.ALLOW,
                               "dataset settings changed", data={"before": before, "after": after}, at=now))
    return dataset


# -- look up ------------------------------------------------------------------------------------


def _find(session: Session, ref: Ref) -> Dataset | None:
    return session.scalars(select(Dataset).where(Dataset.team == ref.team, Dataset.name == ref.name)).first()


def versions_of(session: Session, dataset: Dataset) -> list[DatasetVersion]:
    """Return a dataset's versions, newest first."""
    return list(session.scalars(select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id).order_by(DatasetVersion.id.desc())))


def find_version(session: Session, dataset: Dataset, version: str | None) -> DatasetVersion:
    """Return the version named ``version`` (``algorithm:digest`` or a digest prefix), or the newest one.

    Raises:
        DatasetError: No version, none that matches, or a prefix that matches several.
    """
    versions = versions_of(session, dataset)
    if not versions:
        raise DatasetError(f"dataset {dataset.ref} has no versions; register one with 'neurfly dataset register'")
    if version is None:
        return versions[0]

    algorithm, _, digest = version.rpartition(":")
    if algorithm and algorithm not in {a.value for a in HashAlgorithm}:
        raise DatasetError(f"version {version!r} of {dataset.ref}: unknown algorithm {algorithm!r}; use one of {', '.join(a.value for a in HashAlgorithm)}")
    if not algorithm and len(digest) < MIN_VERSION_PREFIX:
        raise DatasetError(f"version {version!r} of {dataset.ref} is too short; give at least {MIN_VERSION_PREFIX} characters or ALGORITHM:DIGEST")
    matches = [v for v in versions if (not algorithm or v.algorithm == algorithm) and v.digest.startswith(digest.lower())]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(v.version for v in versions[:5])
    if not matches:
        raise DatasetError(f"version {version!r} of {dataset.ref} not found; its newest versions are {known}")
    raise DatasetError(f"version {version!r} of {dataset.ref} matches {len(matches)} versions ({', '.join(v.version for v in matches)}); give more of it")


def describe_dataset(session: Session, caller: Caller, name: str, now: float | None = None) -> tuple[Dataset, list[DatasetVersion]]:
    """Return a dataset the caller's team may see, with its versions.

    Raises:
        AccessDeniedError: The dataset does not exist or is not visible to
            the caller's team (the message is the same for both).
    """
    now = time.time() if now is None else now
    ref = parse_ref(name if "/" in name else f"{caller.team}/{name}")
    dataset = _find(session, ref)
    verdict = can_see_dataset(session, caller.team, dataset, now) if dataset is not None else None
    _audit_read(session, caller, ref, AuditAction.READ, verdict, "metadata", now)
    if verdict is None or not verdict.allowed:
        raise AccessDeniedError(_hidden_message(ref, caller.team), ref.key, AuditAction.READ)
    return dataset, versions_of(session, dataset)


def list_datasets(session: Session, caller: Caller, now: float | None = None) -> list[Dataset]:
    """Return the datasets the caller's team may see: its own, public and internal ones, and granted ones.

    Each protected dataset of another team is an audited decision: listed
    through a grant, or hidden.
    """
    now = time.time() if now is None else now
    visible = []
    for dataset in session.scalars(select(Dataset).order_by(Dataset.team, Dataset.name)):
        verdict = can_see_dataset(session, caller.team, dataset, now)
        if dataset.team != caller.team and not Sensitivity(dataset.sensitivity).visible_to_all:
            entry = AuditEntry(caller.user, caller.team, AuditAction.LIST, ResourceKind.DATASET, dataset.ref, verdict.decision, verdict.reason, at=now)
            if verdict.allowed:
                record(session, entry)
            else:
                record_after_transaction(session, [entry])
        if verdict.allowed:
            visible.append(dataset)
    return visible


def read_dataset(session: Session, caller: Caller, name: str, rows: int = 5, now: float | None = None) -> dict[str, Any]:
    """Read the first ``rows`` rows of a dataset version the caller's team may use in some role.

    Returns:
        ``{"dataset", "version", "columns", "rows"}``.

    Raises:
        AccessDeniedError: No such dataset, or no right to read its rows.
        DataError: The data cannot be read, or no longer matches its version.
    """
    from neurfly.governance.loading import preview

    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    now = time.time() if now is None else now
    ref = parse_ref(name if "/" in name else f"{caller.team}/{name}")
    dataset = _find(session, ref)
    verdict = None
    if dataset is not None:
        verdict = can_use_dataset(session, caller.team, dataset, None, now)
    _audit_read(session, caller, ref, AuditAction.READ, verdict, "rows", now)
    if verdict is None or not verdict.allowed:
        if dataset is not None and can_see_dataset(session, caller.team, dataset, now).allowed:
            raise AccessDeniedError(f"team {caller.team} may see {ref.key} but not read its rows: {verdict.reason}; ask team {ref.team} for a grant", ref.key, AuditAction.READ)
        raise AccessDeniedError(_hidden_message(ref, caller.team), ref.key, AuditAction.READ)
    version = find_version(session, dataset, ref.version)
    columns, values = preview(version_descriptor(dataset, version), rows)
    return {"dataset": dataset.ref, "version": version.version, "columns": columns, "rows": values}


def _audit_read(session: Session, caller: Caller, ref: Ref, action: AuditAction, verdict: Verdict | None, part: str, now: float) -> None:
    if verdict is None:
        entry = AuditEntry(caller.user, caller.team, action, ResourceKind.DATASET, ref.key, Decision.DENY, "no such dataset", data={"part": part}, at=now)
        record_after_transaction(session, [entry])
        return
    entry = AuditEntry(caller.user, caller.team, action, ResourceKind.DATASET, ref.key, verdict.decision, verdict.reason, version=ref.version, data={"part": part}, at=now)
    if verdict.allowed:
        record(session, entry)
    else:
        record_after_transaction(session, [entry])


# -- use by a search ----------------------------------------------------------------------------


def check_use(session: Session, caller: Caller, reference: str, role: DataRole, search_id: int | None = None,
              now: float | None = None) -> UseCheck:
    """Check whether the caller's team may use ``reference`` in ``role``; writes nothing.

    The returned ``UseCheck`` carries the audit entry to record and, when
    allowed, the dataset and the exact version (the newest one when the
    reference names none).
    """
    now = time.time() if now is None else now
    action = AuditAction(role.value)
    try:
        ref = parse_ref(reference)
    except ValueError as exc:
        entry = AuditEntry(caller.user, caller.team, action, ResourceKind.DATASET, str(reference)[:255], Decision.DENY, str(exc), search_id=search_id, at=now)
        return UseCheck(Ref("?", "?"), role, entry, problem=f"data.{role.value}: {exc}")
    dataset = _find(session, ref)
    if dataset is None or not can_see_dataset(session, caller.team, dataset, now).allowed:
        reason = "no such dataset" if dataset is None else can_use_dataset(session, caller.team, dataset, role, now).reason
        entry = AuditEntry(caller.user, caller.team, action, ResourceKind.DATASET, ref.key, Decision.DENY, reason, search_id=search_id, at=now)
        # A team that held a grant has seen the dataset before, so the message names its lapsed grant.
        message = f"{reason}; ask team {ref.team} to renew it" if reason.startswith("grant ") else _hidden_message(ref, caller.team)
        return UseCheck(ref, role, entry, problem=f"data.{role.value}: {message}")

    verdict = can_use_dataset(session, caller.team, dataset, role, now)
    if not verdict.allowed:
        entry = AuditEntry(caller.user, caller.team, action, ResourceKind.DATASET, ref.key, Decision.DENY, verdict.reason, search_id=search_id, at=now)
        fix = f"ask team {dataset.team} for a grant: neurfly grant dataset {ref.key} --to {caller.team} --role {role.value}"
        return UseCheck(ref, role, entry, dataset, problem=f"data.{role.value}: team {caller.team} may not use {ref.key} for {role.value}: {verdict.reason}; {fix}")
    try:
        version = find_version(session, dataset, ref.version)
    except DatasetError as exc:
        entry = AuditEntry(caller.user, caller.team, action, ResourceKind.DATASET, ref.key, Decision.DENY, str(exc), search_id=search_id, at=now)
        return UseCheck(ref, role, entry, dataset, problem=f"data.{role.value}: {exc}")
    entry = AuditEntry(caller.user, caller.team, action, ResourceKind.DATASET, ref.key, Decision.ALLOW, verdict.reason,
                       version=version.version, search_id=search_id, at=now)
    return UseCheck(ref, role, entry, dataset, version)


def use_dataset(session: Session, caller: Caller, reference: str, role: DataRole, now: float | None = None) -> tuple[Dataset, DatasetVersion]:
    """Resolve a dataset version for use in ``role`` by the caller's team, auditing the decision.

    Raises:
        AccessDeniedError: The team may not use it in that role, or it does not exist.
    """
    check = check_use(session, caller, reference, role, now=now)
    if check.problem is not None:
        record_after_transaction(session, [check.entry])
        raise AccessDeniedError(check.problem, check.ref.key, AuditAction(role.value))
    record(session, check.entry)
    return check.dataset, check.version


def version_descriptor(dataset: Dataset, version: DatasetVersion) -> dict[str, Any]:
    """Describe a version for the trial's worker: where to read it and how to check it."""
    return {
        "dataset": dataset.ref,
        "version": version.version,
        "algorithm": version.algorithm,
        "digest": version.digest,
        "source": version.source,
        "uri": version.uri,
        "format": version.format,
        "label_column": version.label_column,
        "details": dict(version.details or {}),
    }
