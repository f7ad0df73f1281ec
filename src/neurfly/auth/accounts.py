"""Users, teams and memberships, read and written through a caller's session.

Every function flushes and leaves the commit to the caller, so an API request
or CLI command commits its changes at once or not at all.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from neurfly.auth.errors import AlreadyExistsError
from neurfly.auth.models import MembershipRecord, TeamRecord, UserRecord
from neurfly.auth.roles import Role
from neurfly.core.spec import NAME_PATTERN
from neurfly.errors import NotFoundError

_logger = logging.getLogger(__name__)


def check_name(kind: str, value: str) -> str:
    """Return ``value`` if it is a valid user or team name.

    Raises:
        ValueError: ``value`` does not match the name rule that specs use for teams.
    """
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise ValueError(
            f"{kind} name {value!r} is invalid; use 1-63 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def create_team(session: Session, name: str, now: float | None = None) -> TeamRecord:
    """Register a team.

    Raises:
        ValueError: The name is invalid.
        AlreadyExistsError: A team of that name exists.
    """
    check_name("team", name)
    if session.scalars(select(TeamRecord).where(TeamRecord.name == name)).first() is not None:
        raise AlreadyExistsError(f"team {name!r} exists already")
    team = TeamRecord(name=name, created_at=time.time() if now is None else now)
    session.add(team)
    session.flush()
    _logger.info("team %s created", name)
    return team


def get_team(session: Session, name: str) -> TeamRecord:
    """Look up a team by name.

    Raises:
        NotFoundError: No team has that name.
    """
    team = session.scalars(select(TeamRecord).where(TeamRecord.name == name)).first()
    if team is None:
        raise NotFoundError("team", name, "platform admins create teams with 'neurfly admin add-team'")
    return team


def list_teams(session: Session) -> list[TeamRecord]:
    return list(session.scalars(select(TeamRecord).order_by(TeamRecord.name)))


def create_user(session: Session, name: str, platform_admin: bool = False, now: float | None = None) -> UserRecord:
    """Register a user.

    Raises:
        ValueError: The name is invalid.
        AlreadyExistsError: A user of that name exists.
    """
    check_name("user", name)
    if session.scalars(select(UserRecord).where(UserRecord.name == name)).first() is not None:
        raise AlreadyExistsError(f"user {name!r} exists already")
    user = UserRecord(name=name, platform_admin=platform_admin, disabled=False, created_at=time.time() if now is None else now)
    session.add(user)
    session.flush()
    _logger.info("user %s created%s", name, " as platform admin" if platform_admin else "")
    return user


def get_user(session: Session, name: str) -> UserRecord:
    """Look up a user by name.

    Raises:
        NotFoundError: No user has that name.
    """
    user = session.scalars(select(UserRecord).where(UserRecord.name == name)).first()
    if user is None:
        raise NotFoundError("user", name, "platform admins add users with 'neurfly admin add-user'")
    return user


def set_user_disabled(session: Session, name: str, disabled: bool) -> UserRecord:
    """Disable or re-enable a user. Requests with a disabled user's tokens fail from the next one on.

    The user's tokens are kept, so re-enabling the user makes them valid again
    unless they were revoked or have expired meanwhile.

    Raises:
        NotFoundError: No user has that name.
    """
    user = get_user(session, name)
    if user.disabled != disabled:
        user.disabled = disabled
        session.flush()
        _logger.info("user %s %s", name, "disabled" if disabled else "enabled")
    return user


def list_users(session: Session) -> list[UserRecord]:
    return list(session.scalars(select(UserRecord).order_by(UserRecord.name)))


def set_member(session: Session, team: str, user: str, role: Role, now: float | None = None) -> MembershipRecord:
    """Give ``user`` the role ``role`` in ``team``, adding the membership or changing its role.

    Raises:
        NotFoundError: The team or the user does not exist.
    """
    role = Role(role)
    team_row = get_team(session, team)
    user_row = get_user(session, user)
    membership = session.scalars(
        select(MembershipRecord).where(MembershipRecord.team_id == team_row.id, MembershipRecord.user_id == user_row.id)
    ).first()
    if membership is None:
        membership = MembershipRecord(team_id=team_row.id, user_id=user_row.id, role=role.value, created_at=time.time() if now is None else now)
        session.add(membership)
    else:
        membership.role = role.value
    session.flush()
    _logger.info("user %s is %s of team %s", user, role.value, team)
    return membership


def remove_member(session: Session, team: str, user: str) -> None:
    """Take ``user`` out of ``team``.

    Raises:
        NotFoundError: The team or user does not exist, or the user is not a member.
    """
    team_row = get_team(session, team)
    user_row = get_user(session, user)
    membership = session.scalars(
        select(MembershipRecord).where(MembershipRecord.team_id == team_row.id, MembershipRecord.user_id == user_row.id)
    ).first()
    if membership is None:
        raise NotFoundError("membership", f"{user} in {team}", f"list the members with GET /api/v1/teams/{team}/members")
    session.delete(membership)
    session.flush()
    _logger.info("user %s removed from team %s", user, team)


def team_members(session: Session, team: str) -> list[tuple[UserRecord, Role]]:
    """List the members of ``team`` with their roles, by user name.

    Raises:
        NotFoundError: The team does not exist.
    """
    team_row = get_team(session, team)
    rows = session.execute(
        select(UserRecord, MembershipRecord.role)
        .join(MembershipRecord, MembershipRecord.user_id == UserRecord.id)
        .where(MembershipRecord.team_id == team_row.id)
        .order_by(UserRecord.name)
    ).all()
    return [(user, Role(role)) for user, role in rows]


def roles_of(session: Session, user_id: int) -> dict[str, Role]:
    """Team name to role, for every team ``user_id`` belongs to."""
    rows = session.execute(
        select(TeamRecord.name, MembershipRecord.role)
        .join(MembershipRecord, MembershipRecord.team_id == TeamRecord.id)
        .where(MembershipRecord.user_id == user_id)
    ).all()
    return {name: Role(role) for name, role in rows}
