"""Searches over the API: submit, list, inspect, cancel, and bad input that must change nothing."""

from __future__ import annotations

import json
import math
import threading

from sqlalchemy import func, select

from neurfly.store import Event, Search, Trial
from api.conftest import Api
from support import make_spec

SEARCHES = "/api/v1/searches"


def _counts(api: Api) -> tuple[int, int, int]:
    with api.store.session() as session:
        return (
            session.scalar(select(func.count()).select_from(Search)),
            session.scalar(select(func.count()).select_from(Trial)),
            session.scalar(select(func.count()).select_from(Event)),
        )


def test_submit_creates_then_resumes(api: Api) -> None:
    spec = make_spec(name="fresh", team="team-a")

    created = api.call("POST", SEARCHES, "a-member", json={"spec": spec})
    again = api.call("POST", SEARCHES, "a-member", json={"spec": spec})
    other = api.call("POST", SEARCHES, "a-member", json={"spec": {**spec, "budget": {"max_trials": 9}}})
    forced = api.call("POST", SEARCHES, "a-member", json={"spec": spec, "new": True})

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["search"]["state"] == "running"
    assert body["search"]["team"] == "team-a"
    assert body["resumed"] is False
    assert again.status_code == 200
    assert again.json()["resumed"] is True
    assert again.json()["search"]["id"] == body["search"]["id"]
    assert other.status_code == 409
    assert "different spec" in other.json()["detail"]
    assert forced.status_code == 201
    assert forced.json()["search"]["id"] != body["search"]["id"]
    detail = api.call("GET", f"{SEARCHES}/{body['search']['id']}", "a-viewer").json()
    assert detail["spec"] == spec


def test_submit_returns_warnings(api: Api) -> None:
    spec = make_spec(name="long", team="team-a", budget={"max_trials": 2, "max_steps": 80})

    response = api.call("POST", SEARCHES, "a-member", json={"spec": spec})

    assert response.status_code == 201
    assert any("no early stopping" in warning for warning in response.json()["warnings"])


