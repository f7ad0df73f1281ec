"""``neurfly alerts``, ``neurfly failures``, ``neurfly responsibilities`` and ``neurfly metrics-server``."""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from neurfly.cli import DbOption, JsonOption, ServerOption, _print_json, _store, app, console, remote
from neurfly.cli.client import connect
from neurfly.errors import NeurflyError
from neurfly.monitoring.alerts import Alert, AlertState, acknowledge_alert, resolve_alert
from neurfly.monitoring.records import Delivery

alerts_app = typer.Typer(help="List, acknowledge and resolve alerts.", no_args_is_help=False)
app.add_typer(alerts_app, name="alerts")

ByOption = Annotated[str | None, typer.Option("--by", help="Who acts; default: the login name. With --server, the server records the token's user.")]


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _alert_dict(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id, "key": alert.key, "category": alert.category, "severity": alert.severity, "state": alert.state,
        "owner": alert.owner, "team": alert.team, "search_id": alert.search_id, "trial_id": alert.trial_id,
        "attempt_id": alert.attempt_id, "message": alert.message, "evidence": alert.evidence, "count": alert.count,
        "first_at": alert.first_at, "last_at": alert.last_at, "acknowledged_at": alert.acknowledged_at,
        "acknowledged_by": alert.acknowledged_by, "resolved_at": alert.resolved_at, "resolved_by": alert.resolved_by,
        "escalation_level": alert.escalation_level, "escalated_to": alert.escalated_to,
        "notification_rounds": alert.notify_round,
    }


@alerts_app.callback(invoke_without_command=True)
def list_alerts(
    context: typer.Context,
    db: DbOption = None,
    json_output: JsonOption = False,
    show_all: Annotated[bool, typer.Option("--all", help="Include resolved alerts.")] = False,
    team: Annotated[str | None, typer.Option("--team", help="Only alerts of this team.")] = None,
    category: Annotated[str | None, typer.Option("--category", help="Only this category (divergence, plateau, stall, resource, budget, failure).")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Only alerts this party owns.")] = None,
    server: ServerOption = None,
) -> None:
    """List firing and acknowledged alerts, newest first.

    With --server, the list contains at most the newest 1000 alerts, and the JSON
    rows have no key, attempt_id, acknowledged_*, resolved_*, escalation or
    notification_rounds fields.
    """
    if context.invoked_subcommand is not None:
        return
    rows = remote.alerts(connect(server), team, category, owner, show_all) if server else _local_alerts(db, show_all, team, category, owner)
    if json_output:
        _print_json(rows)
        return
    _print_alerts(rows)


def _local_alerts(db: str | None, show_all: bool, team: str | None, category: str | None, owner: str | None) -> list[dict[str, Any]]:
    query = select(Alert).order_by(Alert.last_at.desc(), Alert.id.desc())
    if not show_all:
        query = query.where(Alert.state != AlertState.RESOLVED.value)
    for column, value in ((Alert.team, team), (Alert.category, category), (Alert.owner, owner)):
        if value is not None:
            query = query.where(column == value)
    with _store(db).session() as session:
        return [_alert_dict(alert) for alert in session.scalars(query)]


def _print_alerts(rows: list[dict[str, Any]]) -> None:
    table = Table(title=f"Alerts ({len(rows)})")
    for column in ("id", "state", "severity", "category", "owner", "team", "search", "trial", "count", "last seen", "message"):
        table.add_column(column)
    for row in rows:
        state = row["state"] + (" (escalated)" if row.get("escalation_level") else "")
        table.add_row(str(row["id"]), state, row["severity"], row["category"], row["owner"], row["team"] or "-",
                      _text(row["search_id"]), _text(row["trial_id"]), str(row["count"]), _ago(row["last_at"]), row["message"])
    console.print(table)


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def _ago(at: float) -> str:
    seconds = max(0.0, time.time() - at)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


@alerts_app.command("ack")
def ack(
    alert_id: Annotated[int, typer.Argument(help="Alert id, as 'neurfly alerts' lists it.")],
    by: ByOption = None,
    db: DbOption = None,
    server: ServerOption = None,
) -> None:
    """Acknowledge an alert: it is no longer repeated or escalated."""
    _change_alert(alert_id, by, db, server, acknowledge_alert, "acknowledge")


@alerts_app.command("resolve")
def resolve(
    alert_id: Annotated[int, typer.Argument(help="Alert id, as 'neurfly alerts' lists it.")],
    by: ByOption = None,
    db: DbOption = None,
    server: ServerOption = None,
) -> None:
    """Resolve an alert; the same finding firing again opens it anew."""
    _change_alert(alert_id, by, db, server, resolve_alert, "resolve")


def _change_alert(alert_id: int, by: str | None, db: str | None, server: str | None, change: Callable[..., Alert], action: str) -> None:
    """Apply ``change`` to the alert in the store, or send ``action`` to the server, and print the new state.

    The API does not return an alert's key, so against a server the line names its category.
    """
    if server:
        if by is not None:
            raise NeurflyError("with --server, the server records the token's user; drop --by")
        alert = remote.change_alert(connect(server), alert_id, action)
        console.print(f"alert {alert['id']} ({alert['category']}) is {alert['state']}")
        return
    with _store(db).session() as session:
        changed = change(session, alert_id, _who(by), time.time())
        session.commit()
        console.print(f"alert {changed.id} ({changed.key}) is {changed.state}")


@alerts_app.command("deliveries")
def deliveries(
    alert_id: Annotated[int | None, typer.Argument(help="Only the deliveries of this alert.")] = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """List notification deliveries: party, route, state, tries and the last error."""
    query = select(Delivery).order_by(Delivery.id)
    if alert_id is not None:
        query = query.where(Delivery.alert_id == alert_id)
    with _store(db).session() as session:
        rows = [{"id": d.id, "alert_id": d.alert_id, "reason": d.reason, "round": d.round, "party": d.party, "role": d.role,
                 "route": d.route, "notifier": d.notifier, "state": d.state, "tries": d.tries, "last_error": d.last_error,
                 "created_at": d.created_at, "sent_at": d.sent_at} for d in session.scalars(query)]
    if json_output:
        _print_json(rows)
        return
    table = Table(title=f"Deliveries ({len(rows)})")
    for column in ("id", "alert", "reason", "round", "party", "role", "route", "state", "tries", "last error"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["id"]), str(row["alert_id"]), row["reason"], str(row["round"]), row["party"], row["role"],
                      row["route"], row["state"], str(row["tries"]), row["last_error"] or "")
    console.print(table)


@app.command()
def failures(
    search: Annotated[str | None, typer.Argument(help="Search id, name or team/name; default: every search.")] = None,
    db: DbOption = None,
    json_output: JsonOption = False,
    server: ServerOption = None,
) -> None:
    """List failed attempts with their class (user code, configuration, data, infrastructure) and owner.

    With --server, the list contains the failures of the token's teams, at most the newest 1000.
    """
    if server:
        rows = remote.failures(connect(server), search)
    else:
        rows = _local_failures(db, search)
    if json_output:
        _print_json(rows)
        return
    table = Table(title=f"Failed attempts ({len(rows)})")
    for column in ("attempt", "search", "team", "category", "cause", "owner", "reason"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["attempt_id"]), str(row["search_id"]), row["team"], row["category"], row["cause"], row["owner"],
                      str(row["evidence"].get("reason") or ""))
    console.print(table)


