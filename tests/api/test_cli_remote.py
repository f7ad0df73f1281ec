"""Cost, budget, alert, failure and data governance commands with ``--server`` against a running server.

One server per module serves a seeded store without a controller. Each
command runs in-process twice, once against the server and once with
``--db`` on the same store file, and the outputs are compared.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from api.conftest import ServerProcess, World, free_port, seed, start_servers
from neurfly.cli import app
from neurfly.errors import NeurflyError
from neurfly.store import Store
from support import NEURFLY, cli_env


@dataclass
class Remote:
    home: Path
    db: str
    server: ServerProcess
    world: World

    def run(self, user: str, *args: str) -> Result:
        """Run a command against the server with ``user``'s token."""
        env = {"NEURFLY_TOKEN": self.world.tokens[user], "NEURFLY_SERVER": "", "NEURFLY_TEAM": ""}
        return CliRunner().invoke(app, [*args, "--server", self.server.url], env=env)

    def local(self, *args: str) -> Result:
        """Run a command on the same store file."""
        return CliRunner().invoke(app, [*args, "--db", self.db], env={"NEURFLY_SERVER": "", "NEURFLY_TEAM": ""})

    def json(self, user: str | None, *args: str) -> Any:
        result = self.local(*args, "--json") if user is None else self.run(user, *args, "--json")
        assert result.exit_code == 0, f"{args}: {result.output} {result.exception!r}"
        return json.loads(result.stdout)

    def error(self, user: str, *args: str) -> str:
        result = self.run(user, *args)
        assert isinstance(result.exception, NeurflyError), f"{args}: {result.output} {result.exception!r}"
        return str(result.exception)


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    home = tmp_path_factory.mktemp("remote-cli") / "home"
    home.mkdir()
    path = home / "neurfly.db"
    store = Store.open(f"sqlite:///{path}")
    world = seed(store)
    store.dispose()
    (server,) = start_servers(home, 1, "--no-controller")
    yield Remote(home, f"sqlite:///{path}", server, world)
    server.stop()


def _ok(result: Result) -> str:
    assert result.exit_code == 0, f"{result.output} {result.exception!r}"
    return result.stdout


# -- costs and budgets ----------------------------------------------------------------------------


def test_costs_match_store(remote: Remote) -> None:
    served = remote.json("a-viewer", "costs", "--team", "team-a")
    local = remote.json(None, "costs", "--team", "team-a")
    served_csv = _ok(remote.run("a-viewer", "costs", "--team", "team-a", "--csv")).splitlines()
    local_csv = _ok(remote.local("costs", "--team", "team-a", "--csv")).splitlines()
    table = _ok(remote.run("a-viewer", "costs", "--team", "team-a"))

    assert served["since"] == local["since"]
    assert [t["team"] for t in served["teams"]] == [t["team"] for t in local["teams"]] == ["team-a"]
    assert [s["search"] for s in served["searches"]] == [s["search"] for s in local["searches"]] == ["alpha-secret-search"]
    assert served_csv[0] == local_csv[0]
    assert [line.split(",")[2] for line in served_csv] == [line.split(",")[2] for line in local_csv]
    assert "Cost by team" in table
    assert "Cost by search" in table


def test_costs_of_other_team_hidden(remote: Remote) -> None:
    message = remote.error("b-viewer", "costs", "--team", "team-a")
    served = remote.json("b-viewer", "costs")

    assert "team 'team-a' not found" in message
    assert "HTTP 404" in message
    assert [t["team"] for t in served["teams"]] == ["team-b"]
    assert "alpha-secret-search" not in json.dumps(served)


def test_costs_rejects_cluster_and_both_formats(remote: Remote) -> None:
    assert "drop --cluster" in remote.error("a-viewer", "costs", "--cluster", "cluster.yaml")
    assert "pass only one" in remote.error("a-viewer", "costs", "--json", "--csv")


