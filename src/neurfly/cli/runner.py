"""Running searches from the CLI: a controller when the lease is free, a watcher otherwise."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from neurfly.controller import Controller, ControllerSettings
from neurfly.core.cluster import ClusterConfig
from neurfly.core.scheduling.snapshot import PolicySettings
from neurfly.core.states import SearchState
from neurfly.errors import ControllerLockedError, NeurflyError
from neurfly.executors import Executor, executors
from neurfly.service import find_search, search_summary
from neurfly.store import Store, default_home

_logger = logging.getLogger(__name__)

# How often a watcher re-reads the store and retries the lease.
WATCH_INTERVAL_S = 1.0


@dataclass
class Arrival:
    """A search submitted ``after_s`` seconds into the run; ``submit`` returns its id."""

    after_s: float
    submit: Callable[[], int]


def drive(
    store: Store,
    cluster: ClusterConfig,
    search_ids: list[int],
    console: Console,
    live_display: bool,
    checkpoint_root: str | None = None,
    arrivals: list[Arrival] | None = None,
    policy: PolicySettings | None = None,
) -> None:
    """Run until every search in ``search_ids`` (and every arrival) has ended.

    Becomes the controller when the lease is free; otherwise watches the store
    and takes over if the controller holding the lease goes away. Arrivals are
    submitted while the controller runs, once their delay has passed.
    """
    started = time.monotonic()
    settings = ControllerSettings(
        checkpoint_root=checkpoint_root or str(default_home() / "checkpoints"),
        policy=policy or PolicySettings(),
    )
    waiting = sorted(arrivals or [], key=lambda a: a.after_s)

    def admit_arrivals() -> None:
        while waiting and time.monotonic() - started >= waiting[0].after_s:
            search_ids.append(waiting.pop(0).submit())

    def finished() -> bool:
        return not waiting and all(SearchState(find_search(store, sid).state).is_final for sid in search_ids)

    render = (lambda: _progress(store, search_ids, started)) if live_display else None
    with _maybe_live(console, render) as refresh:
        while not finished():
            controller = Controller(store, cluster, make_executor(cluster), settings=settings)
            try:
                controller.start()
            except ControllerLockedError as exc:
                _logger.info("%s; watching", exc)
                refresh()
                time.sleep(WATCH_INTERVAL_S)
                continue
            try:
                _run_controller(controller, search_ids, refresh, admit_arrivals)
            finally:
                controller.stop()


def make_executor(cluster: ClusterConfig) -> Executor:
    """Create the cluster's executor with its ``executor_options``.

    Raises:
        NotFoundError: No executor plug-in has that name.
        NeurflyError: An option is unknown to the executor or has an invalid value.
    """
    executor_class = executors.get(cluster.executor)
    options = dict(cluster.executor_options)
    parameters = inspect.signature(executor_class).parameters
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        known = ", ".join(parameters) or "none"
        raise NeurflyError(f"executor {cluster.executor!r} has no option {', '.join(map(repr, unknown))}; its options are: {known}")
    try:
        return executor_class(**options)
    except (TypeError, ValueError) as exc:
        raise NeurflyError(f"executor {cluster.executor!r}: invalid executor_options: {exc}") from exc


def with_executor(cluster: ClusterConfig, executor: str | None, ray_address: str | None) -> ClusterConfig:
    """Return ``cluster`` with the executor and Ray address chosen on the command line.

    Raises:
        NotFoundError: No executor plug-in has that name.
        NeurflyError: ``ray_address`` is given for an executor other than ``ray``,
            or an executor option is unknown or invalid.
    """
    name = executor or cluster.executor
    options = dict(cluster.executor_options) if name == cluster.executor else {}
    if ray_address is not None:
        if name != "ray":
            raise NeurflyError(f"--ray-address applies to the ray executor, but the executor is {name!r}; add --executor ray")
        options["address"] = ray_address
    chosen = cluster.model_copy(update={"executor": name, "executor_options": options})
    make_executor(chosen)  # checks the name and the options before anything is submitted; connects to nothing
    return chosen


def _run_controller(
    controller: Controller, search_ids: list[int], refresh: Callable[[], None], admit_arrivals: Callable[[], None]
) -> None:
    last = 0.0

    def until() -> bool:
        admit_arrivals()
        if any(sid in controller.searches for sid in search_ids):
            return False
        # A search submitted in this tick is in the store before the controller picks it up.
        return all(SearchState(find_search(controller.store, sid).state).is_final for sid in search_ids)

    def on_tick() -> None:
        nonlocal last
        if time.monotonic() - last > 0.5:
            last = time.monotonic()
            refresh()

    controller.run(until=until, on_tick=on_tick)
    refresh()


class _maybe_live:
    def __init__(self, console: Console, render: Callable[[], object] | None) -> None:
        self.console = console
        self.render = render
        self.live: Live | None = None

    def __enter__(self) -> Callable[[], None]:
        if self.render is None:
            return lambda: None
        self.live = Live(self.render(), console=self.console, refresh_per_second=4, transient=False)
        self.live.__enter__()
        return lambda: self.live.update(self.render())

    def __exit__(self, *exc_info: object) -> None:
        if self.live is not None:
            self.live.__exit__(*exc_info)
            # The live table ends without a line break in some terminals.
            self.console.print()


def _progress(store: Store, search_ids: list[int], started: float) -> Group:
    table = Table(title=f"NeurFly: {len(search_ids)} search(es), {time.monotonic() - started:,.0f} s elapsed", expand=False)
    for column in ("search", "state", "done", "running", "pending", "paused", "failed", "best"):
        table.add_column(column, justify="right" if column not in ("search", "state") else "left")
    for search_id in search_ids:
        summary = search_summary(store, find_search(store, search_id))
        trials = summary["trials"]
        done = trials.get("completed", 0) + trials.get("pruned", 0)
        best = summary["best"]
        best_text = f"{best['value']:.4g} (#{best['number']})" if best and best["value"] is not None else "-"
        table.add_row(
            f"{summary['team']}/{summary['name']}",
            summary["state"],
            f"{done}/{summary['max_trials']}",
            str(trials.get("running", 0) + trials.get("starting", 0)),
            str(trials.get("pending", 0)),
            str(trials.get("paused", 0)),
            str(trials.get("failed", 0)),
            best_text,
        )
    return Group(table)
