"""Access decisions on datasets and artifacts: the owner team, or a team with a grant, may use them.

The decision functions read the store and return a ``Verdict`` without
writing anything. The callers in ``registry``, ``artifacts`` and the
controller service record each verdict in the audit log.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from neurfly.core.spec import NAME_PATTERN
from neurfly.errors import NeurflyError
from neurfly.governance.audit import AuditEntry, record, record_after_transaction
from neurfly.governance.models import (
    GRANTABLE_ROLES,
    Artifact,
    AuditAction,
    DataRole,
    Dataset,
    Decision,
    Grant,
    ResourceKind,
    Sensitivity,
)

_logger = logging.getLogger(__name__)

# A grant on a restricted dataset must expire within this many days.
MAX_RESTRICTED_GRANT_DAYS = 90
# Days a grant lasts when the granting team gives no expiry.
DEFAULT_GRANT_DAYS = 90
DAY_S = 86_400.0

REF_PATTERN = re.compile(r"^(?P<team>[a-z0-9][a-z0-9._-]{0,62})/(?P<name>[a-z0-9][a-z0-9._-]{0,62})(?:@(?P<version>[A-Za-z0-9:._-]+))?$")


class AccessDeniedError(NeurflyError, PermissionError):
    """A team asked for data or an artifact it may not use; the message names the fix.

    Attributes:
        resource: ``team/name`` of the dataset or artifact.
        action: The requested action (list, read, training, validation, warm_start, ...).
    """

    def __init__(self, message: str, resource: str, action: AuditAction) -> None:
        self.resource = resource
        self.action = action
        super().__init__(message)


@dataclass(frozen=True)
class Caller:
    """The team a request acts for, and the user or service account behind it.

    The REST layer fills it from an authenticated token after checking the
    user's membership of ``team``; the CLI from ``--team`` and ``--user``.
    """

    team: str
    user: str

    def __post_init__(self) -> None:
        if not isinstance(self.team, str) or not NAME_PATTERN.match(self.team):
            raise ValueError(f"team {self.team!r} is invalid; use 1-63 lowercase letters, digits, '.', '_' or '-'")
        if not isinstance(self.user, str) or not self.user:
            raise ValueError(f"user {self.user!r} is invalid; give a non-empty user name")


def current_user() -> str:
    """Return ``$NEURFLY_USER``, or else the operating system's user name."""
    return os.environ.get("NEURFLY_USER") or getpass.getuser()


@dataclass(frozen=True)
class Ref:
    """A parsed ``team/name[@version]`` reference."""

    team: str
    name: str
    version: str | None = None

    @property
    def key(self) -> str:
        return f"{self.team}/{self.name}"

    def __str__(self) -> str:
        return self.key if self.version is None else f"{self.key}@{self.version}"


def parse_ref(text: str, kind: str = "dataset") -> Ref:
    """Parse ``team/name`` or ``team/name@version``.

    Raises:
        ValueError: ``text`` is not of that form.
    """
    match = REF_PATTERN.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{kind} reference {text!r} is invalid; write TEAM/NAME or TEAM/NAME@VERSION, e.g. team-a/customers@sha256:3f2a...")
    return Ref(match["team"], match["name"], match["version"])


@dataclass(frozen=True)
class Verdict:
    """An access decision and its reason, ready to be audited."""

    decision: Decision
    reason: str
    grant_id: int | None = None

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW


def active_grants(session: Session, kind: ResourceKind, resource_id: int, grantee: str, now: float) -> list[Grant]:
    """Return the grants of a resource to ``grantee`` that are neither revoked nor expired at ``now``."""
    rows = session.scalars(
        select(Grant).where(Grant.resource_kind == kind.value, Grant.resource_id == resource_id, Grant.grantee_team == grantee)
    )
    return [grant for grant in rows if grant.active(now)]


def can_see_dataset(session: Session, team: str, dataset: Dataset, now: float) -> Verdict:
    """Decide whether ``team`` may see a dataset's metadata and versions."""
    if dataset.team == team:
        return Verdict(Decision.ALLOW, "owner team")
    if Sensitivity(dataset.sensitivity).visible_to_all:
        return Verdict(Decision.ALLOW, f"{dataset.sensitivity} dataset, visible to every team")
    grants = active_grants(session, ResourceKind.DATASET, dataset.id, team, now)
    if grants:
        return Verdict(Decision.ALLOW, f"grant {grants[0].id}", grants[0].id)
    return Verdict(Decision.DENY, f"{dataset.sensitivity} dataset and no active grant to team {team}")


