"""A seeded store and an in-process API client: two teams, every role, searches, trials and alerts.

The world is built once per session into a SQLite file. Each test gets its
own copy, so tests that cancel or submit do not see each other's changes.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from neurfly.accounting import set_budget
from neurfly.accounting.budgeting import alert_key_prefix
from neurfly.accounting.records import BUDGET_LEVEL_EVENT
from neurfly.api import create_app
from neurfly.auth import Role, create_team, create_user, issue_token, set_member
from neurfly.core.cluster import default_cluster
from neurfly.governance.access import Caller, grant_access
from neurfly.governance.artifacts import publish_artifact
from neurfly.governance.models import DataRole, Dataset, ResourceKind
from neurfly.monitoring.alerts import AlertCategory, Severity, raise_alert
from neurfly.monitoring.records import AttemptFailure
from neurfly.store import Attempt, Checkpoint, Event, MetricRecord, Search, Store, Trial
from store.pgtools import postgres_server, postgres_template, postgres_url  # noqa: F401 - fixtures
from support import NEURFLY, cli_env, make_spec, run_cli

# Strings that appear only in team-a's data; no response to a team-b token may contain them.
ALPHA_MARKERS = ("alpha-secret-search", "alpha-marker-7f3a", "alpha-param-value")
ROLES = ("viewer", "member", "admin")


@dataclass
class World:
    """Ids and tokens of the seeded store."""

    tokens: dict[str, str] = field(default_factory=dict)
    key_ids: dict[str, str] = field(default_factory=dict)
    searches: dict[str, int] = field(default_factory=dict)
    trials: dict[str, int] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)
    grants: dict[str, int] = field(default_factory=dict)
    budgets: dict[str, int] = field(default_factory=dict)


def seed(store: Store) -> World:
    """Fill ``store`` with users of every role in team-a and team-b, a platform admin and an outsider."""
    world = World()
    with store.session() as session:
        for team in ("team-a", "team-b"):
            create_team(session, team)
        create_user(session, "root", platform_admin=True)
        create_user(session, "outsider")
        for team in ("a", "b"):
            for role in ROLES:
                create_user(session, f"{team}-{role}")
                set_member(session, f"team-{team}", f"{team}-{role}", Role(role))
        for user in ("root", "outsider", *(f"{t}-{r}" for t in "ab" for r in ROLES)):
            issued = issue_token(session, user, "tests")
            world.tokens[user] = issued.token
            world.key_ids[user] = issued.key_id
        # A second token of a-member, which the route walk may revoke while a-member's first token stays valid.
        world.key_ids["a-member-spare"] = issue_token(session, "a-member", "spare").key_id
        session.commit()

        now = time.time()
        _search(session, world, "a", "alpha-secret-search", now)
        _search(session, world, "b", "beta-search", now)
        for team in ("a", "b"):
            alert, _ = raise_alert(
                session, key=f"test:{team}", category=AlertCategory.DIVERGENCE, severity=Severity.WARNING,
                owner=f"team-{team}", team=f"team-{team}", search_id=world.searches[team],
                message="loss diverged" + (" alpha-marker-7f3a" if team == "a" else ""), now=now,
                evidence={"value": float("nan")},
            )
            world.alerts[team] = alert.id
        dataset = Dataset(team="team-a", name="alpha-data", sensitivity="confidential", tags=[], regions=["eu-west"],
                          description="alpha-marker-7f3a", created_at=now, created_by="a-admin")
        session.add(dataset)
        session.flush()
        platform, _ = raise_alert(session, key="test:platform", category=AlertCategory.RESOURCE, severity=Severity.CRITICAL,
                                  owner="platform", message="node eu-node-1 is down", now=now)
        world.alerts["platform"] = platform.id
        _governance(session, world, dataset, now)
        _budget(session, world, now)
        _failure(session, world, now)
        session.commit()
    return world


def _governance(session: Any, world: World, dataset: Dataset, now: float) -> None:
    """A grant of alpha-data to a team outside the two, and artifact alpha-model published from trial a0."""
    admin = Caller("team-a", "a-admin")
    grant = grant_access(session, admin, ResourceKind.DATASET, dataset, "team-partner", [DataRole.TRAINING], reason="seeded")
    world.grants["a"] = grant.id

    trial = session.get(Trial, world.trials["a0"])
    checkpoint = Checkpoint(trial_id=trial.id, attempt_id=world.attempts["a0.1"], step=2, uri="file:///checkpoints/a0",
                            digest="sha256:" + "c" * 64, size_bytes=10, created_at=now - 10)
    session.add(checkpoint)
    session.flush()
    trial.checkpoint_id = checkpoint.id
    publish_artifact(session, Caller("team-a", "a-member"), str(trial.id), "alpha-model", description="alpha-marker-7f3a", now=now)


def _budget(session: Any, world: World, now: float) -> None:
    """A budget of team-a that crossed its 50 percent threshold and reached its soft limit."""
    budget = set_budget(session, "team-a", "100", actor="root", reason="seeded", now=now - 60)
    world.budgets["a"] = budget["id"]
    raise_alert(session, key=f"{alert_key_prefix(budget['id'])}seeded:actual:50", category=AlertCategory.BUDGET, severity=Severity.INFO,
                owner="team-a", team="team-a", message="team team-a has spent 50, 50% of its budget; alpha-marker-7f3a", now=now)
    session.add(Event(at=now, kind=BUDGET_LEVEL_EVENT, message=f"budget {budget['id']} (team:team-a): ok -> soft", search_id=None,
                      data={"budget_id": budget["id"], "team": "team-a", "level": "soft", "previous": "ok"}))


def _failure(session: Any, world: World, now: float) -> None:
    """A classified failure of team-a's first attempt of trial a2."""
    attempt = session.get(Attempt, world.attempts["a2.1"])
    session.add(AttemptFailure(attempt_id=attempt.id, search_id=attempt.search_id, team="team-a", category="user_code",
                               cause="exception:ValueError", owner="team-a",
                               evidence={"reason": "ValueError: alpha-marker-7f3a", "attempt_id": attempt.id}, classified_at=now))


