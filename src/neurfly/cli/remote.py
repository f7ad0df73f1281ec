"""REST API calls behind the cost, budget, alert, failure and data governance commands.

Each function returns rows in the shape that the command builds from the
local store, so one printing path serves both. Where the API returns fewer
fields than the store, the command's help names the difference.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from neurfly.cli.client import ApiClient, ApiError
from neurfly.errors import NeurflyError

# The API returns at most this many alerts, failures and audit records per request.
MAX_ROWS = 1000


def _params(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _own_name(team: str, name: str, kind: str) -> str:
    """Return the NAME of ``NAME`` or ``TEAM/NAME``, which must be a ``kind`` of ``team``."""
    owner, _, short = name.rpartition("/")
    if owner and owner != team:
        raise NeurflyError(f"{kind} {name} belongs to team {owner}, not to --team {team}; give a {kind} of your team")
    return short


# -- costs and budgets ----------------------------------------------------------------------------


def cost_report(client: ApiClient, team: str | None, since: float | None, until: float | None) -> dict[str, Any]:
    """Return the cost report of ``GET /costs``, shaped as ``report_to_dict`` shapes it."""
    return client.request("GET", "/costs", params=_params(team=team, since=since, until=until))


def cost_csv(client: ApiClient, team: str | None, since: float | None, until: float | None) -> str:
    """Return the chargeback line items of ``GET /costs.csv``, header row included."""
    return client.request_text("GET", "/costs.csv", params=_params(team=team, since=since, until=until))


def budget_statuses(client: ApiClient, team: str | None) -> list[dict[str, Any]]:
    return client.request("GET", "/budgets", params=_params(team=team))


def budget_changes(client: ApiClient, team: str | None) -> list[dict[str, Any]]:
    """Return the audited changes of a team's budget, oldest first."""
    if team is None:
        raise NeurflyError("--team is missing; the server returns budget history per team, so give --team")
    return client.request("GET", f"/budgets/{team}/history")["changes"]


def put_budget(client: ApiClient, team: str, body: dict[str, Any]) -> dict[str, Any]:
    return client.request("PUT", f"/budgets/{team}", json=body)


def delete_budget(client: ApiClient, team: str, search_id: int | None) -> dict[str, Any]:
    return client.request("DELETE", f"/budgets/{team}", params=_params(search_id=search_id))


def search_id(client: ApiClient, search: str | None) -> int | None:
    return None if search is None else client.find_search(search).id


# -- alerts and failures --------------------------------------------------------------------------


def alerts(client: ApiClient, team: str | None, category: str | None, owner: str | None, show_all: bool) -> list[dict[str, Any]]:
    """Return the newest alerts the token may see; the API has no owner filter, so it is applied here."""
    rows = client.request("GET", "/alerts", params=_params(team=team, category=category, limit=MAX_ROWS))
    if not show_all:
        rows = [row for row in rows if row["state"] != "resolved"]
    if owner is not None:
        rows = [row for row in rows if row["owner"] == owner]
    return rows


def change_alert(client: ApiClient, alert_id: int, action: str) -> dict[str, Any]:
    """Send ``action`` (acknowledge or resolve) for an alert and return the alert afterwards."""
    return client.request("POST", f"/alerts/{alert_id}/{action}")


def failures(client: ApiClient, search: str | None) -> list[dict[str, Any]]:
    if search is None:
        rows = client.request("GET", "/failures", params={"limit": MAX_ROWS})
    else:
        rows = client.request("GET", f"/searches/{client.find_search(search).id}/failures", params={"limit": MAX_ROWS})
    keys = ("attempt_id", "search_id", "team", "category", "cause", "owner", "evidence", "classified_at")
    return [{key: row[key] for key in keys} for row in rows]


# -- datasets and the audit log -------------------------------------------------------------------


def _version_row(version: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": f"{version['algorithm']}:{version['digest']}", "source": version["source"], "rows": version["rows"],
        "uri": version["uri"], "created_at": version["created_at"], "created_by": version["created_by"],
    }


def _dataset_row(dataset: dict[str, Any], versions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "dataset": dataset["ref"], "sensitivity": dataset["sensitivity"], "tags": dataset["tags"], "regions": dataset["regions"],
        "description": dataset["description"], "versions": [_version_row(v) for v in versions],
    }


def datasets(client: ApiClient, team: str) -> list[dict[str, Any]]:
    """Return the datasets ``team`` may see, with their versions (one request per dataset)."""
    rows = []
    for dataset in client.request("GET", f"/teams/{team}/datasets"):
        versions = client.request("GET", f"/teams/{team}/datasets/{dataset['ref']}/versions")
        rows.append(_dataset_row(dataset, versions))
    return rows


def dataset(client: ApiClient, team: str, name: str) -> dict[str, Any]:
    """Return a dataset ``team`` may see; ``name`` is ``TEAM/NAME``, or ``NAME`` for the team's own."""
    ref = name if "/" in name else f"{team}/{name}"
    described = client.request("GET", f"/teams/{team}/datasets/{ref}")
    return _dataset_row(described, described["versions"] or [])


def audit(client: ApiClient, team: str, resource: str | None, denied: bool, limit: int) -> list[dict[str, Any]]:
    decision = "deny" if denied else None
    rows = client.request("GET", f"/teams/{team}/audit", params=_params(resource=resource, decision=decision, limit=limit))
    keys = ("id", "at", "actor", "team", "action", "resource", "version", "decision", "reason", "search_id", "data")
    return [{key: row[key] for key in keys} for row in rows]


