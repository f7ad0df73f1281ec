"""The ``neurfly`` command line."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import optuna
import typer
from rich.console import Console
from rich.table import Table

from neurfly.core.states import SearchState
from neurfly.errors import NeurflyError, NotFoundError, SpecError
from neurfly.store import Store

app = typer.Typer(help="NeurFly: AutoML searches on shared compute.", no_args_is_help=True, add_completion=False)
console = Console()
errors = Console(stderr=True)

DbOption = Annotated[str | None, typer.Option("--db", envvar="NEURFLY_DATABASE_URL", help="Database URL; default: SQLite in $NEURFLY_HOME (./.neurfly).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
ClusterOption = Annotated[Path | None, typer.Option("--cluster", help="Cluster YAML file; default: the embedded local cluster.")]
ServerOption = Annotated[str | None, typer.Option("--server", envvar="NEURFLY_SERVER", help="URL of a NeurFly server to use instead of the store; the token comes from NEURFLY_TOKEN or ~/.config/neurfly/config.yaml.")]
ExecutorOption = Annotated[str | None, typer.Option("--executor", help="Executor that runs the trials (local, ray); default: the cluster file's executor.")]
RayAddressOption = Annotated[str | None, typer.Option("--ray-address", help="Ray cluster address (host:port of the head, ray://host:10001, or auto) for --executor ray.")]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def main() -> None:
    """Entry point of the ``neurfly`` script: turns NeurFly errors into messages and exit status 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        app()
    except SpecError as exc:
        errors.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        sys.exit(2)
    except NeurflyError as exc:
        errors.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        sys.exit(2)


def _store(db: str | None) -> Store:
    return Store.open(db)


def _print_json(value: Any) -> None:
    # Non-finite floats become strings ("nan"), because JSON has no NaN.
    print(json.dumps(_clean(value), default=_json_default, allow_nan=False, indent=2))


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    return str(value)


def _format_value(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.5g}"


@app.command()
def run(
    spec_file: Annotated[Path, typer.Argument(help="Search spec (YAML).")],
    db: DbOption = None,
    cluster_file: ClusterOption = None,
    json_output: JsonOption = False,
    checkpoints: Annotated[str | None, typer.Option(help="Checkpoint folder or fsspec URL; default: $NEURFLY_HOME/checkpoints.")] = None,
    new: Annotated[bool, typer.Option("--new", help="Start another search even if one of this team and name exists.")] = False,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    server: ServerOption = None,
    responsibilities: Annotated[Path | None, typer.Option("--responsibilities", envvar="NEURFLY_RESPONSIBILITIES", help="Responsibility file: owners, notifiers and escalation of alerts; default: $NEURFLY_HOME/responsibilities.yaml.")] = None,
    metrics_port: Annotated[int | None, typer.Option("--metrics-port", help="Serve Prometheus metrics on this TCP port (127.0.0.1) while the controller runs.")] = None,
) -> None:
    """Run a search to completion, resuming it if it is already in the store."""
    from neurfly.monitoring.service import configure

    configure(responsibilities=responsibilities, metrics_port=metrics_port)
    if server:
        from neurfly.cli.client import remote_run

        if executor is not None or ray_address is not None:
            raise NeurflyError("--executor and --ray-address choose where this command runs trials; with --server, the server's cluster file decides")
        remote_run(server, spec_file, new, json_output, console, errors)
        return
    from neurfly.cli.runner import drive, with_executor
    from neurfly.service import find_search, load_cluster, load_spec, submit_search

    cluster = with_executor(load_cluster(cluster_file), executor, ray_address)
    spec, document, warnings = load_spec(spec_file, cluster)
    for warning in warnings:
        errors.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)

    store = _store(db)
    submission = submit_search(store, spec, document, new=new, cluster=cluster)
    if submission.finished and not json_output:
        console.print(f"search {submission.search_id} ({spec.team}/{spec.name}) has already ended; pass --new to run it again")
    elif not json_output:
        verb = "resuming" if submission.resumed else "started"
        console.print(f"{verb} search {submission.search_id} ({spec.team}/{spec.name}): {spec.strategy.name}, {spec.budget.max_trials} trials")

    # With --json, stdout carries only the JSON document; what libraries print meanwhile (Ray's node errors) goes to stderr.
    quiet_stdout = contextlib.redirect_stdout(sys.stderr) if json_output else contextlib.nullcontext()
    try:
        with quiet_stdout:
            drive(store, cluster, [submission.search_id], console, live_display=not json_output, checkpoint_root=checkpoints)
    except KeyboardInterrupt:
        errors.print("interrupted; running trials were checkpointed. Run the same command to resume.")
        raise typer.Exit(130) from None

    search = find_search(store, submission.search_id)
    _report(store, search, json_output)
    if search.state == SearchState.FAILED.value:
        raise typer.Exit(1)


def _report(store: Store, search: Any, json_output: bool) -> None:
    from neurfly.service import leaderboard, search_summary

    board = leaderboard(store, search)
    if json_output:
        _print_json({"search": search_summary(store, search), "leaderboard": board})
        return
    console.print(f"search {search.id} {search.state}: {search.message}")
    _print_leaderboard(search, board[:10])