def _search(session: Any, world: World, team: str, name: str, now: float) -> None:
    description = "alpha-marker-7f3a" if team == "a" else "beta search"
    spec = make_spec(name=name, team=f"team-{team}", description=description)
    search = Search(
        name=name, team=f"team-{team}", state="running", spec=spec, strategy="random", objective_metric="objective",
        direction="minimize", max_trials=4, priority="search", cancel_requested=False, created_at=now - 100,
    )
    session.add(search)
    session.flush()
    world.searches[team] = search.id

    values = [(0.5, None, "completed"), (None, "nan", "completed"), (None, None, "running")]
    for number, (value, special, state) in enumerate(values):
        params = {"x": "alpha-param-value" if team == "a" else 0.1 * number}
        trial = Trial(
            search_id=search.id, number=number, params=params, config_key=f"{team}{number}", state=state, value=value,
            value_special=special, step=2 if state == "completed" else 1, decided_step=0, infra_failures=0,
            created_at=now - 90, queued_at=now - 90, finished_at=now - 10 if state == "completed" else None,
            message=state,
        )
        session.add(trial)
        session.flush()
        world.trials[f"{team}{number}"] = trial.id
        _attempts(session, world, search, trial, team, number, now)
    session.add(Event(at=now - 100, kind="search.submitted", message=f"team-{team}/{name} submitted", search_id=search.id, data={}))


def _attempts(session: Any, world: World, search: Search, trial: Trial, team: str, number: int, now: float) -> None:
    node, pool = ("eu-node-1", "eu-local") if team == "a" else ("us-node-1", "us-local")
    spans = [("completed", now - 80, now - 10)] if trial.state == "completed" else [("preempted", now - 80, now - 50), ("running", now - 40, None)]
    for index, (state, started, ended) in enumerate(spans, start=1):
        attempt = Attempt(
            trial_id=trial.id, search_id=search.id, number=index, state=state, executor="local", pool=pool, node=node,
            slots=[number % 2], devices=1, started_at=started, ended_at=ended, start_step=0, end_step=1,
            progress_lost=1 if state == "preempted" else 0, data_versions={}, reason=state,
        )
        session.add(attempt)
        session.flush()
        world.attempts[f"{team}{number}.{index}"] = attempt.id
        for step in (1, 2):
            value = trial.value if trial.value is not None else float("nan")
            number_value, special = (value, None) if value == value else (None, "nan")
            session.add(MetricRecord(trial_id=trial.id, attempt_id=attempt.id, step=step, name="objective",
                                     value=number_value, value_special=special, reported_at=started + step))


@dataclass
class Api:
    """A test client with helpers that send each seeded user's token."""

    client: TestClient
    world: World
    store: Store

    def call(self, method: str, path: str, user: str | None = None, **kwargs: Any):  # noqa: ANN201 - an httpx response
        headers = dict(kwargs.pop("headers", {}))
        if user is not None:
            headers["Authorization"] = f"Bearer {self.world.tokens[user]}"
        return self.client.request(method, path, headers=headers, **kwargs)


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, World]:
    path = tmp_path_factory.mktemp("api-template") / "store.db"
    store = Store.open(f"sqlite:///{path}")
    world = seed(store)
    store.dispose()
    return path, world


@pytest.fixture
def api(seeded_template: tuple[Path, World], tmp_path: Path, home: Path) -> Iterator[Api]:
    """The API over a fresh copy of the seeded store, without a controller, with NEURFLY_HOME in ``tmp_path``."""
    template, world = seeded_template
    path = tmp_path / "store.db"
    shutil.copyfile(template, path)
    store = Store(f"sqlite:///{path}")
    with TestClient(create_app(store, default_cluster())) as client:
        yield Api(client, world, store)
    store.dispose()


# -- real servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ServerProcess:
    """A ``neurfly server`` subprocess listening on 127.0.0.1."""

    process: subprocess.Popen[str]
    url: str
    log: Path

    def get(self, path: str, token: str, timeout: float = 10.0) -> Any:
        response = httpx.get(self.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(home: Path, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """Start ``neurfly server`` on a free port and wait until it responds to ``/healthz``."""
    return start_servers(home, 1, *args, env=env)[0]


def start_servers(home: Path, count: int, *args: str, env: dict[str, str] | None = None) -> list[ServerProcess]:
    """Start ``count`` servers on free ports at once and wait until each responds to ``/healthz``."""
    home.mkdir(parents=True, exist_ok=True)
    servers = []
    for _ in range(count):
        port = free_port()
        log = home.parent / f"server-{port}.log"
        process = subprocess.Popen(
            [*NEURFLY, "server", "--port", str(port), "--stop-grace", "2", *args],
            env=env or cli_env(home), stdout=log.open("w"), stderr=subprocess.STDOUT, text=True,
        )
        servers.append(ServerProcess(process, f"http://127.0.0.1:{port}", log))
    try:
        for server in servers:
            _wait_healthy(server)
    except AssertionError:
        for server in servers:
            server.stop()
        raise
    return servers


def _wait_healthy(server: ServerProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"server exited with {server.process.returncode}:\n{server.log.read_text()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"server did not answer within {timeout} s:\n{server.log.read_text()}")


def admin_token(home: Path, *args: str) -> str:
    """Issue a platform admin token with ``neurfly admin create-token`` on the store in ``home``."""
    result = run_cli(home, "admin", "create-token", "--user", "root", "--platform-admin", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["token"]