def test_budget_list_and_history(remote: Remote) -> None:
    served = remote.json("a-viewer", "budget", "list")
    local = remote.json(None, "budget", "list", "--team", "team-a")
    history = remote.json("a-viewer", "budget", "history", "--team", "team-a")
    local_history = remote.json(None, "budget", "history", "--team", "team-a")
    table = _ok(remote.run("a-viewer", "budget", "list"))

    assert [b["id"] for b in served] == [b["id"] for b in local] == [remote.world.budgets["a"]]
    assert served[0]["amount"] == local[0]["amount"]
    assert "Budgets" in table
    assert "team-a" in table
    assert history == local_history
    assert remote.json("b-viewer", "budget", "list") == []
    assert "not found" in remote.error("b-viewer", "budget", "history", "--team", "team-a")
    assert "give --team" in remote.error("a-viewer", "budget", "history")


def test_budget_set_and_remove(remote: Remote) -> None:
    created = remote.json("root", "budget", "set", "team-b", "--amount", "40", "--thresholds", "50,90", "--hard-at", "120")
    listed = remote.json("b-viewer", "budget", "list")
    removed = _ok(remote.run("root", "budget", "remove", "team-b"))

    assert created["scope"] == "team:team-b"
    assert created["thresholds"] == [50.0, 90.0]
    assert created["hard_limit_percent"] == 120.0
    assert [b["id"] for b in listed] == [created["id"]]
    assert f"budget {created['id']} (team:team-b) removed" in removed
    assert remote.json("b-viewer", "budget", "list") == []


def test_budget_changes_need_platform_admin(remote: Remote) -> None:
    denied = remote.error("a-admin", "budget", "set", "team-a", "--amount", "1")
    missing = remote.error("root", "budget", "remove", "team-b")
    hard = remote.error("root", "budget", "set", "team-b", "--amount", "1", "--hard")
    actor = remote.error("root", "budget", "set", "team-b", "--amount", "1", "--actor", "someone")

    assert "HTTP 403" in denied
    assert "HTTP 404" in missing
    assert "--soft --hard-at 100" in hard
    assert "drop --actor" in actor


# -- alerts and failures --------------------------------------------------------------------------


def test_alerts_scoped_to_team(remote: Remote) -> None:
    served = remote.json("a-viewer", "alerts")
    local = remote.json(None, "alerts", "--team", "team-a")
    other = remote.json("b-viewer", "alerts")
    table = _ok(remote.run("a-viewer", "alerts"))

    assert [a["id"] for a in served] == [a["id"] for a in local]
    assert remote.world.alerts["a"] in [a["id"] for a in served]
    assert [a["team"] for a in other] == ["team-b"]
    assert "alpha-marker-7f3a" not in json.dumps(other)
    assert f"Alerts ({len(served)})" in table
    assert [a["id"] for a in remote.json("a-viewer", "alerts", "--owner", "nobody")] == []


def test_alert_ack_and_resolve(remote: Remote) -> None:
    alert_id = str(remote.world.alerts["b"])

    hidden = remote.error("a-member", "alerts", "ack", alert_id)
    viewer = remote.error("b-viewer", "alerts", "ack", alert_id)
    acknowledged = _ok(remote.run("b-member", "alerts", "ack", alert_id))
    resolved = _ok(remote.run("b-member", "alerts", "resolve", alert_id))

    assert f"alert {alert_id} not found" in hidden
    assert "HTTP 403" in viewer
    assert f"alert {alert_id} (divergence) is acknowledged" in acknowledged
    assert f"alert {alert_id} (divergence) is resolved" in resolved
    assert remote.json("b-viewer", "alerts") == []
    assert [a["state"] for a in remote.json("b-viewer", "alerts", "--all")] == ["resolved"]
    assert "drop --by" in remote.error("b-member", "alerts", "resolve", alert_id, "--by", "someone")


