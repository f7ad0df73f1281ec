"""``neurfly server`` and the ``neurfly admin`` commands that manage users, teams and tokens on the store."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.table import Table

from neurfly.cli import ClusterOption, DbOption, JsonOption, _print_json, _store, app, console
from neurfly.errors import NeurflyError, NotFoundError

_logger = logging.getLogger(__name__)

T = TypeVar("T")

admin_app = typer.Typer(help="Manage users, teams and API tokens directly on the store.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")

UserOption = Annotated[str, typer.Option("--user", help="User name.")]
TeamOption = Annotated[str, typer.Option("--team", help="Team name.")]


@app.command()
def server(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port to listen on.")] = 8080,
    db: DbOption = None,
    cluster_file: ClusterOption = None,
    checkpoints: Annotated[str | None, typer.Option(help="Checkpoint folder or fsspec URL; default: $NEURFLY_HOME/checkpoints.")] = None,
    controller: Annotated[bool, typer.Option("--controller/--no-controller", help="Run the controller in this process when the lease is free.")] = True,
    max_body_bytes: Annotated[int, typer.Option(min=1024, help="Largest request body in bytes; larger ones get 413.")] = 1 << 20,
    stop_grace: Annotated[float, typer.Option(min=0.0, help="Seconds running trials get to checkpoint when the server stops.")] = 10.0,
    log_level: Annotated[str, typer.Option(help="Log level of the server: debug, info, warning or error.")] = "info",
    data_root: Annotated[list[Path] | None, typer.Option("--data-root", help="A folder whose files and DVC repositories API callers may register as dataset versions; repeat for several. Default: none.")] = None,
) -> None:
    """Serve the REST API and the dashboard, and run the controller.

    Only one controller drives a store. A server started while another holds
    the lease serves the API, and it takes over the controller when the other stops.
    """
    import uvicorn

    from neurfly.api import ApiSettings, ControllerSupervisor, create_app
    from neurfly.controller import ControllerSettings
    from neurfly.service import load_cluster
    from neurfly.store import default_home

    level = log_level.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise NeurflyError(f"--log-level {log_level!r} is invalid; use debug, info, warning or error")
    logging.getLogger("neurfly").setLevel(level)

    cluster = load_cluster(cluster_file)
    store = _store(db)
    supervisor = None
    if controller:
        settings = ControllerSettings(checkpoint_root=checkpoints or str(default_home() / "checkpoints"))
        supervisor = ControllerSupervisor(store, cluster, settings, stop_grace_s=stop_grace)
    roots = tuple(folder.expanduser().resolve() for folder in data_root or ())
    for folder in roots:
        if not folder.is_dir():
            raise NeurflyError(f"--data-root {folder} is not a folder; give an existing folder of data files")
    application = create_app(store, cluster, ApiSettings(max_body_bytes=max_body_bytes, data_roots=roots), supervisor)
    console.print(f"NeurFly server on http://{host}:{port}/ (dashboard at /dashboard/, API at /api/v1, OpenAPI document at /openapi.json)")
    uvicorn.run(application, host=host, port=port, log_level=log_level.lower(), access_log=level == "DEBUG")


# -- admin ----------------------------------------------------------------------------------------


@admin_app.command("create-token")
def create_token(
    user: UserOption,
    platform_admin: Annotated[bool, typer.Option("--platform-admin", help="Make the user a platform admin (creating the user if needed).")] = False,
    name: Annotated[str, typer.Option("--name", help="Label to tell the user's tokens apart.")] = "default",
    expires_in_days: Annotated[int, typer.Option(min=0, help="Lifetime in days; 0 for a token that never expires.")] = 90,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Issue an API token for a user and print it once.

    With --platform-admin the user is created if missing and made a platform
    admin: this is how the first administrator of a new server is made.
    """
    from neurfly.auth import create_user, get_user, issue_token

    store = _store(db)
    with store.session() as session:
        try:
            row = get_user(session, user)
        except NotFoundError:
            if not platform_admin:
                raise
            row = create_user(session, user, platform_admin=True)
        if platform_admin and not row.platform_admin:
            row.platform_admin = True
        issued = _checked(lambda: issue_token(session, user, name, expires_in_days * 86400.0 if expires_in_days else None))
        session.commit()

    if json_output:
        _print_json({"key_id": issued.key_id, "user": issued.user, "name": issued.name, "token": issued.token, "expires_at": issued.expires_at})
        return
    expiry = "never expires" if issued.expires_at is None else f"expires {time.strftime('%Y-%m-%d %H:%M', time.localtime(issued.expires_at))}"
    console.print(f"token {issued.key_id} for {user} ({expiry}); it is shown only now:")
    print(issued.token)


@admin_app.command("revoke-token")
def revoke(key_id: Annotated[str, typer.Argument(help="Key id of the token (the part after 'nf_').")], db: DbOption = None) -> None:
    """Revoke a token; requests with it fail from then on."""
    from neurfly.auth import revoke_token

    store = _store(db)
    with store.session() as session:
        revoke_token(session, key_id)
        session.commit()
    console.print(f"token {key_id} revoked")


