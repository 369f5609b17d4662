"""``vradam-hpo token create|list|revoke``: API tokens, managed on the database directly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from service.commands._common import DbOption, cli_errors, console, db_url, err_console

if TYPE_CHECKING:
    from studies.store import Store

app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


def _store(db: str | None) -> Store:
    from studies.store import open_store

    store = open_store(db_url(db))
    store.create_schema()
    return store


@app.command()
def create(
    name: Annotated[str, typer.Option("--name", help="Unique name of the token.")],
    db: DbOption = None,
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="read and/or write (repeat; default: both)."),
    ] = None,
) -> None:
    """Create a token and print its secret (shown only this once)."""
    from service.auth import SCOPES

    scopes = tuple(dict.fromkeys(scope or SCOPES))
    bad = [s for s in scopes if s not in SCOPES]
    if bad:
        err_console.print(f"[red]error:[/] unknown scope(s) {bad}; use {list(SCOPES)}")
        raise typer.Exit(2)
    with cli_errors():
        store = _store(db)
        try:
            record, secret = store.create_token(name, scopes)
        finally:
            store.close()
    err_console.print(
        f"created token [bold]{record.name}[/] with scopes {','.join(record.scopes)}; "
        "store it now, it is not shown again:"
    )
    print(secret)


@app.command("list")
def list_(db: DbOption = None) -> None:
    """List tokens (names, scopes, dates; never secrets)."""
    with cli_errors():
        store = _store(db)
        try:
            tokens = store.list_tokens()
        finally:
            store.close()
    table = Table()
    for col in ("name", "scopes", "created", "last used", "revoked"):
        table.add_column(col)
    for t in tokens:
        table.add_row(
            t.name,
            ",".join(t.scopes),
            f"{t.created_at:%Y-%m-%d %H:%M}",
            f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "",
            f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "",
        )
    console.print(table)


@app.command()
def revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")], db: DbOption = None
) -> None:
    """Revoke a token: it is refused from now on."""
    with cli_errors():
        store = _store(db)
        try:
            store.revoke_token(name)
        finally:
            store.close()
    console.print(f"revoked token {name}")


def register(root: typer.Typer) -> None:
    """Add ``token`` to ``root``."""
    root.add_typer(app, name="token")
