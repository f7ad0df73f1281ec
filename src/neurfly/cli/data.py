"""``neurfly dataset``, ``neurfly grant``, ``neurfly artifact`` and ``neurfly lineage``: data governance commands.

Every command acts for one team (``--team`` or ``$NEURFLY_TEAM``) and one
user (``--user``, ``$NEURFLY_USER`` or the login name). Each access decision
it makes is written to the audit log.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from neurfly.cli import DbOption, JsonOption, ServerOption, _print_json, _store, app, console, remote
from neurfly.cli.client import connect
from neurfly.errors import NeurflyError

dataset_app = typer.Typer(help="Register, list, show and read datasets.", no_args_is_help=True)
grant_app = typer.Typer(help="Let another team use a dataset or artifact of your team.", no_args_is_help=True)
artifact_app = typer.Typer(help="Publish and list artifacts: trial checkpoints other searches can start from.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")
app.add_typer(grant_app, name="grant")
app.add_typer(artifact_app, name="artifact")

TeamOption = Annotated[str, typer.Option("--team", envvar="NEURFLY_TEAM", help="Team the command acts for.")]
UserOption = Annotated[str | None, typer.Option("--user", envvar="NEURFLY_USER", help="User recorded in the audit log; default: the login name. With --server, the server records the token's user.")]


@contextlib.contextmanager
def _session(db: str | None) -> Iterator[Session]:
    """Open a session that commits on success and turns argument errors into messages with exit status 2."""
    store = _store(db)
    try:
        with store.session() as session:
            try:
                yield session
            except ValueError as exc:
                if isinstance(exc, NeurflyError):
                    raise
                raise NeurflyError(str(exc)) from None
            session.commit()
    finally:
        store.dispose()


def _caller(team: str, user: str | None) -> Any:
    from neurfly.governance import Caller, current_user

    try:
        return Caller(team, user or current_user())
    except ValueError as exc:
        raise NeurflyError(str(exc)) from None


def _date(at: float | None) -> str:
    return "-" if at is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(at))


# -- datasets -----------------------------------------------------------------------------------


@dataset_app.command("register")
def dataset_register(
    name: Annotated[str, typer.Argument(help="Dataset as NAME or TEAM/NAME (your team).")],
    team: TeamOption,
    file: Annotated[Path | None, typer.Option("--file", help="A local CSV or Parquet file; its SHA-256 is the version. With --server, a file on the server under one of its --data-root folders.")] = None,
    sklearn: Annotated[str | None, typer.Option("--sklearn", help="A bundled scikit-learn set: digits, breast_cancer, iris or wine.")] = None,
    dvc_repo: Annotated[Path | None, typer.Option("--dvc-repo", help="Git repository whose DVC metadata tracks --path. With --server, a repository on the server under one of its --data-root folders.")] = None,
    path: Annotated[str | None, typer.Option("--path", help="With --dvc-repo: the tracked file, relative to the repository root.")] = None,
    rev: Annotated[str, typer.Option("--rev", help="With --dvc-repo: git revision to read the DVC entry at.")] = "HEAD",
    lakefs: Annotated[str | None, typer.Option("--lakefs", help="lakefs://REPOSITORY/COMMIT_ID/PATH; the commit id is the version.")] = None,
    label: Annotated[str | None, typer.Option("--label", help="Label column; default: label, target, y or class, else the last column.")] = None,
    sensitivity: Annotated[str | None, typer.Option("--sensitivity", help="public, internal, confidential or restricted; required for a new dataset.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag such as PII or PHI; repeat for several.")] = None,
    region: Annotated[list[str] | None, typer.Option("--region", help="A region the data may be processed in; repeat for several; none means any.")] = None,
    description: Annotated[str, typer.Option("--description", help="What the data is.")] = "",
    user: UserOption = None,
    db: DbOption = None,
    json_output: JsonOption = False,
    server: ServerOption = None,
) -> None:
    """Register a version of a dataset of your team, creating the dataset on first use."""
    from neurfly.governance import Sensitivity, register_version

    _check_source(file, sklearn, dvc_repo, path, lakefs)
    level = Sensitivity(sensitivity) if sensitivity else None
    if server:
        source = _version_source(file, sklearn, dvc_repo, path, rev, lakefs, label)
        row = remote.register_dataset(connect(server), team, name, source, sensitivity=level.value if level else None,
                                      tags=tag or [], regions=region or [], description=description)
    else:
        caller = _caller(team, user)
        info = _version_info(file, sklearn, dvc_repo, path, rev, lakefs, label)
        with _session(db) as session:
            version = register_version(session, caller, name, info, sensitivity=level, tags=tag or (), regions=region or (), description=description)
            row = {"dataset": f"{caller.team}/{name.split('/')[-1]}", "version": version.version, "source": version.source, "rows": version.rows, "uri": version.uri}
    if json_output:
        _print_json(row)
        return
    console.print(f"registered {row['dataset']}@{row['version']} ({row['source']}, {row['rows'] if row['rows'] is not None else '?'} rows)")


def _check_source(file: Path | None, sklearn: str | None, dvc_repo: Path | None, path: str | None, lakefs: str | None) -> None:
    sources = [flag for flag, value in (("--file", file), ("--sklearn", sklearn), ("--dvc-repo", dvc_repo), ("--lakefs", lakefs)) if value is not None]
    if len(sources) != 1:
        raise NeurflyError(f"give exactly one source of the version: --file, --sklearn, --dvc-repo (with --path) or --lakefs; got {len(sources)}: {' '.join(sources) or 'none'}")
    if dvc_repo is not None and path is None:
        raise NeurflyError("--dvc-repo needs --path, the DVC-tracked file relative to the repository root")


def _version_info(file: Path | None, sklearn: str | None, dvc_repo: Path | None, path: str | None, rev: str, lakefs: str | None, label: str | None) -> Any:
    from neurfly.governance import dvc_version, file_version, lakefs_version, sklearn_version

    if file is not None:
        return file_version(file, label)
    if sklearn is not None:
        return sklearn_version(sklearn)
    if lakefs is not None:
        return lakefs_version(lakefs, label)
    return dvc_version(dvc_repo, path, rev, label)


def _version_source(file: Path | None, sklearn: str | None, dvc_repo: Path | None, path: str | None, rev: str, lakefs: str | None, label: str | None) -> dict[str, Any]:
    """Describe the version source as the API's request body does; the server reads files and repositories."""
    if file is not None:
        source: dict[str, Any] = {"source": "file", "path": str(file)}
    elif sklearn is not None:
        return {"source": "sklearn", "name": sklearn}
    elif lakefs is not None:
        source = {"source": "lakefs", "uri": lakefs}
    else:
        source = {"source": "dvc", "repo": str(dvc_repo), "path": path, "rev": rev}
    if label is not None:
        source["label"] = label
    return source


