"""``neurfly server`` as a process: the CLI through it, and one controller among several servers."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from neurfly.cli.client import ApiClient, find_token
from neurfly.errors import NeurflyError, SpecError
from neurfly.service import find_search, trial_detail, trial_rows
from neurfly.store import Store
from api.conftest import ServerProcess, admin_token, start_servers
from support import NEURFLY, cli_env, make_spec, wait_for

pytestmark = pytest.mark.slow


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NEURFLY, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def _json(env: dict[str, str], *args: str) -> dict | list:
    result = _run(env, *args, "--json")
    assert result.returncode == 0, f"{args}: {result.stderr}"
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, ServerProcess]]:
    """A server with its controller over a fresh store, shared by the tests of this module."""
    home = tmp_path_factory.mktemp("live") / "home"
    home.mkdir()
    token = admin_token(home)
    (server,) = start_servers(home, 1)
    yield home, token, server
    server.stop()


def test_cli_through_server(live: tuple[Path, str, ServerProcess], tmp_path: Path) -> None:
    home, token, server = live
    config_home = tmp_path / "config"
    (config_home / "neurfly").mkdir(parents=True)
    (config_home / "neurfly" / "config.yaml").write_text(yaml.safe_dump({"token": token}))
    env = {**cli_env(home), "XDG_CONFIG_HOME": str(config_home)}
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(make_spec(name="cli", budget={"max_trials": 3, "max_concurrent_trials": 2, "max_steps": 2}, fixed={"sleep_s": 0.0})))

    ran = _json(env, "run", str(spec), "--server", server.url)
    trials = _json(env, "trials", "team-a/cli", "--server", server.url)
    shown = _json(env, "show", "cli#1", "--server", server.url)
    unauthorised = _run({**env, "NEURFLY_TOKEN": "nf_aaaaaaaaaaaa_" + "A" * 43}, "status", "--server", server.url)

    store = Store(f"sqlite:///{home / 'neurfly.db'}")
    search = find_search(store, "cli")
    local = trial_detail(store, "cli", 1)
    assert ran["search"]["state"] == "completed"
    assert len(ran["leaderboard"]) == 3
    assert [(t["number"], t["state"], t["value"], t["attempts"]) for t in trials] == [
        (t["number"], t["state"], t["value"], t["attempts"]) for t in trial_rows(store, search)
    ]
    assert shown["curves"] == json.loads(json.dumps(local["curves"]))
    assert [a["state"] for a in shown["attempts"]] == [a["state"] for a in local["attempts"]]
    assert unauthorised.returncode == 2
    assert "rejected the token" in unauthorised.stderr
    store.dispose()


def test_client_cancels_and_reports_errors(live: tuple[Path, str, ServerProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, token, server = live
    client = ApiClient(server.url, token)
    spec = make_spec(name="slow", budget={"max_trials": 4, "max_concurrent_trials": 1, "max_steps": 50}, fixed={"sleep_s": 0.2})

    search_id = client.submit(spec, new=False)["search"]["id"]
    wait_for(lambda: client.search_summary(client.find_search("slow"))["trials"].get("running", 0) == 1, timeout=60)
    first = client.cancel("team-a/slow")
    with pytest.raises(NeurflyError, match="cancel was already requested|already cancelled"):
        client.cancel(str(search_id))
    wait_for(lambda: client.find_search(str(search_id)).state == "cancelled", timeout=60)

    assert "cancel requested" in first["message"]
    assert [s["name"] for s in client.list_searches() if s["id"] == search_id] == ["slow"]
    with pytest.raises(NeurflyError, match="not found"):
        client.find_search("no-such-search")
    with pytest.raises(SpecError, match="unknown workload"):
        client.submit(make_spec(entrypoint="no-such-workload"), new=False)
    monkeypatch.delenv("NEURFLY_TOKEN", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "nothing"))
    with pytest.raises(NeurflyError, match="NEURFLY_TOKEN"):
        find_token()
    with pytest.raises(NeurflyError, match="not an http"):
        ApiClient("127.0.0.1:8080", token)
    with pytest.raises(NeurflyError, match="cannot reach"):
        ApiClient("http://127.0.0.1:9", token, timeout_s=2).list_searches()


def test_one_controller_among_servers(home: Path, postgres_url: str) -> None:
    env = {**cli_env(home), "NEURFLY_DATABASE_URL": postgres_url}
    token = _json(env, "admin", "create-token", "--user", "root", "--platform-admin")["token"]
    first, second = start_servers(home, 2, env=env)
    try:
        def leaders() -> list[bool]:
            return [s.get("/api/v1/cluster", token)["controller"]["in_this_process"] for s in (first, second)]

        wait_for(lambda: sum(leaders()) == 1, timeout=30)
        leader, standby = (first, second) if leaders()[0] else (second, first)
        assert standby.get("/api/v1/cluster", token)["controller"]["running"] is True

        leader.process.send_signal(signal.SIGKILL)
        leader.process.wait(timeout=10)
        wait_for(lambda: standby.get("/api/v1/cluster", token)["controller"]["in_this_process"], timeout=40)

        spec = make_spec(budget={"max_trials": 2, "max_concurrent_trials": 2, "max_steps": 2}, fixed={"sleep_s": 0.0})
        created = httpx.post(f"{standby.url}/api/v1/searches", json={"spec": spec}, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert created.status_code == 201, created.text
        search_id = created.json()["search"]["id"]
        wait_for(lambda: standby.get(f"/api/v1/searches/{search_id}", token)["state"] == "completed", timeout=60)
    finally:
        first.stop()
        second.stop()
