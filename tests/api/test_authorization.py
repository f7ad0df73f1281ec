"""Every API route, called with tokens of two teams and every role: nothing of team-a reaches team-b.

The operations come from the application's OpenAPI document, so a new route
is walked without editing this file, and ``test_walk_covers_every_route``
fails when a router's route is missing from that document. Its path parameters must have a value in ``targets()``
below, and it must declare its access level in ``x-neurfly-access``.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select

from neurfly.api import API_PREFIX, Access
from neurfly.api import routes as routes_package
from neurfly.accounting import BudgetChange
from neurfly.auth import Role, TokenRecord, UserRecord
from neurfly.governance.models import Artifact, AuditRecord, Dataset, DatasetVersion, Grant
from neurfly.monitoring.alerts import Alert
from neurfly.store import Event, Search, Trial
from api.conftest import ALPHA_MARKERS, ROLES, Api, World
from support import make_spec

OUTSIDERS = ("b-viewer", "b-member", "b-admin", "outsider")
# Operations that report on one team and infer it when the caller belongs to exactly one.
OUTSIDER_NEEDS_TEAM = {"GET /api/v1/costs", "GET /api/v1/costs.csv"}


def targets(world: World) -> dict[str, str]:
    """A value for each path parameter, naming an object of team-a."""
    return {
        "search": str(world.searches["a"]),
        "number": "0",
        "trial_id": str(world.trials["a0"]),
        "alert_id": str(world.alerts["a"]),
        "team": "team-a",
        "user": "a-viewer",
        "key_id": world.key_ids["a-member-spare"],
        "owner": "team-a",
        "name": "alpha-data",
        "artifact": "alpha-model",
        "grant_id": str(world.grants["a"]),
    }


def bodies(world: World) -> dict[str, dict[str, Any]]:
    """A well-formed body for each operation that takes one, keyed by "METHOD path"."""
    lakefs = {"source": "lakefs", "uri": f"lakefs://lake/{'e' * 64}/authz.csv"}
    return {
        "POST /api/v1/searches": {"spec": make_spec(team="team-a", name="authz-probe")},
        "POST /api/v1/tokens": {"name": "authz"},
        "POST /api/v1/users": {"name": "authz-user"},
        "POST /api/v1/users/{user}/tokens": {"name": "authz"},
        "POST /api/v1/teams": {"name": "team-authz"},
        "PUT /api/v1/teams/{team}/members/{user}": {"role": "viewer"},
        "PUT /api/v1/budgets/{team}": {"amount": "5"},
        "POST /api/v1/teams/{team}/datasets": {"name": "authz-data", "sensitivity": "internal", "version": lakefs},
        "POST /api/v1/teams/{team}/datasets/{owner}/{name}/versions": {"version": lakefs},
        "POST /api/v1/teams/{team}/grants": {"resource": "alpha-data", "grantee_team": "team-b", "roles": ["training"]},
        "POST /api/v1/teams/{team}/artifacts": {"trial_id": world.trials["a0"], "name": "authz-model"},
    }


@dataclass(frozen=True)
class Operation:
    """One method of one route, as the OpenAPI document lists it."""

    method: str
    template: str
    access: Access

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


def operations(api: Api) -> list[Operation]:
    """Every operation of the application's OpenAPI document, the routes of included routers among them."""
    found = []
    for template, methods in api.client.app.openapi()["paths"].items():
        for method, operation in methods.items():
            declared = operation.get("x-neurfly-access")
            assert declared is not None, f"{method.upper()} {template} declares no x-neurfly-access"
            found.append(Operation(method.upper(), template, Access(declared)))
    return found


def fill(template: str, world: World) -> str:
    values = targets(world)
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


def calls(api: Api) -> list[tuple[Operation, str]]:
    return [(operation, fill(operation.template, api.world)) for operation in operations(api)]


def fingerprint(api: Api) -> tuple:
    """Counts and states that a rejected request must leave unchanged."""
    with api.store.session() as session:
        return (
            session.scalar(select(func.count()).select_from(Search)),
            tuple(session.execute(select(Search.id, Search.state, Search.cancel_requested).order_by(Search.id)).all()),
            session.scalar(select(func.count()).select_from(Trial)),
            session.scalar(select(func.count()).select_from(Event)),
            tuple(session.execute(
                select(TokenRecord.key_id, TokenRecord.revoked_at).where(TokenRecord.key_id.in_(api.world.key_ids.values())).order_by(TokenRecord.id)
            ).all()),
            tuple(session.execute(select(Alert.id, Alert.state).order_by(Alert.id)).all()),
            tuple(session.execute(select(UserRecord.name, UserRecord.disabled).order_by(UserRecord.id)).all()),
            tuple(session.execute(select(Grant.id, Grant.revoked_at).order_by(Grant.id)).all()),
            tuple(session.scalar(select(func.count()).select_from(table)) for table in (Dataset, DatasetVersion, Artifact, AuditRecord, BudgetChange)),
        )