@admin_app.command("list-tokens")
def list_tokens_command(
    user: Annotated[str | None, typer.Option("--user", help="Only tokens of this user.")] = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """List tokens (never their secrets)."""
    from neurfly.auth import get_user, list_tokens

    store = _store(db)
    with store.session() as session:
        user_id = get_user(session, user).id if user else None
        rows = list_tokens(session, user_id)
    now = time.time()
    records = [
        {
            "key_id": row.key_id, "user": owner, "name": row.name, "created_at": row.created_at, "expires_at": row.expires_at,
            "revoked_at": row.revoked_at, "last_used_at": row.last_used_at,
            "active": row.revoked_at is None and (row.expires_at is None or row.expires_at > now),
        }
        for row, owner in rows
    ]
    if json_output:
        _print_json(records)
        return
    table = Table(title="API tokens")
    for column in ("key id", "user", "name", "created", "expires", "state"):
        table.add_column(column)
    for record in records:
        state = "active"
        if not record["active"]:
            state = "revoked" if record["revoked_at"] else "expired"
        table.add_row(record["key_id"], record["user"], record["name"], _day(record["created_at"]), _day(record["expires_at"]), state)
    console.print(table)


@admin_app.command("add-user")
def add_user(
    name: Annotated[str, typer.Argument(help="User name: lowercase letters, digits, '.', '_' or '-'.")],
    platform_admin: Annotated[bool, typer.Option("--platform-admin", help="Make the user a platform admin.")] = False,
    db: DbOption = None,
) -> None:
    """Add a user (a person or a service account)."""
    from neurfly.auth import create_user

    store = _store(db)
    with store.session() as session:
        _checked(lambda: create_user(session, name, platform_admin))
        session.commit()
    console.print(f"user {name} added{' as platform admin' if platform_admin else ''}")


@admin_app.command("add-team")
def add_team(name: Annotated[str, typer.Argument(help="Team name, as search specs give it in 'team'.")], db: DbOption = None) -> None:
    """Register a team."""
    from neurfly.auth import create_team

    store = _store(db)
    with store.session() as session:
        _checked(lambda: create_team(session, name))
        session.commit()
    console.print(f"team {name} added")


@admin_app.command("add-member")
def add_member(
    team: TeamOption,
    user: UserOption,
    role: Annotated[str, typer.Option("--role", help="Role in the team: viewer, member or admin.")] = "member",
    db: DbOption = None,
) -> None:
    """Give a user a role in a team, registering the team if it is new."""
    from neurfly.auth import Role, create_team, get_team, set_member

    if role not in {r.value for r in Role}:
        raise NeurflyError(f"--role {role!r} is invalid; use viewer, member or admin")
    store = _store(db)
    with store.session() as session:
        try:
            get_team(session, team)
        except NotFoundError:
            _checked(lambda: create_team(session, team))
            console.print(f"team {team} added")
        set_member(session, team, user, Role(role))
        session.commit()
    console.print(f"{user} is {role} of team {team}")


@admin_app.command("remove-member")
def remove_member_command(team: TeamOption, user: UserOption, db: DbOption = None) -> None:
    """Take a user out of a team."""
    from neurfly.auth import remove_member

    store = _store(db)
    with store.session() as session:
        remove_member(session, team, user)
        session.commit()
    console.print(f"{user} removed from team {team}")


@admin_app.command("disable-user")
def disable_user(
    name: Annotated[str, typer.Argument(help="User to disable.")],
    enable: Annotated[bool, typer.Option("--enable", help="Enable the user again instead.")] = False,
    db: DbOption = None,
) -> None:
    """Disable a user, so that every request with its tokens gets 401; --enable reverses it."""
    from neurfly.auth import set_user_disabled

    store = _store(db)
    with store.session() as session:
        set_user_disabled(session, name, not enable)
        session.commit()
    console.print(f"user {name} {'enabled' if enable else 'disabled'}")


@admin_app.command("list-users")
def list_users_command(db: DbOption = None, json_output: JsonOption = False) -> None:
    """List users with their teams and roles."""
    from neurfly.auth import list_users, roles_of

    store = _store(db)
    with store.session() as session:
        records = [
            {"name": u.name, "platform_admin": u.platform_admin, "disabled": u.disabled, "teams": {t: r.value for t, r in sorted(roles_of(session, u.id).items())}}
            for u in list_users(session)
        ]
    if json_output:
        _print_json(records)
        return
    table = Table(title="Users")
    for column in ("user", "platform admin", "disabled", "teams"):
        table.add_column(column)
    for record in records:
        teams = ", ".join(f"{t} ({r})" for t, r in record["teams"].items()) or "-"
        table.add_row(record["name"], "yes" if record["platform_admin"] else "", "yes" if record["disabled"] else "", teams)
    console.print(table)


def _checked(action: Callable[[], T]) -> T:
    """Run ``action``, turning a ValueError (an invalid name) into a NeurflyError the CLI prints."""
    try:
        return action()
    except ValueError as exc:
        raise NeurflyError(str(exc)) from None


def _day(value: float | None) -> str:
    return "-" if value is None else time.strftime("%Y-%m-%d", time.localtime(value))


__all__ = ["admin_app", "server"]
