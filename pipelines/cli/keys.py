"""Commands for the scoring service's API keys: create, list, revoke (`register(app)`)."""

from __future__ import annotations

import getpass
from typing import Annotated

import pandas as pd
import typer

from pipelines.cli.render import console, table
from pipelines.settings import get_settings
from pipelines.usecases import access
from pipelines.usecases.preflight import check_store

DB_HELP = "Results store URL (default: CREDITRISK_DATABASE_URL, else .creditrisk/results.db)."
DatabaseUrl = Annotated[str | None, typer.Option("--database-url", help=DB_HELP)]
User = Annotated[
    str | None,
    typer.Option("--user", "-u", help="Who you are (recorded in the audit log; default: login)."),
]
ROLE_HELP = (
    "What the key may do: viewer (read), scorer (and score), officer (and acknowledge or resolve "
    "warnings, override limits), admin (everything, with reload and keys)."
)

keys_app = typer.Typer(
    help=(
        "API keys of the scoring service: create (the key is printed once), list, revoke. "
        "The store keeps only a hash of each key; a revoked key stops working within "
        "5 seconds of a running service."
    ),
    no_args_is_help=True,
)


def _engine(url: str | None, *, create: bool):
    if url:
        return check_store(url, create=create, named="--database-url")
    return check_store(get_settings().results_url, create=create)


def _user(user: str | None) -> str:
    if user:
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _when(value) -> str:
    return "" if value is None or pd.isna(value) else f"{value:%Y-%m-%d %H:%M:%S}"


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="A name for the key (who or what uses it).")],
    role: Annotated[str, typer.Option("--role", "-r", help=ROLE_HELP)],
    user: User = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Make a key; its token is printed once, alone on the last line (`| tail -1` gives it).
    Creates the results store if there is none yet."""
    access.check_role(role)
    created = access.create_key(_engine(database_url, create=True), name, role, _user(user))
    key = created.key
    console.print(
        f"key {key.name!r} created: role {key.role}, prefix {key.prefix}, by {key.created_by}",
        soft_wrap=True,
        highlight=False,
    )
    console.print(
        "store it now, it is not shown again; send it in the X-API-Key header:",
        soft_wrap=True,
        highlight=False,
    )
    typer.echo(created.token)


@keys_app.command("list")
def keys_list(
    active: Annotated[bool, typer.Option("--active", help="Only keys not revoked.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """List the keys, oldest first: name, role, prefix, who made them and when, revoked, last
    used (times in UTC). Never the keys or their hashes."""
    keys = access.list_keys(_engine(database_url, create=False), include_revoked=not active)
    if not keys:
        console.print("no API keys yet; `creditrisk keys create NAME --role ROLE` makes one")
        return
    frame = pd.DataFrame(
        {
            "name": [k.name for k in keys],
            "role": [k.role for k in keys],
            "prefix": [k.prefix for k in keys],
            "created (UTC)": [_when(k.created_at) for k in keys],
            "by": [k.created_by for k in keys],
            "revoked (UTC)": [
                f"{_when(k.revoked_at)} by {k.revoked_by}" if k.revoked_at else "" for k in keys
            ],
            "last used (UTC)": [_when(k.last_used_at) for k in keys],
        }
    )
    n_active = sum(k.active for k in keys)
    console.print(table(frame, f"{len(keys)} API keys, {n_active} active"))


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The key's name (see `keys list`).")],
    user: User = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke a key: a running service refuses it within 5 seconds (its key ring's reload)."""
    key = access.revoke_key(_engine(database_url, create=False), name, _user(user))
    console.print(
        f"key {key.name!r} (prefix {key.prefix}) revoked by {key.revoked_by}",
        soft_wrap=True,
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add the `keys` command group to the CLI."""
    app.add_typer(keys_app, name="keys")