@dataset_app.command("set")
def dataset_set(
    name: Annotated[str, typer.Argument(help="Dataset as NAME or TEAM/NAME (your team).")],
    team: TeamOption,
    sensitivity: Annotated[str | None, typer.Option("--sensitivity", help="New sensitivity class.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Replace the tags; repeat for several.")] = None,
    region: Annotated[list[str] | None, typer.Option("--region", help="Replace the allowed regions; repeat for several.")] = None,
    any_region: Annotated[bool, typer.Option("--any-region", help="Allow every region.")] = False,
    user: UserOption = None,
    db: DbOption = None,
) -> None:
    """Change a dataset's sensitivity, tags or allowed regions."""
    from neurfly.governance import Sensitivity, update_dataset

    caller = _caller(team, user)
    regions = [] if any_region else region
    with _session(db) as session:
        dataset = update_dataset(session, caller, name, sensitivity=Sensitivity(sensitivity) if sensitivity else None, tags=tag, regions=regions)
        console.print(f"{dataset.ref}: {dataset.sensitivity}, tags {', '.join(dataset.tags) or '-'}, regions {', '.join(dataset.regions) or 'any'}")


@dataset_app.command("list")
def dataset_list(team: TeamOption, user: UserOption = None, db: DbOption = None, json_output: JsonOption = False, server: ServerOption = None) -> None:
    """List the datasets your team may see: its own, public and internal ones, and those granted to it."""
    rows = remote.datasets(connect(server), team) if server else _local_datasets(db, team, user)
    if json_output:
        _print_json(rows)
        return
    table = Table(title=f"Datasets visible to team {team}")
    for column in ("dataset", "sensitivity", "tags", "regions", "versions", "newest"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["dataset"], row["sensitivity"], ", ".join(row["tags"]) or "-", ", ".join(row["regions"]) or "any",
                      str(len(row["versions"])), row["versions"][0]["version"] if row["versions"] else "-")
    console.print(table)


