"""Every API route, called with tokens of two teams and every role: nothing of team-a reaches team-b.

The route list comes from ``app.routes``, so a new route is walked without
editing this file. Its path parameters must have a value in ``targets()``
below, and it must declare its access level in ``x-neurfly-access``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select

from neurfly.api import Access
from neurfly.auth import Role, TokenRecord
from neurfly.monitoring.alerts import Alert
from neurfly.store import Event, Search, Trial
from api.conftest import ALPHA_MARKERS, ROLES, Api, World
from support import make_spec

OUTSIDERS = ("b-viewer", "b-member", "b-admin", "outsider")


def targets(world: World) -> dict[str, str]:
    """A value for each path parameter, naming an object of team-a."""
    return {
        "search": str(world.searches["a"]),
        "number": "0",
        "trial_id": str(world.trials["a0"]),
        "alert_id": str(world.alerts["a"]),
        "team": "team-a",
        "user": "a-viewer",
        "key_id": world.key_ids["a-member"],
        "owner": "team-a",
        "name": "alpha-data",
    }


def bodies() -> dict[str, dict[str, Any]]:
    """A well-formed body for each route that takes one, keyed by route name."""
    return {
        "submit": {"spec": make_spec(team="team-a", name="authz-probe")},
        "create_token": {"name": "authz"},
        "post_user": {"name": "authz-user"},
        "post_user_token": {"name": "authz"},
        "post_team": {"name": "team-authz"},
        "put_member": {"role": "viewer"},
        "put_budget": {"amount": "5"},
    }


def api_routes(api: Api) -> list[APIRoute]:
    return [r for r in api.client.app.routes if isinstance(r, APIRoute)]


def route_access(route: APIRoute) -> Access:
    return Access((route.openapi_extra or {})["x-neurfly-access"])


def fill(route: APIRoute, world: World) -> str:
    values = targets(world)
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], route.path)


def calls(api: Api) -> list[tuple[APIRoute, str, str]]:
    return [(route, method, fill(route, api.world)) for route in api_routes(api) for method in sorted(route.methods)]


def fingerprint(api: Api) -> tuple:
    """Counts and states that a rejected request must leave unchanged."""
    with api.store.session() as session:
        return (
            session.scalar(select(func.count()).select_from(Search)),
            tuple(session.execute(select(Search.id, Search.state, Search.cancel_requested).order_by(Search.id)).all()),
            session.scalar(select(func.count()).select_from(Trial)),
            session.scalar(select(func.count()).select_from(Event)),
            tuple(session.execute(select(TokenRecord.key_id, TokenRecord.revoked_at).order_by(TokenRecord.id)).all()),
            tuple(session.execute(select(Alert.id, Alert.state).order_by(Alert.id)).all()),
        )


def send(api: Api, route: APIRoute, method: str, path: str, user: str | None, **kwargs: Any):  # noqa: ANN201 - a response
    body = bodies().get(route.name)
    return api.call(method, path, user, json=body, **kwargs) if body is not None else api.call(method, path, user, **kwargs)


def test_every_route_declares_access(api: Api) -> None:
    for route in api_routes(api):
        assert "x-neurfly-access" in (route.openapi_extra or {}), f"{route.path} declares no x-neurfly-access"
        route_access(route)
        for name in re.findall(r"\{(\w+)\}", route.path):
            assert name in targets(api.world), f"add a team-a value for path parameter {name!r} of {route.path}"


def test_no_token_gets_401(api: Api) -> None:
    for route, method, path in calls(api):
        if route_access(route) is Access.PUBLIC:
            continue
        for headers in ({}, {"Authorization": "Bearer nf_aaaaaaaaaaaa_" + "A" * 43}, {"Authorization": "Basic cm9vdDpyb290"}):
            response = send(api, route, method, path, None, headers=headers)
            assert response.status_code == 401, f"{method} {path} with {headers}: {response.status_code}"
            assert response.headers.get("www-authenticate") == "Bearer"


def test_other_team_sees_nothing(api: Api) -> None:
    before = fingerprint(api)
    for route, method, path in calls(api):
        access = route_access(route)
        for user in OUTSIDERS:
            response = send(api, route, method, path, user)
            text = response.text
            for marker in ALPHA_MARKERS:
                assert marker not in text, f"{method} {path} as {user} leaked {marker!r}: {text[:300]}"
            if access in (Access.VIEWER, Access.MEMBER, Access.ADMIN) and "{" in route.path:
                assert response.status_code == 404, f"{method} {path} as {user}: {response.status_code} {text[:200]}"
            elif access is Access.PLATFORM_ADMIN:
                assert response.status_code == 403, f"{method} {path} as {user}: {response.status_code}"
            elif route.name == "submit":
                assert response.status_code == 403, f"{method} {path} as {user}: {response.status_code}"
            elif route.name == "delete_token":
                assert response.status_code == 404, f"{method} {path} as {user}: {response.status_code}"
            else:
                assert response.status_code < 300, f"{method} {path} as {user}: {response.status_code} {text[:200]}"
            if method == "GET" and response.status_code == 200:
                assert "team-a" not in text, f"{method} {path} as {user} named team-a: {text[:300]}"
    assert fingerprint(api) == before


def test_roles_below_requirement_get_403(api: Api) -> None:
    before = fingerprint(api)
    for route, method, path in calls(api):
        required = route_access(route).role
        if required is None:
            continue
        for role in ROLES:
            if Role(role).includes(required):
                continue
            response = send(api, route, method, path, f"a-{role}")
            assert response.status_code == 403, f"{method} {path} as a-{role}: {response.status_code} {response.text[:200]}"
    assert fingerprint(api) == before


@pytest.mark.parametrize("user", ["a-viewer", "a-member", "a-admin", "root"])
def test_allowed_roles_get_through(api: Api, user: str) -> None:
    role = Role.ADMIN if user == "root" else Role(user.split("-")[1])
    for route, method, path in calls(api):
        access = route_access(route)
        if access is Access.PLATFORM_ADMIN and user != "root":
            continue
        if access.role is not None and not role.includes(access.role):
            continue
        if route.name == "delete_token" and user not in ("a-member", "root"):
            continue
        response = send(api, route, method, path, user)
        assert response.status_code not in (401, 403, 404, 500), f"{method} {path} as {user}: {response.status_code} {response.text[:300]}"


def test_platform_admin_lists_every_team(api: Api) -> None:
    searches = api.call("GET", "/api/v1/searches", "root").json()
    alerts = api.call("GET", "/api/v1/alerts", "root").json()
    teams = api.call("GET", "/api/v1/teams", "root").json()

    assert {s["team"] for s in searches["items"]} == {"team-a", "team-b"}
    assert {a["owner"] for a in alerts} == {"team-a", "team-b", "platform"}
    assert {t["name"] for t in teams} == {"team-a", "team-b"}


def test_team_lists_only_its_own(api: Api) -> None:
    searches = api.call("GET", "/api/v1/searches", "b-viewer").json()
    filtered = api.call("GET", "/api/v1/searches?team=team-a", "b-viewer").json()
    alerts = api.call("GET", "/api/v1/alerts", "b-viewer").json()
    cluster = api.call("GET", "/api/v1/cluster", "b-viewer").json()
    nothing = api.call("GET", "/api/v1/searches", "outsider").json()

    assert [s["name"] for s in searches["items"]] == ["beta-search"]
    assert filtered["items"] == []
    assert [a["team"] for a in alerts] == ["team-b"]
    assert {a["search_id"] for a in cluster["running_attempts"]} == {api.world.searches["b"]}
    hidden = [u for p in cluster["pools"] for n in p["nodes"] for u in n["in_use"] if u["team"] is None]
    assert hidden and all(u["search_id"] is None and u["attempt_id"] is None for u in hidden)
    assert nothing["items"] == []