def _local_failures(db: str | None, search: str | None) -> list[dict[str, Any]]:
    from neurfly.monitoring.queries import list_failures
    from neurfly.service import find_search

    store = _store(db)
    search_id = find_search(store, search).id if search is not None else None
    with store.session() as session:
        return [{"attempt_id": f.attempt_id, "search_id": f.search_id, "team": f.team, "category": f.category,
                 "cause": f.cause, "owner": f.owner, "evidence": f.evidence, "classified_at": f.classified_at}
                for f, _ in list_failures(session, search_id=search_id)]


@app.command()
def responsibilities(
    file: Annotated[Path | None, typer.Argument(help="Responsibility file; default: $NEURFLY_RESPONSIBILITIES or $NEURFLY_HOME/responsibilities.yaml.")] = None,
    team: Annotated[str, typer.Option("--team", help="Team whose RACI to show ($team in the file).")] = "$team",
    json_output: JsonOption = False,
) -> None:
    """Check a responsibility file and show who is responsible, accountable, consulted and informed per category."""
    from neurfly.monitoring.responsibilities import RaciCategory, find_responsibility_file, load_responsibilities

    path = find_responsibility_file(file)
    loaded = load_responsibilities(path)
    rows = []
    for category in RaciCategory:
        raci = loaded.raci(category, team)
        rows.append({"category": category.value, "responsible": raci.responsible, "accountable": raci.accountable,
                     "consulted": list(raci.consulted), "informed": list(raci.informed)})
    if json_output:
        _print_json({"file": str(path) if path else None, "raci": rows, "alerting": loaded.alerting.model_dump(mode="json")})
        return
    table = Table(title=f"Responsibilities ({path or 'built-in defaults'})")
    for column in ("category", "responsible", "accountable", "consulted", "informed"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["category"], row["responsible"], row["accountable"], ", ".join(row["consulted"]) or "-",
                      ", ".join(row["informed"]) or "-")
    console.print(table)


@app.command("metrics-server")
def metrics_server(
    port: Annotated[int, typer.Option("--port", help="TCP port to serve /metrics on.")] = 9464,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    db: DbOption = None,
    cluster_file: Annotated[Path | None, typer.Option("--cluster", help="Cluster YAML file, for pool regions; default: the embedded local cluster.")] = None,
) -> None:
    """Serve Prometheus metrics of the store until interrupted."""
    from neurfly.monitoring.metrics import serve_metrics
    from neurfly.service import load_cluster

    try:
        serve_metrics(_store(db), port, host, cluster=load_cluster(cluster_file))
    except OSError as exc:
        raise NeurflyError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port") from None
    console.print(f"serving Prometheus metrics on http://{host}:{port}/metrics; press Ctrl-C to stop")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