def _print_leaderboard(search: Any, board: list[dict[str, Any]]) -> None:
    table = Table(title=f"Leaderboard: {search.team}/{search.name} ({search.objective_metric}, {search.direction})")
    table.add_column("rank", justify="right")
    table.add_column("trial", justify="right")
    table.add_column(search.objective_metric, justify="right")
    table.add_column("steps", justify="right")
    table.add_column("state")
    table.add_column("params")
    for rank, row in enumerate(board, start=1):
        params = ", ".join(f"{k}={_short(v)}" for k, v in row["params"].items())
        table.add_row(str(rank), str(row["number"]), _format_value(row["value"]), str(row["step"]), row["state"], params)
    console.print(table)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@app.command()
def status(db: DbOption = None, json_output: JsonOption = False, server: ServerOption = None) -> None:
    """List every search with its state, trial counts and best value."""
    if server:
        from neurfly.cli.client import connect

        rows = connect(server).list_searches()
    else:
        from neurfly.service import list_searches

        rows = list_searches(_store(db))
    if json_output:
        _print_json(rows)
        return
    table = Table(title="Searches")
    for column in ("id", "team/name", "state", "strategy", "trials", "best"):
        table.add_column(column)
    for row in rows:
        counts = ", ".join(f"{n} {s}" for s, n in row["trials"].items()) or "-"
        best = row["best"]
        best_text = f"{_format_value(best['value'])} (#{best['number']})" if best else "-"
        table.add_row(str(row["id"]), f"{row['team']}/{row['name']}", row["state"], row["strategy"], counts, best_text)
    console.print(table)


@app.command()
def trials(
    search: Annotated[str, typer.Argument(help="Search id, name or team/name.")],
    db: DbOption = None,
    json_output: JsonOption = False,
    server: ServerOption = None,
) -> None:
    """List the trials of a search."""
    if server:
        from neurfly.cli.client import connect

        remote = connect(server)
        row = remote.find_search(search)
        rows = remote.trial_rows(row)
    else:
        from neurfly.service import find_search, trial_rows

        store = _store(db)
        row = find_search(store, search)
        rows = trial_rows(store, row)
    if json_output:
        _print_json(rows)
        return
    table = Table(title=f"Trials of {row.team}/{row.name} (search {row.id})")
    for column in ("trial", "state", row.objective_metric, "steps", "attempts", "params"):
        table.add_column(column)
    for trial in rows:
        params = ", ".join(f"{k}={_short(v)}" for k, v in trial["params"].items())
        table.add_row(str(trial["number"]), trial["state"], _format_value(trial["value"]), str(trial["step"]), str(trial["attempts"]), params)
    console.print(table)


@app.command()
def show(
    trial: Annotated[str, typer.Argument(help="Trial as SEARCH#NUMBER (e.g. 3#7 or digits-tpe#7) or its numeric id.")],
    db: DbOption = None,
    json_output: JsonOption = False,
    server: ServerOption = None,
) -> None:
    """Show a trial: parameters, learning curve and attempts."""
    if server:
        from neurfly.cli.client import connect

        detail_of = connect(server).trial_detail
    else:
        from functools import partial

        from neurfly.service import trial_detail

        detail_of = partial(trial_detail, _store(db))
    if "#" in trial:
        search_key, _, number = trial.rpartition("#")
        if not number.isdigit():
            raise NeurflyError(f"trial {trial!r}: the part after '#' must be a trial number, e.g. {search_key}#0")
        detail = detail_of(search_key, int(number))
    elif trial.isdigit():
        detail = detail_of("", None, trial_id=int(trial))
    else:
        raise NeurflyError(f"trial {trial!r} is neither SEARCH#NUMBER nor a numeric trial id")

    if json_output:
        _print_json(detail)
        return
    _print_trial(detail)


def _print_trial(detail: dict[str, Any]) -> None:
    console.print(f"trial {detail['number']} of search {detail['search_id']} (id {detail['id']}): {detail['state']}, value {_format_value(detail['value'])}")
    if detail["message"]:
        console.print(f"  {detail['message']}")
    console.print("parameters: " + ", ".join(f"{k}={_short(v)}" for k, v in detail["params"].items()))

    curves = detail["curves"]
    if curves:
        names = sorted(curves)
        table = Table(title="Learning curve")
        table.add_column("step", justify="right")
        for name in names:
            table.add_column(name, justify="right")
        steps = sorted({step for name in names for step, _ in curves[name]})
        by_name = {name: dict((step, value) for step, value in curves[name]) for name in names}
        for step in steps:
            table.add_row(str(step), *(_format_value(by_name[name].get(step)) for name in names))
        console.print(table)

    table = Table(title="Attempts")
    for column in ("#", "state", "node", "slot numbers", "steps", "lost", "reason"):
        table.add_column(column)
    for attempt in detail["attempts"]:
        steps = f"{attempt['start_step']}->{attempt['end_step'] if attempt['end_step'] is not None else '?'}"
        table.add_row(str(attempt["number"]), attempt["state"], attempt["node"], ",".join(map(str, attempt["slots"])), steps, str(attempt["progress_lost"]), attempt["reason"] or "")
    console.print(table)
    for attempt in detail["attempts"]:
        if attempt["traceback"]:
            console.print(f"[red]traceback of attempt {attempt['number']}:[/red]\n{attempt['traceback']}", highlight=False)


