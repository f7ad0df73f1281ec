"""``neurfly costs`` and ``neurfly budget`` as a user runs them, and a controller killed mid-search."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from neurfly.accounting import cost_report, report_to_dict
from neurfly.accounting.budgets import default_actor
from neurfly.accounting.money import parse_amount
from neurfly.cli import app
from neurfly.core.cluster import default_cluster
from neurfly.errors import NeurflyError
from neurfly.store import Attempt, Search, Store, Trial
from support import kill_hard, run_cli, start_cli, wait_for

HOUR = 3600.0


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seed(store: Store, team: str, name: str, attempts: list[tuple[str, float, float, int]]) -> int:
    """A finished search of ``team`` with one trial per (pool, start, end, devices)."""
    with store.session() as session:
        search = Search(name=name, team=team, state="completed", spec={}, strategy="random", objective_metric="objective",
                        direction="minimize", max_trials=len(attempts), priority="search", cancel_requested=False, created_at=0.0)
        session.add(search)
        session.flush()
        for number, (pool, start, end, devices) in enumerate(attempts):
            trial = Trial(search_id=search.id, number=number, params={"x": number}, config_key=str(number), state="completed",
                          created_at=start, queued_at=start)
            session.add(trial)
            session.flush()
            session.add(Attempt(trial_id=trial.id, search_id=search.id, number=1, state="completed", executor="local", pool=pool,
                                node="n", slots=list(range(devices)), devices=devices, started_at=start, ended_at=end,
                                start_step=0, progress_lost=0, data_versions={}))
        session.commit()
        return search.id


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


@pytest.fixture
def seeded(store: Store) -> tuple[float, float]:
    """Two teams' finished attempts in a two-hour window that ended an hour ago."""
    since = (time.time() // HOUR - 3) * HOUR
    _seed(store, "team-a", "alpha", [("eu-local", since, since + HOUR, 2), ("us-local", since + 600, since + 2400, 1)])
    _seed(store, "team-b", "beta", [("eu-local", since + HOUR, since + 2 * HOUR, 1)])
    return since, since + 2 * HOUR


def test_costs_json_by_team_search_pool(cli: CliRunner, store: Store, seeded: tuple[float, float]) -> None:
    since, until = seeded

    result = cli.invoke(app, ["costs", "--since", _iso(since), "--until", _iso(until), "--json"])

    assert result.exit_code == 0, result.output
    output = json.loads(result.output)
    teams = {t["team"]: t for t in output["teams"]}
    # team-a: 2 device-hours at 1.00 plus 0.5 device-hours at 0.80; team-b: 1 device-hour at 1.00.
    assert teams["team-a"]["usage"] == "2.400000"
    assert teams["team-b"]["usage"] == "1.000000"
    assert [s["search"] for s in output["searches"]] == ["alpha", "beta"]
    pools = {p["pool"]: p for p in output["pools"]}
    assert pools["eu-local"]["capacity"] == "4.000000"
    assert pools["eu-local"]["idle"] == "1.000000"
    assert pools["us-local"]["idle"] == "2.800000"
    assert output["total"] == "7.200000"


def test_costs_csv_sums_to_capacity(cli: CliRunner, store: Store, seeded: tuple[float, float]) -> None:
    since, until = seeded

    result = cli.invoke(app, ["costs", "--since", _iso(since), "--until", _iso(until), "--csv"])

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert sum(parse_amount(row["amount"]) for row in rows) == parse_amount("7.2")
    assert [(r["kind"], r["team"], r["pool"]) for r in rows] == [
        ("usage", "team-a", "eu-local"), ("usage", "team-a", "us-local"), ("usage", "team-b", "eu-local"),
        ("idle", "(platform)", "eu-local"), ("idle", "(platform)", "us-local"),
    ]


def test_costs_team_scope_hides_others(cli: CliRunner, store: Store, seeded: tuple[float, float]) -> None:
    since, until = seeded

    result = cli.invoke(app, ["costs", "--since", _iso(since), "--until", _iso(until), "--team", "team-b", "--json"])

    output = json.loads(result.output)
    assert [t["team"] for t in output["teams"]] == ["team-b"]
    assert output["pools"] == []
    assert output["total"] == "1.000000"


def test_costs_table_and_bad_options(cli: CliRunner, store: Store, seeded: tuple[float, float]) -> None:
    since, until = seeded

    table = cli.invoke(app, ["costs", "--since", _iso(since), "--until", _iso(until)], env={"COLUMNS": "200"})
    both = cli.invoke(app, ["costs", "--json", "--csv"])
    bad_time = cli.invoke(app, ["costs", "--since", "yesterday"])
    reversed_window = cli.invoke(app, ["costs", "--since", _iso(until), "--until", _iso(since)])

    assert table.exit_code == 0, table.output
    assert "Cost by team" in table.output
    assert "alpha (" in table.output
    assert "total: 7.20" in table.output
    assert isinstance(both.exception, NeurflyError)
    assert "pass only one" in str(both.exception)
    assert "is not ISO 8601" in str(bad_time.exception)
    assert "pass --until after --since" in str(reversed_window.exception)


def test_budget_commands_round_trip(cli: CliRunner, store: Store, seeded: tuple[float, float]) -> None:
    created = cli.invoke(app, ["budget", "set", "team-a", "--amount", "100", "--actor", "alice", "--reason", "q4", "--json"])
    raised = cli.invoke(app, ["budget", "set", "team-a", "--amount", "150", "--hard", "--thresholds", "75,100", "--actor", "bob"])
    search = cli.invoke(app, ["budget", "set", "team-a", "--amount", "5", "--search", "team-a/alpha",
                              "--start", "2026-01-01", "--end", "2026-02-01", "--soft", "--hard-at", "120", "--json"])
    listed = cli.invoke(app, ["budget", "list", "--json"])
    removed = cli.invoke(app, ["budget", "remove", "team-a", "--search", "alpha", "--actor", "carol"])
    history = cli.invoke(app, ["budget", "history", "--team", "team-a", "--json"])

    assert created.exit_code == 0, created.output
    assert json.loads(created.output)["soft_limit_percent"] == 100.0
    assert raised.exit_code == 0, raised.output
    assert "hard limit at 100%" in raised.output
    budget = json.loads(search.output)
    assert budget["period"] == "custom"
    assert budget["period_start"] == "2026-01-01T00:00:00Z"
    assert (budget["soft_limit_percent"], budget["hard_limit_percent"]) == (100.0, 120.0)
    statuses = json.loads(listed.output)
    assert [(s["scope"], s["amount"], s["thresholds"]) for s in statuses][0] == ("team:team-a", "150.000000", [75.0, 100.0])
    assert statuses[0]["level"] == "ok"
    assert statuses[1]["active"] is False
    assert removed.exit_code == 0, removed.output
    assert [(c["action"], c["actor"]) for c in json.loads(history.output)] == [
        ("created", "alice"), ("updated", "bob"), ("created", default_actor()), ("removed", "carol"),
    ]


def test_budget_set_bad_options(cli: CliRunner, store: Store, seeded: tuple[float, float]) -> None:
    cases = [
        (["--amount", "10", "--hard", "--hard-at", "120"], "drop --hard-at"),
        (["--amount", "10", "--period", "month", "--start", "2026-01-01"], "pass --period custom"),
        (["--amount", "ten"], "not a number"),
        (["--amount", "10", "--thresholds", "50,lots"], "write it like 50,80,100"),
        (["--amount", "10", "--search", "no-such-search"], "not found"),
        (["--amount", "10", "--search", "beta"], "belongs to team 'team-b'"),
    ]
    for options, message in cases:
        result = cli.invoke(app, ["budget", "set", "team-a", *options])
        assert isinstance(result.exception, NeurflyError), (options, result.output)
        assert message in str(result.exception), options


@pytest.mark.slow
def test_killed_controller_bills_lifetimes_once(
    home: Path, store: Store, write_spec, acct, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEURFLY_ACCOUNTING_INTERVAL_S", "0.2")
    spec = write_spec(budget={"max_trials": 2, "max_concurrent_trials": 2, "max_steps": 5}, fixed={"sleep_s": 0.4})
    since = time.time() - 60
    # 0.001 is 3.6 device-seconds: the 50 percent alert fires about a second into the run.
    acct.hour_budget(store, "team-a", "0.001")

    process = start_cli(home, "run", str(spec), "--json")
    wait_for(lambda: any(a.key.endswith(":actual:50") for a in acct.budget_alerts(store)) and any(
        r.last_report_at is not None and r.ended_at is None for r in acct.attempts_of(store)), timeout=120)
    kill_hard(process)
    killed_at = time.time()
    first_rows = acct.attempts_of(store)
    open_ids = {r.id for r in first_rows if r.ended_at is None}
    # No controller runs now, so open attempts are billed to their last report, as a restart records them.
    billed_while_down = cost_report(store, since, killed_at, killed_at, cluster=default_cluster()).teams[0].device_seconds
    expected_while_down = sum(
        (r.devices * (Decimal(repr(r.ended_at or r.last_report_at or r.started_at)) - Decimal(repr(r.started_at))) for r in first_rows),
        Decimal(0),
    )

    result = run_cli(home, "run", str(spec), "--json")
    until = time.time()

    assert result.returncode == 0, result.stderr
    assert open_ids
    rows = acct.attempts_of(store)
    lost = [r for r in rows if r.id in open_ids]
    assert all(r.state == "lost" and r.ended_at == (r.last_report_at or r.started_at) for r in lost)
    assert any(r.number > 1 for r in rows), "the lost trials ran again"
    report = cost_report(store, since, until, until, cluster=default_cluster())
    assert report.teams[0].device_seconds == acct.lifetime_device_seconds(rows)
    assert billed_while_down == acct.lifetime_device_seconds([r for r in rows if r.id in {f.id for f in first_rows}])
    assert billed_while_down == expected_while_down

    alerts = acct.budget_alerts(store)
    assert len({a.key for a in alerts}) == len(alerts)
    assert all(a.count == 1 for a in alerts), {a.key: a.count for a in alerts}
    assert [a.first_at < killed_at for a in alerts if a.key.endswith(":actual:50")] == [True]

    shown = cli.invoke(app, ["costs", "--json", "--since", datetime.fromtimestamp(since, UTC).isoformat(),
                             "--until", datetime.fromtimestamp(until, UTC).isoformat()])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["teams"] == report_to_dict(report)["teams"]
    with store.session() as session:
        assert session.scalar(select(Search.state)) == "completed"
