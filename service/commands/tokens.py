"""``vradam-hpo token create|list|revoke``: API tokens, managed on the database directly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from service.commands._common import (
    DbOption,
    JsonOption,
    cli_errors,
    console,
    db_url,
    err_console,
    print_json,
)

if TYPE_CHECKING:
    from datetime import datetime

    from studies.store import Store
    from studies.store.records import TokenRecord

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
def list_(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List tokens (names, scopes, dates; never secrets)."""
    with cli_errors():
        store = _store(db)
        try:
            tokens = store.list_tokens()
        finally:
            store.close()
    if as_json:
        print_json([_token_json(t) for t in tokens])
        return
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


def _token_json(t: TokenRecord) -> dict[str, object]:
    def when(d: datetime | None) -> str | None:
        return d.isoformat() if d is not None else None

    return {
        "name": t.name,
        "scopes": list(t.scopes),
        "created_at": when(t.created_at),
        "last_used_at": when(t.last_used_at),
        "revoked_at": when(t.revoked_at),
    }


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
