"""The dashboard in headless Chromium against a real server running a search."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from neurfly.store import Attempt, Search, Store, Trial
from api.conftest import ServerProcess, admin_token, start_servers
from support import make_spec, wait_for

pytestmark = pytest.mark.slow


def _seed_preempted_trial(store: Store) -> int:
    """A finished search whose only trial was preempted once and then completed; returns the search id."""
    now = time.time()
    with store.session() as session:
        search = Search(
            name="seeded", team="team-a", state="completed", spec=make_spec(name="seeded"), strategy="random",
            objective_metric="objective", direction="minimize", max_trials=1, priority="search",
            cancel_requested=False, created_at=now - 120, finished_at=now - 10, message="1 trials (1 completed)",
        )
        session.add(search)
        session.flush()
        trial = Trial(search_id=search.id, number=0, params={"x": 0.25}, config_key="x", state="completed", value=0.25,
                      step=4, decided_step=0, infra_failures=0, created_at=now - 120, queued_at=now - 60, finished_at=now - 10)
        session.add(trial)
        session.flush()
        for number, (state, start, end, lost) in enumerate([("preempted", 110, 70, 1), ("completed", 50, 10, 0)], start=1):
            session.add(Attempt(trial_id=trial.id, search_id=search.id, number=number, state=state, executor="local",
                                pool="eu-local", node="eu-node-1", slots=[0], devices=1, started_at=now - start,
                                ended_at=now - end, start_step=0 if number == 1 else 2, end_step=3 if number == 1 else 4,
                                progress_lost=lost, data_versions={}, reason=state))
        session.commit()
        return search.id


@pytest.fixture
def live(home: Path, store: Store) -> Any:
    seeded = _seed_preempted_trial(store)
    token = admin_token(home)
    (server,) = start_servers(home, 1)
    spec = make_spec(name="live", budget={"max_trials": 6, "max_concurrent_trials": 2, "max_steps": 40}, fixed={"sleep_s": 0.15})
    created = httpx.post(f"{server.url}/api/v1/searches", json={"spec": spec}, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert created.status_code == 201, created.text
    yield server, token, created.json()["search"]["id"], seeded
    server.stop()


def _reported_points(server: ServerProcess, token: str, search_id: int) -> int:
    curves = server.get(f"/api/v1/searches/{search_id}/curves", token)
    return sum(len(t["points"]) for t in curves["trials"])


def test_dashboard_shows_running_search(browser: Any, live: Any, tmp_path: Path) -> None:
    server, token, search_id, seeded = live
    wait_for(lambda: _reported_points(server, token, search_id) >= 2, timeout=90)
    context = browser.new_context(viewport={"width": 1300, "height": 1300})
    page = context.new_page()
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)

    response = page.goto(server.url + "/")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.fill("[data-testid=token-input]", token)
    page.click("[data-testid=sign-in]")
    page.wait_for_selector("[data-testid=searches-table] >> text=team-a/live")
    assert page.locator("#who").inner_text() == "root (platform admin)"

    page.click("[data-testid=searches-table] >> text=team-a/live")
    page.wait_for_selector("[data-testid=trials-table] tbody tr[data-state=running]")
    page.wait_for_selector("[data-testid=curves] svg path.curve", state="attached")
    first_length = _curve_length(page)
    page.wait_for_function(f"() => [...document.querySelectorAll('[data-testid=curves] path.curve')].reduce((n, p) => n + p.getAttribute('d').length, 0) > {first_length}", timeout=30000)
    assert page.locator("[data-testid=search-title]").inner_text() == "team-a/live"
    assert page.locator("[data-testid=timeline] rect.attempt").count() >= 1
    page.screenshot(path=str(tmp_path / "search.png"), full_page=True)

    page.goto(f"{server.url}/dashboard/#/searches/{seeded}/trials/0")
    page.wait_for_selector("[data-testid=attempts-table] tbody tr")
    assert page.locator("[data-testid=timeline] .marker.preempted").count() == 1
    assert page.locator("[data-testid=attempts-table] tbody tr").count() == 2
    page.screenshot(path=str(tmp_path / "trial.png"), full_page=True)

    page.goto(f"{server.url}/dashboard/#/cluster")
    page.wait_for_selector("[data-testid=utilisation] svg path.area", state="attached")
    assert page.locator("[data-testid=slot]").count() == 4
    page.screenshot(path=str(tmp_path / "cluster.png"), full_page=True)

    page.goto(f"{server.url}/dashboard/#/costs")
    page.wait_for_selector("[data-testid=costs-chart] svg rect.bar", state="attached")
    page.screenshot(path=str(tmp_path / "costs.png"), full_page=True)

    page.goto(f"{server.url}/dashboard/#/alerts")
    page.wait_for_selector("#content [data-testid=alerts-table], #content .panel.muted")

    page.click("#sign-out")
    page.wait_for_selector("[data-testid=token-input]")
    assert page.evaluate("localStorage.getItem('neurfly.token')") is None
    page.fill("[data-testid=token-input]", "nf_aaaaaaaaaaaa_" + "A" * 43)
    page.click("[data-testid=sign-in]")
    page.wait_for_selector("[data-testid=login-error]")
    context.close()

    assert problems == [m for m in problems if "401" in m]
    assert requests
    assert all(url.startswith(server.url) or url.startswith("data:") for url in requests), [u for u in requests if not u.startswith(server.url)]


def _curve_length(page: Any) -> int:
    return page.evaluate("[...document.querySelectorAll('[data-testid=curves] path.curve')].reduce((n, p) => n + p.getAttribute('d').length, 0)")
