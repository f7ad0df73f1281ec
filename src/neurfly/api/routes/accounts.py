"""The caller, API tokens, users, teams and team members."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response, status
from sqlalchemy.orm import Session

from neurfly.api.access import Access, Caller, Context, PlatformAdmin, access, check_team
from neurfly.api.schemas import (
    KEY_ID_REGEX,
    NAME_REGEX,
    MeResponse,
    MemberInfo,
    MemberRequest,
    TeamInfo,
    TeamRequest,
    TokenCreated,
    TokenInfo,
    TokenRequest,
    UserInfo,
    UserRequest,
)
from neurfly.auth import (
    AlreadyExistsError,
    Principal,
    Role,
    TeamRecord,
    TokenRecord,
    UserRecord,
    create_team,
    create_user,
    find_token,
    get_team,
    get_user,
    issue_token,
    list_teams,
    list_tokens,
    list_users,
    remove_member,
    revoke_token,
    roles_of,
    set_member,
    set_user_disabled,
    team_members,
)
from neurfly.core.cluster import ClusterConfig
from neurfly.errors import NotFoundError

_logger = logging.getLogger(__name__)

router = APIRouter(tags=["accounts"])

TeamName = Annotated[str, Path(pattern=NAME_REGEX, description="Team name.")]
UserName = Annotated[str, Path(pattern=NAME_REGEX, description="User name.")]
KeyId = Annotated[str, Path(pattern=KEY_ID_REGEX, description="Public key id of a token (the part after 'nf_').")]


@router.get("/me", response_model=MeResponse, openapi_extra=access(Access.USER))
def me(who: Caller) -> dict[str, Any]:
    """Show the caller: user name, platform admin flag and role in each team."""
    teams = [{"team": team, "role": role} for team, role in sorted(who.roles.items())]
    return {"user": who.user, "platform_admin": who.platform_admin, "teams": teams, "token_id": who.token_id}


# -- tokens ---------------------------------------------------------------------------------------


@router.get("/tokens", response_model=list[TokenInfo], openapi_extra=access(Access.USER))
def get_tokens(ctx: Context, who: Caller) -> list[dict[str, Any]]:
    """List the caller's tokens, newest first; platform admins see every user's. Secrets are never shown."""
    with ctx.store.session() as session:
        rows = list_tokens(session, None if who.platform_admin else who.user_id)
    now = time.time()
    return [_token_info(row, user, now) for row, user in rows]


@router.post("/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED, openapi_extra=access(Access.USER))
def create_token(body: TokenRequest, ctx: Context, who: Caller) -> dict[str, Any]:
    """Issue a token for the caller. The response contains the token, which is never shown again."""
    return _issue(ctx, who.user, body)


@router.delete("/tokens/{key_id}", response_model=TokenInfo, openapi_extra=access(Access.USER))
def delete_token(key_id: KeyId, ctx: Context, who: Caller) -> dict[str, Any]:
    """Revoke a token of the caller (any token, for platform admins). Revoking twice changes nothing."""
    with ctx.store.session() as session:
        row = _own_token(session, who, key_id)
        revoke_token(session, key_id)
        session.commit()
        user = _user_name(session, row.user_id)
    _logger.info("user %s revoked token %s", who.user, key_id)
    return _token_info(row, user, time.time())


def _own_token(session: Session, who: Principal, key_id: str) -> TokenRecord:
    try:
        row = find_token(session, key_id)
    except NotFoundError:
        row = None
    if row is None or (row.user_id != who.user_id and not who.platform_admin):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"token {key_id!r} not found; list your tokens with GET /api/v1/tokens")
    return row


def _issue(ctx: Any, user: str, body: TokenRequest) -> dict[str, Any]:
    lifetime = body.expires_in_days * 86400.0 if body.expires_in_days is not None else None
    with ctx.store.session() as session:
        issued = issue_token(session, user, body.name, lifetime)
        session.commit()
        row = find_token(session, issued.key_id)
    return {**_token_info(row, user, time.time()), "token": issued.token}


def _token_info(row: TokenRecord, user: str, now: float) -> dict[str, Any]:
    active = row.revoked_at is None and (row.expires_at is None or row.expires_at > now)
    return {
        "key_id": row.key_id,
        "user": user,
        "name": row.name,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
        "last_used_at": row.last_used_at,
        "active": active,
    }


def _user_name(session: Session, user_id: int) -> str:
    user = session.get(UserRecord, user_id)
    return user.name if user is not None else "?"


# -- users ----------------------------------------------------------------------------------------


@router.get("/users", response_model=list[UserInfo], openapi_extra=access(Access.PLATFORM_ADMIN))
def get_users(ctx: Context, _: PlatformAdmin) -> list[dict[str, Any]]:
    """List every user with their teams."""
    with ctx.store.session() as session:
        return [_user_info(session, user) for user in list_users(session)]


@router.post("/users", response_model=UserInfo, status_code=status.HTTP_201_CREATED, openapi_extra=access(Access.PLATFORM_ADMIN))
def post_user(body: UserRequest, ctx: Context, who: PlatformAdmin) -> dict[str, Any]:
    """Add a user (a person or a service account)."""
    with ctx.store.session() as session:
        try:
            user = create_user(session, body.name, body.platform_admin)
        except AlreadyExistsError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        session.commit()
        _logger.info("user %s added user %s", who.user, body.name)
        return _user_info(session, user)


@router.post("/users/{user}/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED, openapi_extra=access(Access.PLATFORM_ADMIN))
def post_user_token(user: UserName, body: TokenRequest, ctx: Context, who: PlatformAdmin) -> dict[str, Any]:
    """Issue a token for another user, such as a service account."""
    with ctx.store.session() as session:
        _existing_user(session, user)
    _logger.info("user %s issues a token for user %s", who.user, user)
    return _issue(ctx, user, body)


@router.post("/users/{user}/disable", response_model=UserInfo, openapi_extra=access(Access.PLATFORM_ADMIN))
def post_disable_user(user: UserName, ctx: Context, who: PlatformAdmin) -> dict[str, Any]:
    """Disable a user: every request with one of their tokens gets 401 from now on. Disabling twice changes nothing."""
    if user == who.user:
        raise HTTPException(status.HTTP_409_CONFLICT, f"user {user!r} is the caller; ask another platform admin to disable this account")
    return _set_disabled(ctx, who, user, True)


@router.post("/users/{user}/enable", response_model=UserInfo, openapi_extra=access(Access.PLATFORM_ADMIN))
def post_enable_user(user: UserName, ctx: Context, who: PlatformAdmin) -> dict[str, Any]:
    """Enable a disabled user again; their tokens that are neither revoked nor expired work again."""
    return _set_disabled(ctx, who, user, False)


def _set_disabled(ctx: Any, who: Principal, user: str, disabled: bool) -> dict[str, Any]:
    with ctx.store.session() as session:
        try:
            row = set_user_disabled(session, user, disabled)
        except NotFoundError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        session.commit()
        _logger.info("user %s %s user %s", who.user, "disabled" if disabled else "enabled", user)
        return _user_info(session, row)


def _user_info(session: Session, user: Any) -> dict[str, Any]:
    teams = [{"team": team, "role": role} for team, role in sorted(roles_of(session, user.id).items())]
    return {"name": user.name, "platform_admin": user.platform_admin, "disabled": user.disabled, "created_at": user.created_at, "teams": teams}


def _existing_user(session: Session, user: str) -> Any:
    try:
        return get_user(session, user)
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


# -- teams ----------------------------------------------------------------------------------------


@router.get("/teams", response_model=list[TeamInfo], openapi_extra=access(Access.USER))
def get_teams(ctx: Context, who: Caller) -> list[dict[str, Any]]:
    """List the caller's teams (every team, for platform admins) with their cluster entitlement."""
    with ctx.store.session() as session:
        rows = list_teams(session)
    return [_team_info(row, who, ctx.cluster) for row in rows if who.role_in(row.name) is not None]


