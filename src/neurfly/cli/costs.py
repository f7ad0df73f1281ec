"""``neurfly costs`` and ``neurfly budget``: cost reports, chargeback exports and budgets."""

from __future__ import annotations

import csv
import sys
import time
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.table import Table

from neurfly.accounting import (
    PeriodKind,
    budget_history,
    budget_status,
    cost_report,
    remove_budget,
    report_csv_rows,
    report_to_dict,
    set_budget,
    to_timestamp,
)
from neurfly.accounting.budgets import KEEP, default_actor
from neurfly.accounting.export import CSV_COLUMNS
from neurfly.accounting.money import format_money, parse_amount
from neurfly.accounting.report import PLATFORM
from neurfly.cli import ClusterOption, DbOption, JsonOption, ServerOption, _print_json, _store, app, console, remote
from neurfly.cli.client import connect
from neurfly.errors import NeurflyError

budget_app = typer.Typer(help="Set, list and audit cost budgets of teams and searches.", no_args_is_help=True)
app.add_typer(budget_app, name="budget")

TeamOption = Annotated[str | None, typer.Option("--team", help="Only this team.")]
ActorOption = Annotated[str | None, typer.Option("--actor", help="Who makes the change, for the audit log; default: the OS user. With --server, the server records the token's user.")]
ReasonOption = Annotated[str | None, typer.Option("--reason", help="Why, for the audit log.")]
SearchOption = Annotated[str | None, typer.Option("--search", help="A search id, name or team/name: budget only this search of the team.")]


def _time(value: str | None, option: str) -> float | None:
    if value is None:
        return None
    try:
        return to_timestamp(value)
    except ValueError as exc:
        raise NeurflyError(f"{option}: {exc}") from None


def _money(amount: str) -> str:
    """Format decimal text of the report (six decimals) as ``format_money`` does."""
    return format_money(parse_amount(amount))


def _hours(text: str) -> str:
    hours = Decimal(text)
    if 0 < hours < Decimal("0.01"):
        return "<0.01"
    return f"{hours:,.2f}"


# -- neurfly costs ------------------------------------------------------------------------------


