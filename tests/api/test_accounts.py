"""Tokens, users, teams and members over the API."""

from __future__ import annotations

import time

from api.conftest import Api

API = "/api/v1"


def test_me_names_user_and_roles(api: Api) -> None:
    response = api.call("GET", f"{API}/me", "a-member")

    assert response.status_code == 200
    assert response.json() == {
        "user": "a-member", "platform_admin": False, "teams": [{"team": "team-a", "role": "member"}],
        "token_id": api.world.key_ids["a-member"],
    }


def test_token_shown_once_then_revoked(api: Api) -> None:
    created = api.call("POST", f"{API}/tokens", "a-viewer", json={"name": "ci job", "expires_in_days": 1})
    token = created.json()["token"]
    listed = api.call("GET", f"{API}/tokens", "a-viewer").json()

    assert created.status_code == 201
    assert created.json()["expires_at"] - time.time() > 86000
    assert api.client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"}).json()["user"] == "a-viewer"
    assert {row["name"] for row in listed} == {"tests", "ci job"}
    assert all("token" not in row for row in listed)
    assert token not in str(listed)

    revoked = api.call("DELETE", f"{API}/tokens/{created.json()['key_id']}", "a-viewer")
    again = api.call("DELETE", f"{API}/tokens/{created.json()['key_id']}", "a-viewer")
    rejected = api.client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"})

    assert revoked.status_code == 200
    assert revoked.json()["active"] is False
    assert again.status_code == 200
    assert rejected.status_code == 401
    assert "revoked" in rejected.json()["detail"]


def test_token_of_other_user_not_found(api: Api) -> None:
    response = api.call("DELETE", f"{API}/tokens/{api.world.key_ids['a-admin']}", "a-member")
    admin = api.call("DELETE", f"{API}/tokens/{api.world.key_ids['a-admin']}", "root")

    assert response.status_code == 404
    assert admin.status_code == 200
    assert api.call("GET", f"{API}/me", "a-admin").status_code == 401


def test_token_request_validated(api: Api) -> None:
    for body in ({"name": ""}, {"name": "x" * 80}, {"name": "ok", "expires_in_days": 0}, {"name": "ok", "expires_in_days": "soon"}, {"name": "a\nb"}):
        response = api.call("POST", f"{API}/tokens", "a-viewer", json=body)
        assert response.status_code == 422, body


def test_never_expiring_token(api: Api) -> None:
    created = api.call("POST", f"{API}/tokens", "a-viewer", json={"name": "robot", "expires_in_days": None})

    assert created.status_code == 201
    assert created.json()["expires_at"] is None


def test_platform_admin_manages_users_and_teams(api: Api) -> None:
    user = api.call("POST", f"{API}/users", "root", json={"name": "svc-bot"})
    team = api.call("POST", f"{API}/teams", "root", json={"name": "team-c"})
    duplicate = api.call("POST", f"{API}/teams", "root", json={"name": "team-c"})
    member = api.call("PUT", f"{API}/teams/team-c/members/svc-bot", "root", json={"role": "member"})
    token = api.call("POST", f"{API}/users/svc-bot/tokens", "root", json={"name": "deploy"})
    me = api.client.get(f"{API}/me", headers={"Authorization": f"Bearer {token.json()['token']}"}).json()

    assert user.status_code == 201
    assert team.status_code == 201
    assert team.json()["quota"] == {}
    assert duplicate.status_code == 409
    assert member.json() == {"user": "svc-bot", "role": "member"}
    assert me["teams"] == [{"team": "team-c", "role": "member"}]
    users = {u["name"]: u for u in api.call("GET", f"{API}/users", "root").json()}
    assert users["svc-bot"]["teams"] == [{"team": "team-c", "role": "member"}]
    assert users["root"]["platform_admin"] is True


def test_team_admin_manages_members(api: Api) -> None:
    promoted = api.call("PUT", f"{API}/teams/team-a/members/outsider", "a-admin", json={"role": "viewer"})
    members = api.call("GET", f"{API}/teams/team-a/members", "a-viewer").json()
    unknown = api.call("PUT", f"{API}/teams/team-a/members/nobody", "a-admin", json={"role": "viewer"})
    removed = api.call("DELETE", f"{API}/teams/team-a/members/outsider", "a-admin")
    gone = api.call("DELETE", f"{API}/teams/team-a/members/outsider", "a-admin")
    bad_role = api.call("PUT", f"{API}/teams/team-a/members/outsider", "a-admin", json={"role": "owner"})

    assert promoted.status_code == 200
    assert {"user": "outsider", "role": "viewer"} in members
    assert unknown.status_code == 404
    assert removed.status_code == 204
    assert gone.status_code == 404
    assert bad_role.status_code == 422
    assert api.call("GET", f"{API}/searches", "outsider").json()["items"] == []


def test_unknown_query_parameter_rejected(api: Api) -> None:
    response = api.call("GET", f"{API}/searches?stat=running", "a-viewer")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "stat"]
    assert "state" in response.json()["detail"][0]["msg"]


def test_datasets_seen_by_owner_only(api: Api) -> None:
    own = api.call("GET", f"{API}/teams/team-a/datasets", "a-viewer").json()
    shown = api.call("GET", f"{API}/teams/team-a/datasets/team-a/alpha-data", "a-viewer")
    other = api.call("GET", f"{API}/teams/team-b/datasets", "b-viewer").json()
    hidden = api.call("GET", f"{API}/teams/team-b/datasets/team-a/alpha-data", "b-viewer")

    assert [d["ref"] for d in own] == ["team-a/alpha-data"]
    assert shown.status_code == 200
    assert shown.json()["versions"] == []
    assert other == []
    assert hidden.status_code == 404


def test_costs_and_budgets(api: Api) -> None:
    report = api.call("GET", f"{API}/costs", "a-viewer")
    ambiguous = api.call("GET", f"{API}/costs", "outsider")
    bad_time = api.call("GET", f"{API}/costs?since=yesterday", "a-viewer")
    budget = api.call("PUT", f"{API}/budgets/team-a", "root", json={"amount": "12.5", "thresholds": [50, 80]})
    invalid = api.call("PUT", f"{API}/budgets/team-a", "root", json={"amount": "-3"})
    statuses = api.call("GET", f"{API}/budgets", "a-viewer").json()
    others = api.call("GET", f"{API}/budgets", "b-viewer").json()

    assert report.status_code == 200
    assert [t["team"] for t in report.json()["teams"]] == ["team-a"]
    assert report.json()["pools"] == []
    assert ambiguous.status_code == 422
    assert bad_time.status_code == 422
    assert budget.status_code == 200, budget.text
    assert budget.json()["amount"] == "12.500000"
    assert invalid.status_code == 422
    assert [(s["team"], s["level"]) for s in statuses] == [("team-a", "ok")]
    assert others == []


def test_alert_acknowledged_then_resolved(api: Api) -> None:
    alert = api.world.alerts["a"]

    viewer = api.call("POST", f"{API}/alerts/{alert}/acknowledge", "a-viewer")
    acknowledged = api.call("POST", f"{API}/alerts/{alert}/acknowledge", "a-member")
    resolved = api.call("POST", f"{API}/alerts/{alert}/resolve", "a-member")
    again = api.call("POST", f"{API}/alerts/{alert}/acknowledge", "a-member")

    assert viewer.status_code == 403
    assert acknowledged.json()["state"] == "acknowledged"
    assert resolved.json()["state"] == "resolved"
    assert again.status_code == 409
