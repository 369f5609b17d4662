"""``vradam-hpo dashboard``: the Optuna dashboard on the service's database.

Every cell of every study is an Optuna study named ``<study>/<task>/<optimizer>`` in the
same database, so the dashboard shows them all, with seeds and outcomes as user
attributes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from service.commands._common import DbOption, db_url, err_console


def dashboard_command(url: str, host: str, port: int) -> list[str]:
    """Return the ``optuna-dashboard`` command line for a database URL.

    Raises:
        FileNotFoundError: optuna-dashboard is not installed.
    """
    local = Path(sys.executable).with_name("optuna-dashboard")
    exe = str(local) if local.exists() else shutil.which("optuna-dashboard")
    if exe is None:
        raise FileNotFoundError("optuna-dashboard is not installed (pip install optuna-dashboard)")
    return [exe, url, "--host", host, "--port", str(port)]


def dashboard(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
    print_only: Annotated[
        bool, typer.Option("--print-only", help="Print the command instead of running it.")
    ] = False,
) -> None:
    """Launch optuna-dashboard on the same database URL as the service."""
    from studies.store.sql import normalize_url

    url = normalize_url(db_url(db))
    try:
        cmd = dashboard_command(url, host, port)
    except FileNotFoundError as e:
        err_console.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from None
    if print_only:
        print(" ".join(cmd))
        return
    err_console.print(f"Optuna dashboard on http://{host}:{port}/ (Ctrl+C to stop)")
    try:
        rc = subprocess.call(cmd)
    except KeyboardInterrupt:
        rc = 0
    raise typer.Exit(rc)


def register(app: typer.Typer) -> None:
    """Add ``dashboard`` to ``app``."""
    app.command()(dashboard)