def send(api: Api, operation: Operation, path: str, user: str | None, **kwargs: Any):  # noqa: ANN201 - a response
    body = bodies(api.world).get(operation.key)
    if body is not None:
        kwargs["json"] = body
    return api.call(operation.method, path, user, **kwargs)


def test_walk_covers_every_route(api: Api) -> None:
    walked = {operation.key for operation in operations(api)}
    expected = set()
    for module in pkgutil.iter_modules(routes_package.__path__):
        router = importlib.import_module(f"{routes_package.__name__}.{module.name}").router
        for route in router.routes:
            assert isinstance(route, APIRoute), f"{route!r} in {module.name} is not an API route"
            expected.update(f"{method} {API_PREFIX}{route.path}" for method in route.methods)

    assert expected - walked == set(), "routes missing from the OpenAPI document, so the walk below skips them"
    assert "GET /healthz" in walked


def test_every_route_declares_access(api: Api) -> None:
    for operation in operations(api):
        for name in re.findall(r"\{(\w+)\}", operation.template):
            assert name in targets(api.world), f"add a team-a value for path parameter {name!r} of {operation.template}"


def test_no_token_gets_401(api: Api) -> None:
    for operation, path in calls(api):
        if operation.access is Access.PUBLIC:
            continue
        for headers in ({}, {"Authorization": "Bearer nf_aaaaaaaaaaaa_" + "A" * 43}, {"Authorization": "Basic cm9vdDpyb290"}):
            response = send(api, operation, path, None, headers=headers)
            assert response.status_code == 401, f"{operation.method} {path} with {headers}: {response.status_code}"
            assert response.headers.get("www-authenticate") == "Bearer"


def test_other_team_sees_nothing(api: Api) -> None:
    before = fingerprint(api)
    for operation, path in calls(api):
        for user in OUTSIDERS:
            response = send(api, operation, path, user)
            text = response.text
            where = f"{operation.method} {path} as {user}: {response.status_code} {text[:200]}"
            for marker in ALPHA_MARKERS:
                assert marker not in text, f"{operation.method} {path} as {user} leaked {marker!r}: {text[:300]}"
            assert response.status_code == expected_outsider_status(operation, user), where
            if operation.method == "GET" and response.status_code == 200:
                assert "team-a" not in text, f"{operation.method} {path} as {user} named team-a: {text[:300]}"
    assert fingerprint(api) == before


def expected_outsider_status(operation: Operation, user: str) -> int:
    """The status a user outside team-a gets for an operation on team-a's objects."""
    if operation.access in (Access.VIEWER, Access.MEMBER, Access.ADMIN) and "{" in operation.template:
        return 404
    if operation.access is Access.PLATFORM_ADMIN:
        return 403
    special = {
        "POST /api/v1/searches": 403,
        "DELETE /api/v1/tokens/{key_id}": 404,
        "POST /api/v1/tokens": 201,
    }
    if operation.key in special:
        return special[operation.key]
    if operation.key in OUTSIDER_NEEDS_TEAM and user == "outsider":
        # A report of one team: a user of no team has to name one, and may name none.
        return 422
    return 200


def test_roles_below_requirement_get_403(api: Api) -> None:
    before = fingerprint(api)
    for operation, path in calls(api):
        required = operation.access.role
        if required is None:
            continue
        for role in ROLES:
            if Role(role).includes(required):
                continue
            response = send(api, operation, path, f"a-{role}")
            assert response.status_code == 403, f"{operation.method} {path} as a-{role}: {response.status_code} {response.text[:200]}"
    assert fingerprint(api) == before


@pytest.mark.parametrize("user", ["a-viewer", "a-member", "a-admin", "root"])
def test_allowed_roles_get_through(api: Api, user: str) -> None:
    role = Role.ADMIN if user == "root" else Role(user.split("-")[1])
    for operation, path in calls(api):
        if operation.access is Access.PLATFORM_ADMIN and user != "root":
            continue
        if operation.access.role is not None and not role.includes(operation.access.role):
            continue
        if operation.key == "DELETE /api/v1/tokens/{key_id}" and user not in ("a-member", "root"):
            continue
        response = send(api, operation, path, user)
        assert response.status_code < 300, f"{operation.method} {path} as {user}: {response.status_code} {response.text[:300]}"


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
