"""The CLI against a NeurFly server: the same commands, over the REST API with a token.

``--server URL`` (or ``NEURFLY_SERVER``) sends ``status``, ``trials``,
``show``, ``cancel`` and ``run`` to a server; ``neurfly.cli.remote`` holds the
calls of the cost, budget, alert, failure and data commands. The token comes from
``NEURFLY_TOKEN`` or from ``token:`` in ``~/.config/neurfly/config.yaml``
(``$XDG_CONFIG_HOME/neurfly/config.yaml`` where that variable is set).
"""

from __future__ import annotations

import logging
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer
import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from neurfly.core.states import SearchState
from neurfly.errors import NeurflyError, SpecError

_logger = logging.getLogger(__name__)

API = "/api/v1"
# Seconds between two reads of a search's state while ``run`` watches it.
WATCH_INTERVAL_S = 1.0
PAGE_SIZE = 1000


def config_path() -> Path:
    """``$XDG_CONFIG_HOME/neurfly/config.yaml``, or ``~/.config/neurfly/config.yaml``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "neurfly" / "config.yaml"


def find_token() -> str:
    """Return the API token from ``NEURFLY_TOKEN``, else from the config file.

    Raises:
        NeurflyError: Neither gives a token, or the config file is invalid.
    """
    token = os.environ.get("NEURFLY_TOKEN", "").strip()
    if token:
        return token
    path = config_path()
    if not path.exists():
        raise NeurflyError(f"no API token: set NEURFLY_TOKEN, or write 'token: <token>' into {path}")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise NeurflyError(f"cannot read {path}: {exc}; it must be YAML with a 'token' key") from None
    if not isinstance(config, dict) or not isinstance(config.get("token"), str):
        raise NeurflyError(f"{path} has no 'token' key; write 'token: <token>' into it")
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        _logger.warning("%s is readable by other users; restrict it with 'chmod 600 %s'", path, path)
    return config["token"].strip()


@dataclass(frozen=True)
class RemoteSearch:
    """The fields of a search row that the CLI prints, read from the server."""

    id: int
    team: str
    name: str
    state: str
    strategy: str
    objective_metric: str
    direction: str
    max_trials: int
    message: str | None


class ApiClient:
    """A small synchronous client of the REST API.

    Args:
        server: Base URL, for example ``http://127.0.0.1:8080``.
        token: API token.
        timeout_s: Seconds to wait for each response.
        transport: httpx transport; tests pass an in-process one.
    """

    def __init__(self, server: str, token: str, timeout_s: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        if not server.startswith(("http://", "https://")):
            raise NeurflyError(f"--server {server!r} is not an http:// or https:// URL; write it as http://host:8080")
        self.server = server.rstrip("/")
        self._http = httpx.Client(
            base_url=self.server + API, headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s, transport=transport
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return the decoded JSON body.

        Raises:
            SpecError: The server rejected a search spec (422).
            NeurflyError: The server could not be reached or returned an error.
        """
        response = self._send(method, path, **kwargs)
        return response.json() if response.content else None

    def request_text(self, method: str, path: str, **kwargs: Any) -> str:
        """Send a request and return the body as text, for routes that return CSV.

        Raises:
            NeurflyError: The server could not be reached or returned an error.
        """
        return self._send(method, path, **kwargs).text

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise NeurflyError(f"cannot reach {self.server}: {exc}; check --server and that 'neurfly server' runs there") from None
        if response.status_code < 400:
            return response
        raise _error(response, self.server, spec=method == "POST" and path == "/searches")

    # -- the calls the CLI commands make ------------------------------------------------------

    def list_searches(self) -> list[dict[str, Any]]:
        return [_search_summary(item) for item in self._pages("/searches")]

    def find_search(self, key: str) -> RemoteSearch:
        """Look up a search by id, ``name`` or ``team/name``, as the local commands do."""
        return _remote_search(self._get_search(key))

    def search_summary(self, search: RemoteSearch) -> dict[str, Any]:
        return _search_summary(self.request("GET", f"/searches/{search.id}"))

    def trial_rows(self, search: RemoteSearch) -> list[dict[str, Any]]:
        return [_trial(item) for item in self._pages(f"/searches/{search.id}/trials")]

    def leaderboard(self, search: RemoteSearch, limit: int = 1000) -> list[dict[str, Any]]:
        return [_trial(item) for item in self.request("GET", f"/searches/{search.id}/leaderboard", params={"limit": limit})]

    def trial_detail(self, search_key: str, number: int | None, trial_id: int | None = None) -> dict[str, Any]:
        if trial_id is not None:
            detail = self.request("GET", f"/trials/{trial_id}")
        else:
            name, team = _split_key(search_key)
            detail = self.request("GET", f"/searches/{name}/trials/{number}", params=_team_param(team))
        detail = _trial(detail)
        detail["attempts"] = list(detail["attempts"])
        detail["curves"] = {name: [[step, _number(value)] for step, value in points] for name, points in detail["curves"].items()}
        return detail

    def submit(self, document: Any, new: bool) -> dict[str, Any]:
        return self.request("POST", "/searches", json={"spec": document, "new": new})

    def cancel(self, key: str) -> dict[str, Any]:
        name, team = _split_key(key)
        return self.request("POST", f"/searches/{name}/cancel", params=_team_param(team))

    def _get_search(self, key: str) -> dict[str, Any]:
        name, team = _split_key(key)
        return self.request("GET", f"/searches/{name}", params=_team_param(team))

    def _pages(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self.request("GET", path, params={"limit": PAGE_SIZE, "offset": len(items)})
            items.extend(page["items"])
            if not page["items"] or len(items) >= page["total"]:
                return items


def connect(server: str) -> ApiClient:
    """Return a client of ``server`` with the token from the environment or the config file."""
    return ApiClient(server, find_token())


# -- run: submit and watch ------------------------------------------------------------------------


def remote_run(server: str, spec_file: Path, new: bool, json_output: bool, console: Console, errors: Console) -> None:
    """Submit a spec file to a server and show its progress until the search ends."""
    from neurfly.cli import _print_json, _print_leaderboard

    client = connect(server)
    answer = client.request("POST", "/searches", json={"spec_yaml": _read_text(spec_file), "new": new})
    for warning in answer["warnings"]:
        errors.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    summary = answer["search"]
    search = _remote_search(summary)
    if answer["finished"] and not json_output:
        console.print(f"search {search.id} ({search.team}/{search.name}) has already ended; pass --new to run it again")
    elif not json_output:
        verb = "resuming" if answer["resumed"] else "submitted"
        console.print(f"{verb} search {search.id} ({search.team}/{search.name}) on {client.server}: {search.strategy}, {search.max_trials} trials")

    try:
        _watch(client, search, console, live_display=not json_output)
    except KeyboardInterrupt:
        errors.print(f"stopped watching; search {search.id} goes on on the server. Follow it with 'neurfly status --server {server}'.")
        raise typer.Exit(130) from None

    search = client.find_search(str(search.id))
    board = client.leaderboard(search)
    if json_output:
        _print_json({"search": client.search_summary(search), "leaderboard": board})
        return
    console.print(f"search {search.id} {search.state}: {search.message}")
    _print_leaderboard(search, board[:10])


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([f"file not found: {path}; check the path"], str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([f"cannot read {path}: {exc}"], str(path)) from None


def _watch(client: ApiClient, search: RemoteSearch, console: Console, live_display: bool) -> None:
    started = time.monotonic()
    summary = client.search_summary(search)
    if not live_display:
        while not SearchState(summary["state"]).is_final:
            time.sleep(WATCH_INTERVAL_S)
            summary = client.search_summary(search)
        return
    with Live(_progress(summary, started), console=console, refresh_per_second=4) as live:
        while not SearchState(summary["state"]).is_final:
            time.sleep(WATCH_INTERVAL_S)
            summary = client.search_summary(search)
            live.update(_progress(summary, started))


def _progress(summary: dict[str, Any], started: float) -> Group:
    table = Table(title=f"NeurFly: search {summary['id']}, {time.monotonic() - started:,.0f} s elapsed")
    for column in ("search", "state", "done", "running", "pending", "paused", "failed", "best"):
        table.add_column(column, justify="left" if column in ("search", "state") else "right")
    trials = summary["trials"]
    best = summary["best"]
    best_text = f"{best['value']:.4g} (#{best['number']})" if best and best["value"] is not None else "-"
    table.add_row(
        f"{summary['team']}/{summary['name']}",
        summary["state"],
        f"{trials.get('completed', 0) + trials.get('pruned', 0)}/{summary['max_trials']}",
        str(trials.get("running", 0) + trials.get("starting", 0)),
        str(trials.get("pending", 0)),
        str(trials.get("paused", 0)),
        str(trials.get("failed", 0)),
        best_text,
    )
    return Group(table)


# -- conversions ----------------------------------------------------------------------------------


def _split_key(key: str) -> tuple[str, str | None]:
    team, _, name = str(key).rpartition("/")
    return name, team or None


def _team_param(team: str | None) -> dict[str, str]:
    return {"team": team} if team else {}


def _number(value: Any) -> Any:
    """Turn the API's ``"nan"``, ``"inf"`` and ``"-inf"`` back into floats."""
    return float(value) if isinstance(value, str) else value


def _trial(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "value": _number(row["value"])}


def _search_summary(row: dict[str, Any]) -> dict[str, Any]:
    best = row.get("best")
    return {**row, "best": _trial(best) if best else None}


def _remote_search(row: dict[str, Any]) -> RemoteSearch:
    return RemoteSearch(
        id=row["id"], team=row["team"], name=row["name"], state=row["state"], strategy=row["strategy"],
        objective_metric=row["objective"]["metric"], direction=row["objective"]["direction"],
        max_trials=row["max_trials"], message=row["message"],
    )


class ApiError(NeurflyError):
    """An error response of the server.

    Attributes:
        status_code: HTTP status of the response.
    """

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


def _error(response: httpx.Response, server: str, spec: bool = False) -> NeurflyError:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = response.text[:500]
    code = response.status_code
    if code == 422 and isinstance(detail, list):
        problems = [_problem(item) for item in detail]
        if spec:
            return SpecError(problems, f"the request to {server}")
        return ApiError(f"{server} rejected the request as invalid: {'; '.join(problems)}", code)
    if code == 401:
        return ApiError(f"{server} rejected the token: {detail}; the token comes from NEURFLY_TOKEN or {config_path()}", code)
    if code == 403:
        return ApiError(f"{detail} (HTTP 403 from {server}); ask an admin of the team for that role", code)
    return ApiError(f"{detail} (HTTP {code} from {server})", code)


def _problem(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    if item.get("type") == "invalid_spec":
        return str(item.get("msg"))
    location = ".".join(str(part) for part in item.get("loc", []))
    return f"{location}: {item.get('msg')}"


__all__ = ["ApiClient", "ApiError", "RemoteSearch", "config_path", "connect", "find_token", "remote_run"]