@app.command()
def costs(
    since: Annotated[str | None, typer.Option(help="Start of the period, ISO 8601 (UTC unless a zone is given); default: start of this calendar month.")] = None,
    until: Annotated[str | None, typer.Option(help="End of the period (exclusive), ISO 8601; default: start of next month.")] = None,
    team: TeamOption = None,
    db: DbOption = None,
    cluster_file: ClusterOption = None,
    json_output: JsonOption = False,
    csv_output: Annotated[bool, typer.Option("--csv", help="Print chargeback line items as CSV.")] = False,
    server: ServerOption = None,
) -> None:
    """Show cost by team, search and pool for a period, running work included.

    With --server, the server's cluster file sets the prices, and --team may
    be left out only by platform admins and users of a single team.
    """
    if json_output and csv_output:
        raise NeurflyError("--json and --csv both set the output format; pass only one of them")
    start, end = _time(since, "--since"), _time(until, "--until")
    if server:
        _no_cluster_file(cluster_file)
        client = connect(server)
        if csv_output:
            sys.stdout.write(remote.cost_csv(client, team, start, end))
            return
        described = remote.cost_report(client, team, start, end)
    else:
        report = _local_report(db, cluster_file, team, start, end)
        if csv_output:
            writer = csv.DictWriter(sys.stdout, fieldnames=CSV_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(report_csv_rows(report))
            return
        described = report_to_dict(report)

    if json_output:
        _print_json(described)
    else:
        _print_report(described, team)


def _local_report(db: str | None, cluster_file: Any, team: str | None, since: float | None, until: float | None) -> Any:
    from neurfly.service import load_cluster

    cluster = load_cluster(cluster_file)
    try:
        return cost_report(_store(db), since, until, time.time(), cluster=cluster, team=team)
    except ValueError as exc:
        raise NeurflyError(str(exc)) from None


def _no_cluster_file(cluster_file: Any) -> None:
    if cluster_file is not None:
        raise NeurflyError("--cluster sets the prices of the local store's report; with --server, the server's cluster file sets them, so drop --cluster")


def _print_report(report: dict[str, Any], team: str | None) -> None:
    """Print a report as ``report_to_dict`` describes it."""
    console.print(
        f"Costs from {report['since']} to {report['until']}, metered up to {report['end']}; "
        f"idle cost policy: {report['idle_cost_policy']}"
    )
    _print_teams(report)
    _print_searches(report)
    if team is None:
        _print_pools(report)
    _print_waste(report)
    for warning in report["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    console.print(f"total: {_money(report['total'])}" + (f" (idle, paid by the platform: {_money(report['platform_idle'])})" if team is None else ""))


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column in ("team", "search", "pool", "reason", "caused by", "hardware") else "right")
    return table


def _print_teams(report: dict[str, Any]) -> None:
    table = _table("Cost by team", "team", "device-hours", "usage", "running", "idle share", "total", "waste")
    for line in report["teams"]:
        table.add_row(line["team"], _hours(line["device_hours"]), _money(line["usage"]), _money(line["running"]),
                      _money(line["idle_share"]), _money(line["total"]), _money(line["waste"]))
    if parse_amount(report["platform_idle"]):
        table.add_row(PLATFORM, "-", "-", "-", _money(report["platform_idle"]), _money(report["platform_idle"]), "-")
    console.print(table)


def _print_searches(report: dict[str, Any]) -> None:
    table = _table("Cost by search", "team", "search", "device-hours", "cost", "running", "waste", "attempts")
    for row in report["searches"]:
        table.add_row(row["team"], f"{row['search']} ({row['search_id']})", _hours(row["device_hours"]), _money(row["cost"]),
                      _money(row["running"]), _money(row["waste"]), str(row["attempts"]))
    console.print(table)


def _print_pools(report: dict[str, Any]) -> None:
    table = _table("Cost by pool", "pool", "hardware", "devices", "price/device-hour", "used hours", "idle hours", "used", "idle", "capacity")
    for line in report["pools"]:
        table.add_row(line["pool"], line["hardware"], str(line["devices"]), line["price_per_device_hour"], _hours(line["used_device_hours"]),
                      _hours(line["idle_device_hours"]), _money(line["used"]), _money(line["idle"]), _money(line["capacity"]))
    console.print(table)


def _print_waste(report: dict[str, Any]) -> None:
    if not report["waste"]:
        return
    table = _table("Wasted progress (part of the cost above)", "team", "reason", "caused by", "device-hours", "cost", "attempts")
    for line in report["waste"]:
        table.add_row(line["team"], line["reason"], f"{line['cause_team']} ({line['cause_priority']})", _hours(line["device_hours"]),
                      _money(line["cost"]), str(line["attempts"]))
    console.print(table)


# -- neurfly budget -----------------------------------------------------------------------------


def _search_id(store: Any, search: str | None) -> int | None:
    from neurfly.service import find_search

    return None if search is None else find_search(store, search).id


def _thresholds(text: str | None) -> Any:
    if text is None:
        return KEEP
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise NeurflyError(f"--thresholds {text!r} is not a list of percents; write it like 50,80,100") from None


def _limits(soft: bool | None, hard_at: float | None) -> tuple[Any, Any]:
    """Return (soft_limit_percent, hard_limit_percent) from ``--soft/--hard`` and ``--hard-at``."""
    if soft is False and hard_at is not None:
        raise NeurflyError("--hard-at adds a hard limit to a soft one; with --hard the hard limit is at 100 percent, so drop --hard-at")
    if soft is True:
        return 100.0, hard_at
    if soft is False:
        return None, 100.0
    return KEEP, KEEP if hard_at is None else hard_at


def _period(period: PeriodKind | None, start: float | None, end: float | None) -> Any:
    if period is PeriodKind.MONTH and (start is not None or end is not None):
        raise NeurflyError("--start and --end set a custom period; drop them, or pass --period custom")
    if period is None and (start is not None or end is not None):
        return PeriodKind.CUSTOM
    return KEEP if period is None else period


@budget_app.command("set")
def budget_set(
    team: Annotated[str, typer.Argument(help="Team name.")],
    amount: Annotated[str, typer.Option("--amount", help="Budget per period, in the currency of the cluster's prices, e.g. 1250.50.")],
    search: SearchOption = None,
    period: Annotated[PeriodKind | None, typer.Option("--period", help="month: each calendar month (UTC); custom: from --start to --end. New budgets default to month.")] = None,
    start: Annotated[str | None, typer.Option("--start", help="Start of a custom period, ISO 8601.")] = None,
    end: Annotated[str | None, typer.Option("--end", help="End of a custom period (exclusive), ISO 8601.")] = None,
    soft: Annotated[bool | None, typer.Option("--soft/--hard", help="At 100 percent: soft lowers new trials to the lowest priority class and rejects new searches; hard also stops running trials at their next checkpoint. New budgets default to soft.")] = None,
    hard_at: Annotated[float | None, typer.Option("--hard-at", help="With --soft: also a hard limit at this percent of the amount, e.g. 120.")] = None,
    thresholds: Annotated[str | None, typer.Option("--thresholds", help="Alert thresholds in percent, comma-separated; new budgets default to 50,80,100.")] = None,
    actor: ActorOption = None,
    reason: ReasonOption = None,
    db: DbOption = None,
    json_output: JsonOption = False,
    server: ServerOption = None,
) -> None:
    """Create or change a budget; options left out keep their current values.

    With --server, this needs a platform admin's token.
    """
    soft_limit, hard_limit = _limits(soft, hard_at)
    start_at, end_at = _time(start, "--start"), _time(end, "--end")
    changes = {
        "period": _period(period, start_at, end_at),
        "period_start": KEEP if start_at is None else start_at,
        "period_end": KEEP if end_at is None else end_at,
        "thresholds": _thresholds(thresholds),
        "soft_limit_percent": soft_limit,
        "hard_limit_percent": hard_limit,
    }
    if server:
        budget = _remote_set(server, team, amount, search, changes, actor, reason)
    else:
        store = _store(db)
        budget = set_budget(store, team, amount, search_id=_search_id(store, search), actor=actor or default_actor(), reason=reason, **changes)
    if json_output:
        _print_json(budget)
        return
    console.print(f"budget {budget['id']} ({budget['scope']}): {budget['amount']} per {budget['period']}, "
                  f"{_limit_text(budget)}, alerts at {', '.join(f'{t:g}%' for t in budget['thresholds'])}")


def _remote_set(server: str, team: str, amount: str, search: str | None, changes: dict[str, Any], actor: str | None, reason: str | None) -> dict[str, Any]:
    # The API reads a missing or null field as "keep the stored value", so it cannot remove a limit.
    if changes["soft_limit_percent"] is None:
        raise NeurflyError("with --server, --hard cannot remove the soft limit; pass --soft --hard-at 100 for a hard limit at 100 percent")
    _no_actor(actor)
    client = connect(server)
    body = {key: (value.value if isinstance(value, PeriodKind) else value) for key, value in changes.items() if value is not KEEP}
    body.update(amount=amount, search_id=remote.search_id(client, search), reason=reason)
    return remote.put_budget(client, team, body)


def _no_actor(actor: str | None) -> None:
    if actor is not None:
        raise NeurflyError("with --server, the server records the token's user as the actor; drop --actor")


def _limit_text(budget: dict[str, Any]) -> str:
    parts = []
    if budget["soft_limit_percent"] is not None:
        parts.append(f"soft limit at {budget['soft_limit_percent']:g}%")
    if budget["hard_limit_percent"] is not None:
        parts.append(f"hard limit at {budget['hard_limit_percent']:g}%")
    return " and ".join(parts) or "no limit"


@budget_app.command("list")
def budget_list(
    team: TeamOption = None,
    db: DbOption = None,
    cluster_file: ClusterOption = None,
    json_output: JsonOption = False,
    server: ServerOption = None,
) -> None:
    """List budgets with their spend, forecast and limit level in the current period."""
    from neurfly.service import load_cluster

    if server:
        _no_cluster_file(cluster_file)
        rows = remote.budget_statuses(connect(server), team)
    else:
        rows = [status.to_dict() for status in budget_status(_store(db), load_cluster(cluster_file), time.time(), team=team)]
    if json_output:
        _print_json(rows)
        return
    table = _table("Budgets", "id", "team", "search", "period", "amount", "spent", "forecast", "limits", "level")
    for row in rows:
        active = row["active"]
        table.add_row(
            str(row["id"]), row["team"], str(row["search_id"] or "-"),
            f"{row['current_period']['start'][:10]}..{row['current_period']['end'][:10]}" if active else "inactive",
            _money(row["amount"]) if active else row["amount"],
            f"{_money(row['spent'])} ({row['percent_spent']:.0f}%)" if active else "-",
            f"{_money(row['forecast'])} ({row['percent_forecast']:.0f}%)" if active else "-",
            _limit_text(row), row["level"] if active else "-",
        )
    console.print(table)


@budget_app.command("history")
def budget_history_command(team: TeamOption = None, db: DbOption = None, json_output: JsonOption = False, server: ServerOption = None) -> None:
    """Show the audit log of budget changes: who changed what, and when.

    With --server, --team is required and only the team's own budget is
    shown, not the budgets of its searches.
    """
    changes = remote.budget_changes(connect(server), team) if server else budget_history(_store(db), team=team)
    if json_output:
        _print_json(changes)
        return
    table = _table("Budget changes", "at", "actor", "action", "scope", "amount", "reason")
    for change in changes:
        before = (change["before"] or {}).get("amount")
        after = (change["after"] or {}).get("amount")
        amount = f"{before} -> {after}" if before and after else (after or before or "-")
        table.add_row(change["at"], change["actor"], change["action"], change["scope"], amount, change["reason"] or "")
    console.print(table)


@budget_app.command("remove")
def budget_remove(
    team: Annotated[str, typer.Argument(help="Team name.")],
    search: SearchOption = None,
    actor: ActorOption = None,
    reason: ReasonOption = None,
    db: DbOption = None,
    server: ServerOption = None,
) -> None:
    """Remove a budget; the removal is audited.

    With --server, this needs a platform admin's token, and --reason is not recorded.
    """
    if server:
        _no_actor(actor)
        client = connect(server)
        removed = remote.delete_budget(client, team, remote.search_id(client, search))
    else:
        store = _store(db)
        removed = remove_budget(store, team, search_id=_search_id(store, search), actor=actor or default_actor(), reason=reason)
    console.print(f"budget {removed['id']} ({removed['scope']}) removed")