def can_use_dataset(session: Session, team: str, dataset: Dataset, role: DataRole | None, now: float) -> Verdict:
    """Decide whether ``team`` may use a dataset's rows in ``role`` (``None``: read them in any role)."""
    if dataset.team == team:
        return Verdict(Decision.ALLOW, "owner team")
    if dataset.sensitivity == Sensitivity.PUBLIC.value:
        return Verdict(Decision.ALLOW, "public dataset")
    return _grant_verdict(session, ResourceKind.DATASET, dataset.id, dataset.ref, dataset.sensitivity, team, role, now)


def can_use_artifact(session: Session, team: str, artifact: Artifact, now: float) -> Verdict:
    """Decide whether ``team`` may start from an artifact (its owner, or a grant for ``warm_start``)."""
    if artifact.team == team:
        return Verdict(Decision.ALLOW, "owner team")
    return _grant_verdict(session, ResourceKind.ARTIFACT, artifact.id, f"{artifact.team}/{artifact.name}", "artifact", team, DataRole.WARM_START, now)


def _grant_verdict(session: Session, kind: ResourceKind, resource_id: int, ref: str, resource_class: str, team: str,
                   role: DataRole | None, now: float) -> Verdict:
    grants = active_grants(session, kind, resource_id, team, now)
    for grant in grants:
        if role is None or role.value in grant.roles:
            return Verdict(Decision.ALLOW, f"grant {grant.id} ({', '.join(grant.roles)})", grant.id)
    requested = "any role" if role is None else f"role {role.value}"
    if grants:
        allowed = sorted({r for g in grants for r in g.roles})
        return Verdict(Decision.DENY, f"the grants of {ref} to team {team} allow {', '.join(allowed)}, not {requested}")
    expired = session.scalars(
        select(Grant).where(Grant.resource_kind == kind.value, Grant.resource_id == resource_id, Grant.grantee_team == team)
    ).first()
    if expired is not None:
        state = "was revoked" if expired.revoked_at is not None else "has expired"
        return Verdict(Decision.DENY, f"grant {expired.id} of {ref} to team {team} {state}")
    return Verdict(Decision.DENY, f"{ref} is a {resource_class} of team {ref.split('/')[0]} with no grant to team {team} for {requested}")


# -- grants -------------------------------------------------------------------------------------


def grant_access(
    session: Session,
    caller: Caller,
    kind: ResourceKind,
    resource: Dataset | Artifact,
    grantee: str,
    roles: Iterable[DataRole],
    expires_at: float | None = None,
    reason: str = "",
    now: float | None = None,
) -> Grant:
    """Let team ``grantee`` use a dataset or artifact of the caller's team in ``roles`` until ``expires_at``.

    Without ``expires_at`` a grant lasts ``DEFAULT_GRANT_DAYS`` days. The
    grant and the decision are written through ``session``; the caller commits.

    Raises:
        AccessDeniedError: The caller's team does not own the resource.
        ValueError: The grantee is the owner, a role is not grantable for
            this kind of resource, or the expiry is in the past or too far
            for a restricted dataset.
    """
    now = time.time() if now is None else now
    roles = tuple(dict.fromkeys(DataRole(r) for r in roles))
    ref = resource.ref if isinstance(resource, Dataset) else f"{resource.team}/{resource.name}"
    if resource.team != caller.team:
        _deny_grant(session, caller, kind, ref, grantee, now)
    if expires_at is None:
        expires_at = now + DEFAULT_GRANT_DAYS * DAY_S
    _check_grant(kind, resource, grantee, roles, expires_at, now)

    grant = Grant(
        resource_kind=kind.value, resource_id=resource.id, resource=ref, owner_team=resource.team, grantee_team=grantee,
        roles=[r.value for r in roles], expires_at=expires_at, granted_by=caller.user, granted_at=now, reason=reason,
    )
    session.add(grant)
    session.flush()
    record(session, AuditEntry(
        caller.user, caller.team, AuditAction.GRANT, kind, ref, Decision.ALLOW,
        f"grant {grant.id} to team {grantee} for {', '.join(grant.roles)} until {_date(expires_at)}",
        data={"grant_id": grant.id, "grantee": grantee, "roles": grant.roles, "expires_at": expires_at}, at=now,
    ))
    return grant