@router.post("/teams", response_model=TeamInfo, status_code=status.HTTP_201_CREATED, openapi_extra=access(Access.PLATFORM_ADMIN))
def post_team(body: TeamRequest, ctx: Context, who: PlatformAdmin) -> dict[str, Any]:
    """Register a team."""
    with ctx.store.session() as session:
        try:
            row = create_team(session, body.name)
        except AlreadyExistsError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        session.commit()
    _logger.info("user %s added team %s", who.user, body.name)
    return _team_info(row, who, ctx.cluster)


@router.get("/teams/{team}", response_model=TeamInfo, openapi_extra=access(Access.VIEWER))
def get_team_info(team: TeamName, ctx: Context, who: Caller) -> dict[str, Any]:
    """Show a team and its entitlement in the cluster."""
    check_team(who, team, Role.VIEWER, f"team {team!r}")
    with ctx.store.session() as session:
        row = _existing_team(session, team)
    return _team_info(row, who, ctx.cluster)


@router.get("/teams/{team}/members", response_model=list[MemberInfo], openapi_extra=access(Access.VIEWER))
def get_members(team: TeamName, ctx: Context, who: Caller) -> list[dict[str, Any]]:
    """List a team's members with their roles."""
    check_team(who, team, Role.VIEWER, f"team {team!r}")
    with ctx.store.session() as session:
        _existing_team(session, team)
        return [{"user": user.name, "role": role} for user, role in team_members(session, team)]


@router.put("/teams/{team}/members/{user}", response_model=MemberInfo, openapi_extra=access(Access.ADMIN))
def put_member(team: TeamName, user: UserName, body: MemberRequest, ctx: Context, who: Caller) -> dict[str, Any]:
    """Add a user to a team, or change their role in it."""
    check_team(who, team, Role.ADMIN, f"team {team!r}")
    with ctx.store.session() as session:
        _existing_team(session, team)
        _existing_user(session, user)
        set_member(session, team, user, body.role)
        session.commit()
    _logger.info("user %s made %s %s of team %s", who.user, user, body.role.value, team)
    return {"user": user, "role": body.role}


@router.delete("/teams/{team}/members/{user}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, openapi_extra=access(Access.ADMIN))
def delete_member(team: TeamName, user: UserName, ctx: Context, who: Caller) -> Response:
    """Take a user out of a team."""
    check_team(who, team, Role.ADMIN, f"team {team!r}")
    with ctx.store.session() as session:
        try:
            remove_member(session, team, user)
        except NotFoundError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        session.commit()
    _logger.info("user %s removed %s from team %s", who.user, user, team)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _existing_team(session: Session, team: str) -> TeamRecord:
    try:
        return get_team(session, team)
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


def _team_info(row: TeamRecord, who: Principal, cluster: ClusterConfig) -> dict[str, Any]:
    config = cluster.team(row.name)
    return {
        "name": row.name,
        "created_at": row.created_at,
        "role": who.role_in(row.name),
        "weight": config.weight,
        "quota": dict(config.quota),
        "borrowing_limit": dict(config.borrowing_limit),
    }
