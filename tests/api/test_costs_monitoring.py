"""Cost exports, budget history, classified failures and disabled users over the API."""

from __future__ import annotations

import csv
import io

import pytest

from neurfly.accounting.export import CSV_COLUMNS
from api.conftest import Api

API = "/api/v1"


# -- costs as CSV ---------------------------------------------------------------------------------


def test_costs_csv_has_the_report_rows(api: Api) -> None:
    response = api.call("GET", f"{API}/costs.csv?team=team-a", "a-viewer")
    report = api.call("GET", f"{API}/costs?team=team-a", "a-viewer").json()
    rows = list(csv.DictReader(io.StringIO(response.text)))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.text.splitlines()[0] == ",".join(CSV_COLUMNS)
    assert rows
    assert {row["team"] for row in rows} == {"team-a"}
    assert {row["kind"] for row in rows} == {"usage"}
    assert {int(row["search_id"]) for row in rows} == {s["search_id"] for s in report["searches"]}


def test_costs_csv_takes_the_filters_of_costs(api: Api) -> None:
    own = api.call("GET", f"{API}/costs.csv", "b-viewer")
    other = api.call("GET", f"{API}/costs.csv?team=team-a", "b-viewer")
    none = api.call("GET", f"{API}/costs.csv", "outsider")
    bad_time = api.call("GET", f"{API}/costs.csv?since=yesterday", "a-viewer")
    unknown = api.call("GET", f"{API}/costs.csv?format=json", "a-viewer")
    empty = api.call("GET", f"{API}/costs.csv?since=2001-01-01&until=2001-02-01", "a-viewer")
    everyone = api.call("GET", f"{API}/costs.csv", "root")

    assert {row["team"] for row in csv.DictReader(io.StringIO(own.text))} == {"team-b"}
    assert other.status_code == 404
    assert none.status_code == 422
    assert "team" in none.text
    assert bad_time.status_code == 422
    assert bad_time.headers["content-type"] == "application/json"
    assert unknown.status_code == 422
    assert empty.text.splitlines() == [",".join(CSV_COLUMNS)]
    assert {row["team"] for row in csv.DictReader(io.StringIO(everyone.text))} >= {"team-a", "team-b"}


# -- budget history -------------------------------------------------------------------------------


def test_budget_history_lists_changes_alerts_and_actions(api: Api) -> None:
    changed = api.call("PUT", f"{API}/budgets/team-a", "root", json={"amount": "250", "reason": "bigger model"})
    history = api.call("GET", f"{API}/budgets/team-a/history", "a-viewer")
    body = history.json()

    assert changed.status_code == 200
    assert history.status_code == 200, history.text
    assert body["scope"] == "team:team-a"
    assert [(c["action"], c["actor"], c["reason"]) for c in body["changes"]] == [("created", "root", "seeded"), ("updated", "root", "bigger model")]
    assert body["changes"][1]["after"]["amount"] == "250.000000"
    assert [a["category"] for a in body["alerts"]] == ["budget"]
    assert [(a["kind"], a["data"]["level"]) for a in body["actions"]] == [("budget.level", "soft")]


def test_budget_history_survives_removal(api: Api) -> None:
    removed = api.call("DELETE", f"{API}/budgets/team-a", "root")
    history = api.call("GET", f"{API}/budgets/team-a/history", "a-viewer").json()

    assert removed.status_code == 200
    assert [c["action"] for c in history["changes"]] == ["created", "removed"]
    assert len(history["alerts"]) == 1


@pytest.mark.parametrize(
    ("path", "user", "status"),
    [
        ("/budgets/team-b/history", "b-viewer", 404),
        ("/budgets/team-a/history", "b-viewer", 404),
        ("/budgets/team-a/history?search_id=1", "a-viewer", 404),
        ("/budgets/team-a/history?search_id=0", "a-viewer", 422),
        ("/budgets/team-a/history?search_id=x", "a-viewer", 422),
        ("/budgets/Team%20A/history", "root", 422),
    ],
)
def test_budget_history_rejects(api: Api, path: str, user: str, status: int) -> None:
    response = api.call("GET", f"{API}{path}", user)

    assert response.status_code == status, response.text
    assert "alpha-marker" not in response.text


# -- failures -------------------------------------------------------------------------------------


def test_failures_listed_with_owner(api: Api) -> None:
    listed = api.call("GET", f"{API}/failures", "a-viewer").json()
    by_search = api.call("GET", f"{API}/searches/{api.world.searches['a']}/failures", "a-viewer").json()
    by_name = api.call("GET", f"{API}/searches/alpha-secret-search/failures", "a-viewer").json()

    assert [(f["attempt_id"], f["owner"], f["category"]) for f in listed] == [(api.world.attempts["a2.1"], "team-a", "user_code")]
    assert listed[0]["trial_id"] == api.world.trials["a2"]
    assert listed[0]["reason"].startswith("ValueError")
    assert by_search == listed
    assert by_name == listed


def test_failures_scoped_to_team(api: Api) -> None:
    own = api.call("GET", f"{API}/failures", "b-viewer").json()
    requested = api.call("GET", f"{API}/failures?team=team-a", "b-viewer").json()
    search = api.call("GET", f"{API}/searches/{api.world.searches['a']}/failures", "b-viewer")
    by_id = api.call("GET", f"{API}/failures?search_id={api.world.searches['a']}", "b-viewer").json()
    everyone = api.call("GET", f"{API}/failures", "root").json()

    assert own == []
    assert requested == []
    assert search.status_code == 404
    assert by_id == []
    assert len(everyone) == 1


@pytest.mark.parametrize(
    ("query", "count", "status"),
    [("?category=user_code", 1, 200), ("?category=data", 0, 200), ("?category=cosmic", 0, 422), ("?limit=0", 0, 422), ("?limit=1", 1, 200)],
)
def test_failures_filters(api: Api, query: str, count: int, status: int) -> None:
    response = api.call("GET", f"{API}/failures{query}", "a-viewer")

    assert response.status_code == status
    if status == 200:
        assert len(response.json()) == count


# -- disabled users -------------------------------------------------------------------------------


def test_disabled_user_gets_401_at_once(api: Api) -> None:
    before = api.call("GET", f"{API}/me", "a-viewer")
    disabled = api.call("POST", f"{API}/users/a-viewer/disable", "root")
    rejected = api.call("GET", f"{API}/me", "a-viewer")
    listed = {u["name"]: u["disabled"] for u in api.call("GET", f"{API}/users", "root").json()}
    enabled = api.call("POST", f"{API}/users/a-viewer/enable", "root")
    after = api.call("GET", f"{API}/me", "a-viewer")

    assert before.status_code == 200
    assert disabled.status_code == 200
    assert disabled.json()["disabled"] is True
    assert rejected.status_code == 401
    assert "disabled" in rejected.json()["detail"]
    assert listed["a-viewer"] is True
    assert enabled.json()["disabled"] is False
    assert after.status_code == 200


def test_disable_rejects(api: Api) -> None:
    itself = api.call("POST", f"{API}/users/root/disable", "root")
    unknown = api.call("POST", f"{API}/users/nobody/disable", "root")
    by_admin = api.call("POST", f"{API}/users/a-viewer/disable", "a-admin")
    twice = [api.call("POST", f"{API}/users/b-member/disable", "root").status_code for _ in range(2)]

    assert itself.status_code == 409
    assert unknown.status_code == 404
    assert "nobody" in unknown.json()["detail"]
    assert by_admin.status_code == 403
    assert twice == [200, 200]
    assert api.call("GET", f"{API}/me", "root").status_code == 200