@app.command()
def cancel(
    search: Annotated[str, typer.Argument(help="Search id, name or team/name.")],
    db: DbOption = None,
    server: ServerOption = None,
) -> None:
    """Cancel a running search; its running trials are stopped."""
    if server:
        from neurfly.cli.client import connect

        console.print(connect(server).cancel(search)["message"])
        return
    from neurfly.controller.lease import Lease
    from neurfly.service import cancel_without_controller, request_cancel

    store = _store(db)
    row = request_cancel(store, search)
    with store.session() as session:
        holder = Lease().holder(session, time.time())
    if holder is None:
        cancel_without_controller(store, row.id)
        console.print(f"search {row.id} cancelled")
    else:
        console.print(f"search {row.id}: cancel requested; the controller ({holder}) stops its trials")


@app.command()
def demo(
    db: DbOption = None,
    examples: Annotated[Path, typer.Option(help="Folder of example specs.")] = EXAMPLES,
    production_after: Annotated[float, typer.Option(help="Seconds before the production-priority examples are submitted.")] = 4.0,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    new: Annotated[bool, typer.Option("--new", help="Start new searches even when the store contains finished ones of the same names.")] = False,
) -> None:
    """Run the shipped example searches together on the default local cluster.

    Specs at the highest priority arrive after --production-after seconds.
    When the searches then use every device, the scheduler preempts search
    trials for them, and those trials resume from their checkpoints.
    """
    from neurfly.cli.runner import Arrival, drive, with_executor
    from neurfly.core.scheduling.snapshot import PolicySettings
    from neurfly.service import find_search, load_cluster, load_spec, submit_search, team_usage

    files = sorted(examples.glob("*.yaml"))
    if not files:
        raise NeurflyError(f"no example specs (*.yaml) found in {examples}")
    cluster = with_executor(load_cluster(None), executor, ray_address)
    store = _store(db)
    specs = [load_spec(path, cluster) for path in files]
    top = max(c.value for c in cluster.priority_classes)
    urgent = [s for s in specs if cluster.priority_class(s[0].priority).value == top]
    searches = [s for s in specs if s not in urgent]
    slots = sum(n.devices for p in cluster.pools for n in p.nodes)
    submissions = [submit_search(store, spec, document, new=new, cluster=cluster) for spec, document, _ in searches]
    ids = [submission.search_id for submission in submissions]
    if all(submission.finished for submission in submissions):
        console.print(
            "Every example search already finished in this store in an earlier demo, so nothing new runs; "
            "the stored results follow. Run 'neurfly demo --new' to run the searches again."
        )
        for spec, _, _ in urgent:
            try:
                ids.append(find_search(store, f"{spec.team}/{spec.name}").id)
            except NotFoundError:
                continue
    else:
        console.print(
            f"Running {len(searches)} example searches ({sum(s.budget.max_trials for s, _, _ in searches)} trials) of "
            f"{len({s.team for s, _, _ in searches})} teams on {slots} local device slots; "
            f"{len(urgent)} production job(s) arrive after {production_after:.0f} s and preempt search trials "
            "if no node has room for them then. "
            "This takes under a minute on two cores."
        )
        arrivals = [
            Arrival(production_after, lambda spec=spec, document=document: submit_search(store, spec, document, new=new, cluster=cluster).search_id)
            for spec, document, _ in urgent
        ]
        # Demo attempts last about a second, less than any useful minimum run
        # time, so every running attempt may be a victim here. Clusters keep the
        # default of 60 s.
        policy = PolicySettings(min_runtime_s=0.0)
        try:
            # drive() adds the ids of the arrivals it submits to ids.
            drive(store, cluster, ids, console, live_display=True, arrivals=arrivals, policy=policy)
        except KeyboardInterrupt:
            errors.print("interrupted; run 'neurfly demo' again to resume.")
            raise typer.Exit(130) from None

    for search_id in ids:
        _report(store, find_search(store, search_id), json_output=False)
    _print_team_usage(team_usage(store, ids))


def _print_team_usage(rows: list[dict[str, Any]]) -> None:
    table = Table(title="Usage by team")
    for column in ("team", "device-hours", "attempts", "preemptions", "steps lost"):
        table.add_column(column, justify="left" if column == "team" else "right")
    for row in rows:
        table.add_row(row["team"], f"{row['device_hours']:.4f}", str(row["attempts"]), str(row["preemptions"]), str(row["steps_lost"]))
    console.print(table)


# Command modules of the platform's services register their commands on ``app`` when imported.
from neurfly.cli import _extensions  # noqa: E402,F401
