"""``vradam-hpo serve`` (API + one worker) and ``vradam-hpo worker`` (a worker alone)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import typer

from service.commands._common import DbOption, cli_errors, db_url, err_console, quiet_optuna

if TYPE_CHECKING:
    from service.settings import Settings

LeaseOption = Annotated[
    float | None, typer.Option(help="Lease seconds (default: VRADAM_LAB_LEASE_SECONDS or 30).")
]


def _settings(**overrides: object) -> Settings:
    from pydantic import ValidationError

    from service.settings import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        err_console.print(f"[red]error:[/] invalid settings: {e}")
        raise typer.Exit(2) from None


def _log_setup() -> None:
    """Log the service's and the engine's INFO lines (Optuna's per-trial lines stay off)."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("service", "studies"):
        logging.getLogger(name).setLevel(logging.INFO)
    quiet_optuna()


def serve(
    db: DbOption = None,
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default: VRADAM_LAB_HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port, 0 for any free one (default: VRADAM_LAB_PORT or 8000)."),
    ] = None,
    local: Annotated[
        bool | None,
        typer.Option(
            "--local/--no-local",
            help="Serve reads without a token, only on a loopback address "
            "(default: VRADAM_LAB_LOCAL_MODE, else on).",
        ),
    ] = None,
    worker: Annotated[bool, typer.Option(help="Run one in-process worker.")] = True,
    lease_seconds: LeaseOption = None,
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster address.")] = None,
) -> None:
    """Start the API and one in-process worker (SQLite file by default, 127.0.0.1).

    Options left out fall back to the ``VRADAM_LAB_*`` settings; local mode is on unless
    ``--no-local`` or ``VRADAM_LAB_LOCAL_MODE=false`` turns it off.
    """
    from service.embedded import serve as run_serve

    _log_setup()
    if local is None and not _env_set("VRADAM_LAB_LOCAL_MODE"):
        local = True
    settings = _settings(
        db_url=db_url(db),
        host=host,
        port=port,
        local_mode=local,
        lease_seconds=lease_seconds,
        ray_address=ray_address,
    )
    with cli_errors():
        try:
            run_serve(settings, with_worker=worker)
        except RuntimeError as e:  # e.g. the port is taken
            err_console.print(f"[red]error:[/] {e}")
            raise typer.Exit(1) from None


def _env_set(name: str) -> bool:
    """Whether an environment variable is set (case-insensitively, as pydantic-settings reads)."""
    import os

    return any(k.upper() == name for k in os.environ)


def worker(
    db: DbOption = None,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster address (default: a local Ray).")
    ] = None,
    worker_id: Annotated[
        str | None, typer.Option(help="Unique id (default: host:pid:rnd).")
    ] = None,
    lease_seconds: LeaseOption = None,
    heartbeat_seconds: Annotated[float | None, typer.Option(help="Heartbeat period.")] = None,
    poll_seconds: Annotated[float | None, typer.Option(help="Idle poll period.")] = None,
    exit_when_idle: Annotated[
        bool, typer.Option(help="Exit when no study is queued instead of polling.")
    ] = False,
) -> None:
    """Claim queued studies and run them, until SIGTERM/SIGINT (a running study is requeued)."""
    from service.worker import Worker, run_worker_process
    from studies.store import open_store

    _log_setup()
    settings = _settings(
        db_url=db_url(db),
        lease_seconds=lease_seconds,
        heartbeat_seconds=heartbeat_seconds,
        poll_seconds=poll_seconds,
        ray_address=ray_address,
    )
    with cli_errors():
        store = open_store(settings.db_url)
        try:
            store.create_schema()
            w = Worker(
                store,
                worker_id=worker_id,
                lease_seconds=settings.lease_seconds,
                heartbeat_seconds=settings.heartbeat_seconds,
                poll_seconds=settings.poll_seconds,
                ray_address=settings.ray_address,
                trust=settings.trust(),
            )
            run_worker_process(w, exit_when_idle=exit_when_idle)
        finally:
            store.close()


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``worker`` to ``app``."""
    app.command()(serve)
    app.command()(worker)