def _local_datasets(db: str | None, team: str, user: str | None) -> list[dict[str, Any]]:
    from neurfly.governance import list_datasets, versions_of

    caller = _caller(team, user)
    with _session(db) as session:
        return [_dataset_row(d, versions_of(session, d)) for d in list_datasets(session, caller)]


def _dataset_row(dataset: Any, versions: list[Any]) -> dict[str, Any]:
    return {
        "dataset": dataset.ref, "sensitivity": dataset.sensitivity, "tags": list(dataset.tags), "regions": list(dataset.regions),
        "description": dataset.description,
        "versions": [{"version": v.version, "source": v.source, "rows": v.rows, "uri": v.uri, "created_at": v.created_at, "created_by": v.created_by} for v in versions],
    }


@dataset_app.command("show")
def dataset_show(
    name: Annotated[str, typer.Argument(help="Dataset as TEAM/NAME, or NAME for your team's.")],
    team: TeamOption,
    user: UserOption = None,
    db: DbOption = None,
    json_output: JsonOption = False,
    server: ServerOption = None,
) -> None:
    """Show a dataset and its versions."""
    from neurfly.governance import describe_dataset

    if server:
        row = remote.dataset(connect(server), team, name)
    else:
        caller = _caller(team, user)
        with _session(db) as session:
            dataset, versions = describe_dataset(session, caller, name)
            row = _dataset_row(dataset, versions)
    if json_output:
        _print_json(row)
        return
    console.print(f"{row['dataset']}: {row['sensitivity']}, tags {', '.join(row['tags']) or '-'}, regions {', '.join(row['regions']) or 'any'}")
    table = Table(title="Versions, newest first")
    for column in ("version", "source", "rows", "registered", "by", "location"):
        table.add_column(column)
    for version in row["versions"]:
        table.add_row(version["version"], version["source"], str(version["rows"] or "-"), _date(version["created_at"]), version["created_by"], version["uri"] or "-")
    console.print(table)


@dataset_app.command("read")
def dataset_read(
    name: Annotated[str, typer.Argument(help="Dataset as TEAM/NAME[@VERSION]; the newest version by default.")],
    team: TeamOption,
    rows: Annotated[int, typer.Option("--rows", min=1, help="Rows to print.")] = 5,
    user: UserOption = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print the first rows of a dataset version your team may use."""
    from neurfly.governance import read_dataset

    caller = _caller(team, user)
    with _session(db) as session:
        result = read_dataset(session, caller, name, rows)
    if json_output:
        _print_json(result)
        return
    table = Table(title=f"{result['dataset']}@{result['version']}")
    for column in result["columns"]:
        table.add_column(column)
    for values in result["rows"]:
        table.add_row(*(str(v) for v in values))
    console.print(table)


@dataset_app.command("audit")
def dataset_audit(
    team: TeamOption,
    resource: Annotated[str | None, typer.Option("--resource", help="Only decisions about this TEAM/NAME.")] = None,
    denied: Annotated[bool, typer.Option("--denied", help="Only denials.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Maximum number of records to print, newest first; at most 1000 with --server.")] = 50,
    db: DbOption = None,
    json_output: JsonOption = False,
    server: ServerOption = None,
) -> None:
    """Print access decisions your team made or that concern your team's data."""
    rows = remote.audit(connect(server), team, resource, denied, limit) if server else _local_audit(db, team, resource, denied, limit)
    if json_output:
        _print_json(rows)
        return
    table = Table(title=f"Data access decisions for team {team}")
    for column in ("id", "time (UTC)", "team", "user", "action", "resource", "decision", "reason"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["id"]), _date(row["at"]), row["team"], row["actor"], row["action"], row["resource"], row["decision"], row["reason"])
    console.print(table)


