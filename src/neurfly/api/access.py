"""Authentication and team scoping of requests.

Every route states the access it needs in its OpenAPI operation under
``x-neurfly-access``. A token that is missing or invalid gets 401. A request
for an object of a team the caller cannot see gets 404, exactly as for a
missing one, so the object's existence does not leak. A known user whose role is too low gets 403.
"""

from __future__ import annotations

import logging
import time
from enum import Enum
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import ColumnElement, false, true

from neurfly.api.context import ApiContext
from neurfly.auth import AuthenticationError, Principal, Role, authenticate

_logger = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False, description="An API token from 'neurfly admin create-token' or POST /api/v1/tokens.")


class Access(str, Enum):
    """Access level that a route requires of its caller."""

    PUBLIC = "public"
    USER = "user"
    VIEWER = "viewer"
    MEMBER = "member"
    ADMIN = "admin"
    PLATFORM_ADMIN = "platform-admin"

    @property
    def role(self) -> Role | None:
        """The team role this access needs, for team-scoped access."""
        return {Access.VIEWER: Role.VIEWER, Access.MEMBER: Role.MEMBER, Access.ADMIN: Role.ADMIN}.get(self)


def access(level: Access) -> dict[str, Any]:
    """OpenAPI extension that records a route's access level; pass it as ``openapi_extra``."""
    return {"x-neurfly-access": level.value}


def context(request: Request) -> ApiContext:
    return request.app.state.context


def reject_unknown_query(request: Request) -> None:
    """Reject query parameters the route does not take, so a misspelt filter is not silently ignored.

    Raises:
        RequestValidationError: 422 naming each unknown parameter and the known ones.
    """
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        hint = f"this route takes {', '.join(sorted(known))}" if known else "this route takes no query parameters"
        raise RequestValidationError(
            [{"type": "extra_forbidden", "loc": ("query", name), "msg": f"unknown query parameter; {hint}", "input": request.query_params.get(name)} for name in unknown]
        )


def _query_names(route: APIRoute) -> frozenset[str]:
    names: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        names.update(param.alias for param in dependant.query_params)
        pending.extend(dependant.dependencies)
    return frozenset(names)


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Authenticate the request's bearer token.

    Raises:
        HTTPException: 401 when the token is missing or invalid.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API token; send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    store = context(request).store
    with store.session() as session:
        try:
            who = authenticate(session, credentials.credentials, time.time())
        except AuthenticationError as exc:
            _logger.info("request %s %s rejected: %s", request.method, request.url.path, exc)
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        session.commit()
    return who


Caller = Annotated[Principal, Depends(principal)]
Context = Annotated[ApiContext, Depends(context)]


def require_platform_admin(who: Caller) -> Principal:
    """Raises 403 unless the caller is a platform admin."""
    if not who.platform_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"user {who.user!r} is not a platform admin; ask one to do this")
    return who


PlatformAdmin = Annotated[Principal, Depends(require_platform_admin)]


def check_team(who: Principal, team: str, required: Role, what: str) -> None:
    """Check that ``who`` may act on ``what`` of ``team`` with role ``required``.

    Raises:
        HTTPException: 404 when the caller cannot see the team, 403 when its role is lower.
    """
    role = who.role_in(team)
    if role is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{what} not found")
    if not role.includes(required):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"user {who.user!r} is {role.value} of team {team!r}; this needs {required.value} or above",
        )


def visible(who: Principal, column: Any) -> ColumnElement[bool]:
    """SQL condition keeping rows whose team ``column`` the caller may see."""
    teams = who.visible_teams()
    if teams is None:
        return true()
    if not teams:
        return false()
    return column.in_(sorted(teams))


def team_visible(who: Principal, team: str | None) -> bool:
    teams = who.visible_teams()
    return teams is None or (team is not None and team in teams)