def test_failures_scoped_to_team(remote: Remote) -> None:
    served = remote.json("a-viewer", "failures")
    local = remote.json(None, "failures")
    by_search = remote.json("a-viewer", "failures", "team-a/alpha-secret-search")

    assert served == [row for row in local if row["team"] == "team-a"]
    assert by_search == served
    assert remote.json("b-viewer", "failures") == []
    assert "not found" in remote.error("b-viewer", "failures", "team-a/alpha-secret-search")


# -- datasets, grants and artifacts ---------------------------------------------------------------


def test_dataset_list_and_show(remote: Remote) -> None:
    served = remote.json("a-member", "dataset", "list", "--team", "team-a")
    local = remote.json(None, "dataset", "list", "--team", "team-a")
    shown = remote.json("a-member", "dataset", "show", "alpha-data", "--team", "team-a")
    table = _ok(remote.run("a-member", "dataset", "list", "--team", "team-a"))

    assert served == local
    assert shown == remote.json(None, "dataset", "show", "team-a/alpha-data", "--team", "team-a")
    assert "Datasets visible to team team-a" in table
    assert "alpha-data" not in json.dumps(remote.json("b-member", "dataset", "list", "--team", "team-b"))


def test_dataset_of_other_team_not_found(remote: Remote) -> None:
    hidden = remote.error("b-member", "dataset", "show", "team-a/alpha-data", "--team", "team-b")
    foreign_team = remote.error("b-member", "dataset", "list", "--team", "team-a")
    unknown = remote.error("a-member", "dataset", "show", "no-such-data", "--team", "team-a")

    assert "team-a/alpha-data" in hidden
    assert "HTTP 404" in hidden
    assert "team 'team-a' not found" in foreign_team
    assert "team-a/no-such-data" in unknown


def test_dataset_register(remote: Remote) -> None:
    args = ("dataset", "register", "iris-set", "--team", "team-a", "--sklearn", "iris")
    created = remote.json("a-member", *args, "--sensitivity", "internal", "--tag", "pii")
    again = remote.json("a-member", *args)
    shown = remote.json(None, "dataset", "show", "iris-set", "--team", "team-a")

    assert created["dataset"] == "team-a/iris-set"
    assert created["source"] == "sklearn"
    assert again == created
    assert [v["version"] for v in shown["versions"]] == [created["version"]]
    assert shown["tags"] == ["PII"]
    assert "is new; give its --sensitivity" in remote.error("a-member", "dataset", "register", "other-set", "--team", "team-a", "--sklearn", "iris")
    assert "exists with other settings" in remote.error("a-member", *args, "--sensitivity", "public")
    assert "HTTP 403" in remote.error("a-viewer", "dataset", "register", "x-set", "--team", "team-a", "--sklearn", "iris", "--sensitivity", "public")
    assert "belongs to team team-b" in remote.error("a-member", "dataset", "register", "team-b/x", "--team", "team-a", "--sklearn", "iris")


def test_dataset_audit_matches_store(remote: Remote) -> None:
    served = remote.json("a-viewer", "dataset", "audit", "--team", "team-a", "--limit", "5")
    local = remote.json(None, "dataset", "audit", "--team", "team-a", "--limit", "5")

    assert served == local
    assert remote.json("a-viewer", "dataset", "audit", "--team", "team-a", "--denied", "--resource", "team-a/nothing") == []
    assert "team 'team-a' not found" in remote.error("b-viewer", "dataset", "audit", "--team", "team-a")