def _deny_grant(session: Session, caller: Caller, kind: ResourceKind, ref: str, grantee: str, now: float) -> None:
    reason = f"team {caller.team} does not own {ref}; only team {ref.split('/')[0]} may grant access to it"
    record_after_transaction(session, [AuditEntry(caller.user, caller.team, AuditAction.GRANT, kind, ref, Decision.DENY, reason, data={"grantee": grantee}, at=now)])
    raise AccessDeniedError(reason, ref, AuditAction.GRANT)


def _check_grant(kind: ResourceKind, resource: Dataset | Artifact, grantee: str, roles: tuple[DataRole, ...], expires_at: float, now: float) -> None:
    if not NAME_PATTERN.match(grantee):
        raise ValueError(f"grantee team {grantee!r} is invalid; use 1-63 lowercase letters, digits, '.', '_' or '-'")
    if grantee == resource.team:
        raise ValueError(f"team {grantee} owns this {kind.value}; a grant is for another team")
    allowed = GRANTABLE_ROLES if kind is ResourceKind.DATASET else (DataRole.WARM_START,)
    if not roles:
        raise ValueError(f"a grant needs at least one role; choose from {', '.join(r.value for r in allowed)}")
    for role in roles:
        if role not in allowed:
            raise ValueError(f"role {role.value!r} cannot be granted on this {kind.value}; choose from {', '.join(r.value for r in allowed)}")
    if expires_at <= now:
        raise ValueError(f"expiry {_date(expires_at)} is in the past; give a future date or a duration such as 30d")
    restricted = isinstance(resource, Dataset) and resource.sensitivity == Sensitivity.RESTRICTED.value
    if restricted and expires_at - now > MAX_RESTRICTED_GRANT_DAYS * DAY_S:
        raise ValueError(
            f"{resource.ref} is restricted, so a grant must expire within {MAX_RESTRICTED_GRANT_DAYS} days; "
            f"got {_date(expires_at)}; give a shorter expiry and renew it when needed"
        )


def revoke_grant(session: Session, caller: Caller, grant_id: int, now: float | None = None) -> Grant:
    """Revoke a grant of the caller's team; searches already admitted keep running.

    Raises:
        LookupError: No grant has that id.
        AccessDeniedError: The caller's team did not grant it.
    """
    now = time.time() if now is None else now
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise GrantNotFoundError(f"grant {grant_id} not found; list grants with 'neurfly grant list'")
    kind = ResourceKind(grant.resource_kind)
    if grant.owner_team != caller.team:
        reason = f"team {caller.team} did not grant {grant_id}; only team {grant.owner_team} may revoke it"
        record_after_transaction(session, [AuditEntry(caller.user, caller.team, AuditAction.REVOKE, kind, grant.resource, Decision.DENY, reason, at=now)])
        raise AccessDeniedError(reason, grant.resource, AuditAction.REVOKE)
    if grant.revoked_at is None:
        grant.revoked_at = now
        grant.revoked_by = caller.user
    record(session, AuditEntry(caller.user, caller.team, AuditAction.REVOKE, kind, grant.resource, Decision.ALLOW,
                               f"grant {grant.id} to team {grant.grantee_team} revoked", data={"grant_id": grant.id}, at=now))
    return grant


class GrantNotFoundError(NeurflyError, LookupError):
    """No grant has the requested id."""


def list_grants(session: Session, team: str) -> list[Grant]:
    """Return the grants team ``team`` gave or received, newest first."""
    query = select(Grant).where((Grant.owner_team == team) | (Grant.grantee_team == team)).order_by(Grant.id.desc())
    return list(session.scalars(query))


def parse_expiry(text: str | None, now: float | None = None) -> float | None:
    """Turn ``30d``, ``12h`` or an ISO date (``2027-01-31``) into seconds since the epoch.

    Raises:
        ValueError: Another form.
    """
    if text is None:
        return None
    now = time.time() if now is None else now
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([dh])", text.strip())
    if match:
        amount = float(match[1])
        return now + amount * (DAY_S if match[2] == "d" else 3600.0)
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"expiry {text!r} is invalid; write a duration such as 30d or 12h, or a date such as 2027-01-31") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _date(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))