def _local_audit(db: str | None, team: str, resource: str | None, denied: bool, limit: int) -> list[dict[str, Any]]:
    from neurfly.governance import Decision, audit_trail

    with _session(db) as session:
        records = audit_trail(session, team=team, resource=resource, decision=Decision.DENY if denied else None, limit=limit)
        return [{"id": r.id, "at": r.at, "actor": r.actor, "team": r.team, "action": r.action, "resource": r.resource,
                 "version": r.version, "decision": r.decision, "reason": r.reason, "search_id": r.search_id, "data": r.data} for r in records]


# -- grants -------------------------------------------------------------------------------------


@grant_app.command("dataset")
def grant_dataset(
    name: Annotated[str, typer.Argument(help="Your team's dataset, as NAME or TEAM/NAME.")],
    team: TeamOption,
    to: Annotated[str, typer.Option("--to", help="Team that receives the grant.")],
    role: Annotated[list[str], typer.Option("--role", help="training, validation or warm_start; repeat for several.")],
    expires: Annotated[str | None, typer.Option("--expires", help="A duration (30d, 12h) or a date (2027-01-31); default 90 days.")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why the grant is given, for the audit log.")] = "",
    user: UserOption = None,
    db: DbOption = None,
    server: ServerOption = None,
) -> None:
    """Let another team use one of your datasets in the given roles until the expiry."""
    from neurfly.governance import DataRole, ResourceKind, describe_dataset, grant_access, parse_expiry

    roles = [_role(r, DataRole) for r in role]
    if server:
        given = remote.dataset_grant(connect(server), team, name, to, [r.value for r in roles], expires, reason)
        console.print(f"grant {given['id']}: team {to} may use {given['resource']} for {', '.join(given['roles'])} until {_date(given['expires_at'])} UTC")
        return
    caller = _caller(team, user)
    with _session(db) as session:
        dataset, _ = describe_dataset(session, caller, name)
        grant = grant_access(session, caller, ResourceKind.DATASET, dataset, to, roles, parse_expiry(expires), reason)
        console.print(f"grant {grant.id}: team {to} may use {dataset.ref} for {', '.join(grant.roles)} until {_date(grant.expires_at)} UTC")


@grant_app.command("artifact")
def grant_artifact(
    name: Annotated[str, typer.Argument(help="Your team's artifact, as TEAM/NAME[@VERSION].")],
    team: TeamOption,
    to: Annotated[str, typer.Option("--to", help="Team that receives the grant.")],
    expires: Annotated[str | None, typer.Option("--expires", help="A duration (30d, 12h) or a date (2027-01-31); default 90 days.")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why the grant is given, for the audit log.")] = "",
    user: UserOption = None,
    db: DbOption = None,
    server: ServerOption = None,
) -> None:
    """Let another team start searches from one of your artifacts (role warm_start)."""
    from neurfly.governance import DataRole, ResourceKind, find_artifact, grant_access, parse_expiry, parse_ref

    try:
        ref = parse_ref(name if "/" in name else f"{team}/{name}", "artifact")
    except ValueError as exc:
        raise NeurflyError(str(exc)) from None
    if server:
        if ref.team != team:
            raise NeurflyError(f"artifact {ref} belongs to team {ref.team}, not to --team {team}; give an artifact of your team")
        body = {"resource_kind": "artifact", "resource": ref.name, "version": ref.version, "grantee_team": to, "expires": expires, "reason": reason}
        given = remote.grant(connect(server), team, {key: value for key, value in body.items() if value is not None})
        console.print(f"grant {given['id']}: team {to} may start from {ref.key} until {_date(given['expires_at'])} UTC")
        return
    caller = _caller(team, user)
    with _session(db) as session:
        artifact = find_artifact(session, ref)
        if artifact is None:
            raise NeurflyError(f"artifact {ref} not found; list your team's artifacts with 'neurfly artifact list'")
        grant = grant_access(session, caller, ResourceKind.ARTIFACT, artifact, to, [DataRole.WARM_START], parse_expiry(expires), reason)
        console.print(f"grant {grant.id}: team {to} may start from {ref.key} until {_date(grant.expires_at)} UTC")


def _role(text: str, roles: Any) -> Any:
    try:
        return roles(text.replace("-", "_"))
    except ValueError:
        raise NeurflyError(f"role {text!r} is invalid; choose training, validation or warm_start") from None


@grant_app.command("list")
def grant_list(team: TeamOption, db: DbOption = None, json_output: JsonOption = False, server: ServerOption = None) -> None:
    """List the grants your team gave and received."""
    from neurfly.governance import list_grants

    if server:
        rows = remote.grants(connect(server), team)
    else:
        with _session(db) as session:
            now = time.time()
            rows = [{"id": g.id, "kind": g.resource_kind, "resource": g.resource, "owner": g.owner_team, "grantee": g.grantee_team,
                     "roles": list(g.roles), "expires_at": g.expires_at, "granted_by": g.granted_by, "granted_at": g.granted_at,
                     "revoked_at": g.revoked_at, "active": g.active(now)} for g in list_grants(session, team)]
    if json_output:
        _print_json(rows)
        return
    table = Table(title=f"Grants given and received by team {team}")
    for column in ("id", "kind", "resource", "to", "roles", "expires (UTC)", "by", "state"):
        table.add_column(column)
    for row in rows:
        state = "active" if row["active"] else ("revoked" if row["revoked_at"] else "expired")
        table.add_row(str(row["id"]), row["kind"], row["resource"], row["grantee"], ", ".join(row["roles"]), _date(row["expires_at"]), row["granted_by"], state)
    console.print(table)


@grant_app.command("revoke")
def grant_revoke(
    grant_id: Annotated[int, typer.Argument(help="Grant id from 'neurfly grant list'.")],
    team: TeamOption,
    user: UserOption = None,
    db: DbOption = None,
    server: ServerOption = None,
) -> None:
    """Revoke a grant your team gave; searches admitted before keep running."""
    from neurfly.governance import revoke_grant

    if server:
        revoked = remote.revoke(connect(server), team, grant_id)
        console.print(f"grant {revoked['id']} of {revoked['resource']} to team {revoked['grantee_team']} revoked")
        return
    caller = _caller(team, user)
    with _session(db) as session:
        grant = revoke_grant(session, caller, grant_id)
        console.print(f"grant {grant.id} of {grant.resource} to team {grant.grantee_team} revoked")


# -- artifacts ----------------------------------------------------------------------------------


@artifact_app.command("publish")
def artifact_publish(
    trial: Annotated[str, typer.Argument(help="Trial as SEARCH#NUMBER or its numeric id.")],
    team: TeamOption,
    name: Annotated[str, typer.Option("--name", help="Artifact name within your team.")],
    kind: Annotated[str, typer.Option("--kind", help="checkpoint (a warm start), model or supernet (shared weights).")] = "checkpoint",
    description: Annotated[str, typer.Option("--description", help="What the artifact is.")] = "",
    user: UserOption = None,
    db: DbOption = None,
    json_output: JsonOption = False,
    server: ServerOption = None,
) -> None:
    """Publish a finished trial's final checkpoint as an artifact, with the provenance of its data."""
    from neurfly.governance import ArtifactKind, publish_artifact
    from neurfly.governance.run_facts import emit_published

    try:
        artifact_kind = ArtifactKind(kind)
    except ValueError:
        raise NeurflyError(f"artifact kind {kind!r} is invalid; choose checkpoint, model or supernet") from None
    if server:
        row = remote.publish(connect(server), team, trial, name, artifact_kind.value, description)
    else:
        caller = _caller(team, user)
        with _session(db) as session:
            artifact = publish_artifact(session, caller, trial, name, artifact_kind, description)
            row = _artifact_row(artifact)
            session.commit()
            emit_published(session, artifact)
    if json_output:
        _print_json(row)
        return
    datasets = sorted({p["dataset"] for p in row["provenance"]})
    console.print(f"published {row['artifact']}@{row['version']} from trial {trial}; data behind it: {', '.join(datasets) or 'none recorded'}")


def _artifact_row(artifact: Any) -> dict[str, Any]:
    return {
        "artifact": f"{artifact.team}/{artifact.name}", "version": artifact.digest, "kind": artifact.kind, "uri": artifact.uri,
        "search_id": artifact.search_id, "trial_id": artifact.trial_id, "step": artifact.step, "provenance": artifact.provenance,
        "created_at": artifact.created_at, "created_by": artifact.created_by,
    }


@artifact_app.command("list")
def artifact_list(team: TeamOption, user: UserOption = None, db: DbOption = None, json_output: JsonOption = False, server: ServerOption = None) -> None:
    """List your team's artifacts and those granted to it."""
    rows = remote.artifacts(connect(server), team) if server else _local_artifacts(db, team, user)
    if json_output:
        _print_json(rows)
        return
    table = Table(title=f"Artifacts visible to team {team}")
    for column in ("artifact", "version", "kind", "from", "datasets behind it"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["artifact"], row["version"][:19], row["kind"], f"search {row['search_id']} trial {row['trial_id']}",
                      ", ".join(sorted({p["dataset"] for p in row["provenance"]})) or "-")
    console.print(table)


def _local_artifacts(db: str | None, team: str, user: str | None) -> list[dict[str, Any]]:
    from neurfly.governance import list_artifacts

    caller = _caller(team, user)
    with _session(db) as session:
        return [_artifact_row(a) for a in list_artifacts(session, caller)]


# -- lineage ------------------------------------------------------------------------------------


@app.command()
def lineage(
    subject: Annotated[str, typer.Argument(help="A trial (SEARCH#NUMBER or id) or an artifact (TEAM/NAME[@VERSION]).")],
    team: TeamOption,
    user: UserOption = None,
    db: DbOption = None,
    json_output: JsonOption = False,
    server: ServerOption = None,
) -> None:
    """Show which data versions, in which roles, a trial or model saw, directly or through artifacts."""
    if server:
        report = remote.lineage(connect(server), team, subject)
    else:
        from neurfly.governance import lineage_report

        caller = _caller(team, user)
        with _session(db) as session:
            report = lineage_report(session, caller, subject)
    if json_output:
        _print_json(report)
        return
    _print_lineage(report)


def _print_lineage(report: dict[str, Any]) -> None:
    table = Table(title=f"Data seen by {report['subject']}")
    for column in ("role", "dataset", "version", "via", "attempt"):
        table.add_column(column)
    for row in report["data"]:
        table.add_row(row["role"], row["dataset"], row["version"], " -> ".join(row["via"]) or "direct", str(row["attempt_id"]))
    console.print(table)

    table = Table(title="Attempts")
    for column in ("#", "state", "pool", "steps", "inputs", "outputs"):
        table.add_column(column)
    for attempt in report["attempts"]:
        inputs = "\n".join(f"{i['role']}: {i['name']} {str(i['version'])[:19]}" for i in attempt["inputs"]) or "-"
        outputs = "\n".join(f"{o['kind']}: {str(o['version'])[:19]}" + (" (final)" if o.get("final") else "") for o in attempt["outputs"] if o["kind"] != "checkpoint" or o.get("final")) or "-"
        steps = f"{attempt['start_step']}->{attempt['end_step'] if attempt['end_step'] is not None else '?'}"
        table.add_row(str(attempt["number"]), attempt["state"], attempt["pool"], steps, inputs, outputs)
    console.print(table)