def test_grants(remote: Remote) -> None:
    given = _ok(remote.run("a-admin", "grant", "dataset", "alpha-data", "--team", "team-a", "--to", "team-b", "--role", "training", "--reason", "shared"))
    grant_id = given.split(":")[0].split()[-1]
    visible = remote.json("b-member", "dataset", "list", "--team", "team-b")
    listed = remote.json("a-admin", "grant", "list", "--team", "team-a")
    local = remote.json(None, "grant", "list", "--team", "team-a")
    revoked = _ok(remote.run("a-admin", "grant", "revoke", grant_id, "--team", "team-a"))

    assert "team team-b may use team-a/alpha-data for training until" in given
    assert "team-a/alpha-data" in [d["dataset"] for d in visible]
    assert [g["id"] for g in listed] == [g["id"] for g in local]
    assert [g["resource"] for g in listed] == [g["resource"] for g in local]
    assert f"grant {grant_id} of team-a/alpha-data to team team-b revoked" in revoked
    assert "team-a/alpha-data" not in [d["dataset"] for d in remote.json("b-member", "dataset", "list", "--team", "team-b")]
    assert "HTTP 403" in remote.error("a-member", "grant", "dataset", "alpha-data", "--team", "team-a", "--to", "team-b", "--role", "training")
    assert "not found" in remote.error("b-admin", "grant", "revoke", str(remote.world.grants["a"]), "--team", "team-b")


def test_artifacts(remote: Remote) -> None:
    published = remote.json("a-member", "artifact", "publish", "alpha-secret-search#0", "--team", "team-a", "--name", "alpha-copy")
    served = remote.json("a-member", "artifact", "list", "--team", "team-a")
    local = remote.json(None, "artifact", "list", "--team", "team-a")
    granted = _ok(remote.run("a-admin", "grant", "artifact", "alpha-copy", "--team", "team-a", "--to", "team-b"))

    assert published["artifact"] == "team-a/alpha-copy"
    assert served == local
    assert {"team-a/alpha-model", "team-a/alpha-copy"} <= {a["artifact"] for a in served}
    assert "team team-b may start from team-a/alpha-copy until" in granted
    assert [a["artifact"] for a in remote.json("b-member", "artifact", "list", "--team", "team-b")] == ["team-a/alpha-copy"]
    assert "not found" in remote.error("b-member", "artifact", "publish", "alpha-secret-search#0", "--team", "team-b", "--name", "stolen")
    assert "neither SEARCH#NUMBER" in remote.error("a-member", "artifact", "publish", "trial-x", "--team", "team-a", "--name", "x")


def test_lineage_matches_store(remote: Remote) -> None:
    for subject in ("alpha-secret-search#0", "team-a/alpha-model"):
        served = remote.json("a-viewer", "lineage", subject, "--team", "team-a")
        local = remote.json(None, "lineage", subject, "--team", "team-a")

        assert served["subject"] == local["subject"]
        assert served["data"] == local["data"]
        assert [a["id"] for a in served["attempts"]] == [a["id"] for a in local["attempts"]]
    assert "not found" in remote.error("b-member", "lineage", "alpha-secret-search#0", "--team", "team-b")


# -- bad input as a user sees it ------------------------------------------------------------------


def _neurfly(remote: Remote, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    # Wide enough that rich does not wrap a message, so a message of one line stays one line.
    env = {**cli_env(remote.home), "NEURFLY_TOKEN": token, "COLUMNS": "1000"}
    return subprocess.run([*NEURFLY, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_bad_input_one_line_errors(remote: Remote) -> None:
    wrong_token = _neurfly(remote, "nf_aaaaaaaaaaaa_" + "A" * 43, "costs", "--server", remote.server.url)
    unknown = _neurfly(remote, remote.world.tokens["a-member"], "dataset", "show", "nothing", "--team", "team-a", "--server", remote.server.url)
    stopped = _neurfly(remote, remote.world.tokens["a-member"], "alerts", "--server", f"http://127.0.0.1:{free_port()}")

    for result in (wrong_token, unknown, stopped):
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "rejected the token" in wrong_token.stderr
    assert "NEURFLY_TOKEN" in wrong_token.stderr
    assert "team-a/nothing not found" in unknown.stderr
    assert "cannot reach" in stopped.stderr