def register_dataset(
    client: ApiClient, team: str, name: str, source: dict[str, Any], *,
    sensitivity: str | None, tags: list[str], regions: list[str], description: str,
) -> dict[str, Any]:
    """Register a version of a dataset of ``team``, creating the dataset when it is new.

    Returns:
        The row that ``neurfly dataset register`` prints.
    """
    short = _own_name(team, name, "dataset")
    existing = _find_dataset(client, team, short)
    if existing is None:
        if sensitivity is None:
            raise NeurflyError(f"dataset {team}/{short} is new; give its --sensitivity (public, internal, confidential or restricted)")
        body = {"name": short, "sensitivity": sensitivity, "tags": tags, "regions": regions, "description": description, "version": source}
        version = client.request("POST", f"/teams/{team}/datasets", json=body)["versions"][0]
    else:
        _check_same_policy(existing, sensitivity, tags, regions)
        version = client.request("POST", f"/teams/{team}/datasets/{team}/{short}/versions", json={"version": source})
    row = _version_row(version)
    return {"dataset": f"{team}/{short}", "version": row["version"], "source": row["source"], "rows": row["rows"], "uri": row["uri"]}


def _find_dataset(client: ApiClient, team: str, short: str) -> dict[str, Any] | None:
    try:
        return client.request("GET", f"/teams/{team}/datasets/{team}/{short}")
    except ApiError as exc:
        if exc.status_code == 404:
            return None
        raise


def _check_same_policy(existing: dict[str, Any], sensitivity: str | None, tags: list[str], regions: list[str]) -> None:
    """Reject settings that differ from the existing dataset's, as a local registration does."""
    from neurfly.governance.registry import DatasetError
    from neurfly.governance.registry import check_same_policy as check

    stored = SimpleNamespace(ref=existing["ref"], sensitivity=existing["sensitivity"], tags=existing["tags"], regions=existing["regions"])
    try:
        check(stored, sensitivity, tags, regions)
    except DatasetError as exc:
        raise NeurflyError(str(exc)) from None


# -- grants and artifacts -------------------------------------------------------------------------


def grant(client: ApiClient, team: str, body: dict[str, Any]) -> dict[str, Any]:
    return client.request("POST", f"/teams/{team}/grants", json=body)


def dataset_grant(client: ApiClient, team: str, name: str, to: str, roles: list[str], expires: str | None, reason: str) -> dict[str, Any]:
    body = {"resource_kind": "dataset", "resource": _own_name(team, name, "dataset"), "grantee_team": to, "roles": roles, "reason": reason}
    return grant(client, team, _params(expires=expires, **body))


def grants(client: ApiClient, team: str) -> list[dict[str, Any]]:
    """Return the grants ``team`` gave or received, as ``neurfly grant list`` shows them."""
    now = time.time()
    return [
        {
            "id": g["id"], "kind": g["resource_kind"], "resource": g["resource"], "owner": g["owner_team"], "grantee": g["grantee_team"],
            "roles": g["roles"], "expires_at": g["expires_at"], "granted_by": g["granted_by"], "granted_at": g["granted_at"],
            "revoked_at": g["revoked_at"], "active": g["revoked_at"] is None and (g["expires_at"] is None or g["expires_at"] > now),
        }
        for g in client.request("GET", f"/teams/{team}/grants")
    ]


def revoke(client: ApiClient, team: str, grant_id: int) -> dict[str, Any]:
    return client.request("DELETE", f"/teams/{team}/grants/{grant_id}")


def _artifact_row(artifact: dict[str, Any]) -> dict[str, Any]:
    return {
        "artifact": artifact["ref"], "version": artifact["version"], "kind": artifact["kind"], "uri": artifact["uri"],
        "search_id": artifact["search_id"], "trial_id": artifact["trial_id"], "step": artifact["step"],
        "provenance": artifact["provenance"], "created_at": artifact["created_at"], "created_by": artifact["created_by"],
    }


def artifacts(client: ApiClient, team: str) -> list[dict[str, Any]]:
    return [_artifact_row(a) for a in client.request("GET", f"/teams/{team}/artifacts")]


def publish(client: ApiClient, team: str, trial: str, name: str, kind: str, description: str) -> dict[str, Any]:
    """Publish a trial's final checkpoint; ``trial`` is ``SEARCH#NUMBER`` or a numeric trial id."""
    body = {"trial_id": _trial_id(client, trial), "name": name, "kind": kind, "description": description}
    return _artifact_row(client.request("POST", f"/teams/{team}/artifacts", json=body))


def lineage(client: ApiClient, team: str, subject: str) -> dict[str, Any]:
    """Return the lineage report of a trial (``SEARCH#NUMBER`` or id) or an artifact (``TEAM/NAME[@VERSION]``)."""
    if "/" in subject and "#" not in subject:
        ref, _, version = subject.partition("@")
        owner, _, name = ref.partition("/")
        return client.request("GET", f"/teams/{team}/artifacts/{owner}/{name}/lineage", params=_params(version=version or None))
    return client.request("GET", f"/trials/{_trial_id(client, subject)}/lineage")


def _trial_id(client: ApiClient, trial: str) -> int:
    search, _, number = trial.rpartition("#")
    if search and number.isdigit():
        return client.trial_detail(search, int(number))["id"]
    if trial.isdigit():
        return int(trial)
    raise NeurflyError(f"trial {trial!r} is neither SEARCH#NUMBER nor a numeric trial id")
