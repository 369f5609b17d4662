"""``vradam-hpo dashboard``: the Optuna dashboard on the service's database.

Every cell of every study is an Optuna study named ``<study>/<task>/<optimizer>`` in the
same database, so the dashboard shows them all, with seeds and outcomes as user
attributes.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from service.commands._common import DbOption, db_url, err_console, quiet_optuna


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
    _ensure_optuna_schema(url)  # optuna-dashboard fails on a database without its tables
    err_console.print(f"Optuna dashboard on http://{host}:{port}/ (Ctrl+C to stop)")
    raise typer.Exit(run_child(cmd))


def _ensure_optuna_schema(url: str) -> None:
    """Create Optuna's tables if the database has none yet (a fresh service database)."""
    import optuna

    quiet_optuna()
    optuna.storages.RDBStorage(url).remove_session()


def run_child(cmd: list[str], grace_s: float = 10.0) -> int:
    """Run ``cmd`` until it exits; SIGTERM or Ctrl-C here stops it too.

    SIGTERM is forwarded to the child (a plain ``subprocess.call`` would leave it running,
    orphaned, when this process is terminated); one that does not stop within ``grace_s``
    is killed.

    Returns:
        The child's exit status, or 0 when it was stopped on request.
    """
    proc = subprocess.Popen(cmd)
    asked = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal asked
        asked = True
        if proc.poll() is None:
            proc.terminate()

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        rc = proc.wait()
    except KeyboardInterrupt:  # the terminal sent SIGINT to the child too
        asked = True
        rc = 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return 0 if asked else rc


def register(app: typer.Typer) -> None:
    """Add ``dashboard`` to ``app``."""
    app.command()(dashboard)