def test_invalid_spec_lists_every_problem(api: Api) -> None:
    spec = make_spec(team="team-a", entrypoint="no-such-workload", space={"lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}})
    before = _counts(api)

    response = api.call("POST", SEARCHES, "a-member", json={"spec": spec})

    assert response.status_code == 422
    messages = [item["msg"] for item in response.json()["detail"]]
    assert any("log scale needs low > 0" in m for m in messages)
    assert all(item["type"] == "invalid_spec" for item in response.json()["detail"])
    assert _counts(api) == before


def test_spec_for_another_team_forbidden(api: Api) -> None:
    before = _counts(api)

    foreign = api.call("POST", SEARCHES, "b-member", json={"spec": make_spec(team="team-a")})
    viewer = api.call("POST", SEARCHES, "a-viewer", json={"spec": make_spec(team="team-a")})

    assert foreign.status_code == 403
    assert "not a member of team 'team-a'" in foreign.json()["detail"]
    assert viewer.status_code == 403
    assert "is viewer of team 'team-a'" in viewer.json()["detail"]
    assert _counts(api) == before


def test_bad_bodies_get_4xx_and_change_nothing(api: Api) -> None:
    before = _counts(api)
    deep: object = 1
    for _ in range(60):
        deep = {"a": deep}
    cases = {
        "malformed json": dict(content=b'{"spec": {', headers={"Content-Type": "application/json"}),
        "not json": dict(content=b"name: probe", headers={"Content-Type": "application/yaml"}),
        "spec not a mapping": dict(json={"spec": [1, 2]}),
        "wrong field type": dict(json={"spec": make_spec(team="team-a", budget={"max_trials": "many"})}),
        "new not boolean": dict(json={"spec": make_spec(team="team-a"), "new": "perhaps"}),
        "unknown field": dict(json={"spec": make_spec(team="team-a"), "extra": 1}),
        "missing spec": dict(json={}),
        "nan in document": dict(content=json.dumps({"spec": make_spec(team="team-a", fixed={"sleep_s": math.nan})}).encode(), headers={"Content-Type": "application/json"}),
        "too deep": dict(json={"spec": make_spec(team="team-a", fixed={"deep": deep})}),
        "nul in name": dict(json={"spec": make_spec(team="team-a", name="bad\x00name")}),
        "huge body": dict(content=b'{"spec": {"name": "' + b"x" * (2 << 20) + b'"}}', headers={"Content-Type": "application/json"}),
    }
    for label, kwargs in cases.items():
        response = api.call("POST", SEARCHES, "a-member", **kwargs)
        assert 400 <= response.status_code < 500, f"{label}: {response.status_code} {response.text[:200]}"
        assert response.json()["detail"], label
    assert api.call("POST", SEARCHES, "a-member", **cases["huge body"]).status_code == 413
    assert _counts(api) == before


def test_unknown_ids_get_404(api: Api) -> None:
    paths = [
        f"{SEARCHES}/99999", f"{SEARCHES}/no-such-name", f"{SEARCHES}/99999/trials", f"{SEARCHES}/1/trials/999",
        f"{SEARCHES}/1/trials/999/metrics", f"{SEARCHES}/99999999999", "/api/v1/trials/99999", "/api/v1/alerts/99999", "/api/v1/teams/team-z",
    ]
    for path in paths:
        response = api.call("GET", path, "root")
        assert response.status_code == 404, f"{path}: {response.status_code}"
        assert "not found" in response.json()["detail"]


def test_out_of_range_ids_get_422(api: Api) -> None:
    for path in ("/api/v1/trials/3000000000", "/api/v1/trials/-1", f"{SEARCHES}/Bad%20Name", f"{SEARCHES}?limit=0"):
        response = api.call("GET", path, "root")
        assert response.status_code == 422, f"{path}: {response.status_code}"


def test_other_team_404_equals_missing(api: Api) -> None:
    foreign = api.call("GET", f"{SEARCHES}/{api.world.searches['a']}", "b-viewer")
    missing = api.call("GET", f"{SEARCHES}/{api.world.searches['a']}", "outsider")
    by_name = api.call("GET", f"{SEARCHES}/alpha-secret-search", "b-viewer")

    assert foreign.status_code == missing.status_code == by_name.status_code == 404
    assert foreign.json() == missing.json()


def test_concurrent_cancels_one_wins(api: Api) -> None:
    path = f"{SEARCHES}/{api.world.searches['a']}/cancel"
    results: list[int] = []
    barrier = threading.Barrier(6)

    def cancel() -> None:
        barrier.wait()
        results.append(api.call("POST", path, "a-member").status_code)

    threads = [threading.Thread(target=cancel) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [200] + [409] * 5
    with api.store.session() as session:
        search = session.get(Search, api.world.searches["a"])
        requests = session.scalar(select(func.count()).select_from(Event).where(Event.kind == "search.cancel_requested"))
        other = session.get(Search, api.world.searches["b"])
    assert search.state == "cancelled"
    assert requests == 1
    assert other.state == "running"
    assert not other.cancel_requested
    after = api.call("POST", path, "a-member")
    assert after.status_code == 409
    assert "already cancelled" in after.json()["detail"]


def test_list_filters_and_pages(api: Api) -> None:
    for index in range(3):
        api.call("POST", SEARCHES, "root", json={"spec": make_spec(name=f"page-{index}", team="team-b")})

    first = api.call("GET", f"{SEARCHES}?team=team-b&limit=2", "root").json()
    second = api.call("GET", f"{SEARCHES}?team=team-b&limit=2&offset=2", "root").json()
    named = api.call("GET", f"{SEARCHES}?name=page-1", "root").json()
    done = api.call("GET", f"{SEARCHES}?state=completed", "root").json()

    assert first["total"] == 4
    assert [s["name"] for s in first["items"] + second["items"]] == ["beta-search", "page-0", "page-1", "page-2"]
    assert [s["name"] for s in named["items"]] == ["page-1"]
    assert done["items"] == []


def test_search_views_show_trials(api: Api) -> None:
    search = api.world.searches["a"]

    summary = api.call("GET", f"{SEARCHES}/{search}", "a-viewer").json()
    trials = api.call("GET", f"{SEARCHES}/{search}/trials", "a-viewer").json()
    board = api.call("GET", f"{SEARCHES}/{search}/leaderboard", "a-viewer").json()
    curves = api.call("GET", f"{SEARCHES}/{search}/curves", "a-viewer").json()
    attempts = api.call("GET", f"{SEARCHES}/{search}/attempts", "a-viewer").json()
    events = api.call("GET", f"{SEARCHES}/{search}/events", "a-viewer").json()

    assert summary["trials"] == {"running": 1, "completed": 2}
    assert summary["best"]["number"] == 0
    assert [t["number"] for t in trials["items"]] == [0, 1, 2]
    assert trials["items"][1]["value"] == "nan"
    assert [row["number"] for row in board] == [0, 1]
    assert curves["metric"] == "objective"
    assert curves["trials"][0]["points"] == [[1, 0.5], [2, 0.5]]
    assert curves["trials"][1]["points"] == [[1, "nan"], [2, "nan"]]
    assert [(a["trial_number"], a["state"]) for a in attempts] == [(0, "completed"), (1, "completed"), (2, "preempted"), (2, "running")]
    assert attempts[2]["progress_lost"] == 1
    assert events[0]["kind"] == "search.submitted"


def test_trial_detail_by_number_and_id(api: Api) -> None:
    search = api.world.searches["a"]

    by_number = api.call("GET", f"{SEARCHES}/alpha-secret-search/trials/2?team=team-a", "a-viewer").json()
    by_id = api.call("GET", f"/api/v1/trials/{api.world.trials['a2']}", "a-viewer").json()
    metrics = api.call("GET", f"{SEARCHES}/{search}/trials/2/metrics?name=objective", "a-viewer").json()

    assert by_number == by_id
    assert [a["state"] for a in by_number["attempts"]] == ["preempted", "running"]
    assert set(by_number["curves"]) == {"objective"}
    assert [(m["attempt_id"], m["step"]) for m in metrics] == [
        (api.world.attempts["a2.1"], 1), (api.world.attempts["a2.1"], 2), (api.world.attempts["a2.2"], 1), (api.world.attempts["a2.2"], 2),
    ]


def test_submit_yaml_text(api: Api) -> None:
    import yaml

    text = yaml.safe_dump(make_spec(name="from-yaml", team="team-a"))

    created = api.call("POST", SEARCHES, "a-member", json={"spec_yaml": text})
    duplicate_key = api.call("POST", SEARCHES, "a-member", json={"spec_yaml": "name: a\nname: b\n"})
    aliases = api.call("POST", SEARCHES, "a-member", json={"spec_yaml": "a: &x [1, 2]\nb: [*x, *x]\n"})
    not_mapping = api.call("POST", SEARCHES, "a-member", json={"spec_yaml": "- 1\n- 2\n"})
    broken = api.call("POST", SEARCHES, "a-member", json={"spec_yaml": "name: [unclosed"})
    both = api.call("POST", SEARCHES, "a-member", json={"spec_yaml": text, "spec": make_spec(team="team-a")})

    assert created.status_code == 201, created.text
    assert created.json()["search"]["name"] == "from-yaml"
    assert duplicate_key.status_code == 422
    assert "appears twice" in duplicate_key.text
    assert aliases.status_code == 422
    assert "aliases" in aliases.text
    assert not_mapping.status_code == 422
    assert broken.status_code == 422
    assert "invalid YAML" in broken.text
    assert both.status_code == 422
