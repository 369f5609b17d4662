"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from labcore.errors import LabError
from service.schemas import StudyOut, TrialOut

if TYPE_CHECKING:
    from service.client import Client

DEFAULT_URL = "http://127.0.0.1:8000"

console = Console()
err_console = Console(stderr=True)

UrlOption = Annotated[
    str, typer.Option("--url", envvar="VRADAM_LAB_URL", help="The API's base URL.")
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="VRADAM_LAB_TOKEN",
        help="API token (or set VRADAM_LAB_TOKEN).",
        show_default=False,
        show_envvar=True,
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print the API's JSON document on stdout (nothing else) instead of a table.",
    ),
]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (default: VRADAM_LAB_DB_URL, VRADAM_LAB_DB, or sqlite:///vradam_lab.db).",
        show_default=False,
    ),
]


def db_url(db: str | None) -> str:
    """Return ``db`` or the configured default database URL."""
    if db:
        return db
    from service.settings import Settings

    return Settings().db_url


EXIT_FAILED = 1
EXIT_INTERRUPTED = 130  # the shell's convention for SIGINT


def _hint(e: LabError) -> str | None:
    """What to do next, for the errors a new user meets first."""
    from service.client import ConnectionFailed, Unauthorized

    if isinstance(e, Unauthorized):
        return (
            "set VRADAM_LAB_TOKEN (or pass --token) to a token from "
            "`vradam-hpo token create --name NAME`"
        )
    if isinstance(e, ConnectionFailed):
        return "is the service running? start one with `vradam-hpo serve`"
    return None


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Print a lab error once (with its fields and a hint) and exit 1; Ctrl-C exits 130."""
    try:
        yield
    except LabError as e:
        err_console.print(f"[bold red]error:[/] {e}", highlight=False)
        fields = getattr(e, "fields", None) or getattr(e, "errors", None) or []
        for path, message in fields:
            if f"{path}: {message}" not in str(e):
                err_console.print(f"  {path or '<root>'}: {message}", highlight=False)
        if (hint := _hint(e)) is not None:
            err_console.print(f"[dim]hint: {hint}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def exit_for_status(study_id: str, status: str, error: str | None) -> None:
    """Return if the study completed; otherwise say why and exit non-zero.

    Exit code 1 when it failed or was cancelled. A completed study whose ``error`` names failed
    trials is reported as a warning (exit 0).

    Raises:
        typer.Exit: The study did not complete.
    """
    if status == "completed":
        if error:
            err_console.print(f"[yellow]warning:[/] {error}", highlight=False)
        return
    if status == "failed":
        err_console.print(f"[bold red]study {study_id} failed:[/] {error}", highlight=False)
        raise typer.Exit(EXIT_FAILED)
    if status == "cancelled":
        err_console.print(f"[yellow]study {study_id} was cancelled[/]", highlight=False)
        raise typer.Exit(EXIT_FAILED)
    err_console.print(f"study {study_id} is {status}")
    raise typer.Exit(EXIT_FAILED)


def quiet_optuna() -> None:
    """Silence Optuna's per-study/per-trial INFO lines (it configures its own handler)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def client(url: str, token: str | None) -> Client:
    """Return an SDK client."""
    from service.client import Client

    return Client(url, token=token)


def study_table(studies: list[StudyOut]) -> Table:
    """A table of studies: id, name, status, progress, counts, elapsed."""
    table = Table(show_lines=False)
    for col in ("id", "name", "status", "progress", "running", "outcomes", "elapsed"):
        table.add_column(col)
    for s in studies:
        counts = " ".join(f"{k}={v}" for k, v in sorted(s.counts.items()))
        elapsed = f"{s.timings.elapsed_s:.1f}s" if s.timings.elapsed_s is not None else ""
        progress = f"{s.progress.n_finished}/{s.progress.n_planned}"
        running = str(s.progress.n_running)
        table.add_row(s.id, s.name, str(s.status), progress, running, counts, elapsed)
    return table


def cells_table(study: StudyOut) -> Table:
    """A table of a study's cells with their progress and outcome counts."""
    table = Table(title=f"study {study.id} ({study.name}): {study.status}")
    for col in ("cell", "task", "optimizer", "done", "running", "outcomes"):
        table.add_column(col)
    for c in study.progress.cells:
        counts = " ".join(f"{k}={v}" for k, v in sorted(c.counts.items()))
        done = f"{c.n_finished}/{c.n_planned}"
        table.add_row(str(c.id), c.task, c.optimizer, done, str(c.n_running), counts)
    return table


def trials_table(trials: list[TrialOut]) -> Table:
    """A table of trials: id, task, optimizer, hparams, seed, state/outcome, value, wall, device.

    A running trial shows ``running`` (and its latest epoch) where the outcome will be.
    """
    table = Table()
    cols = ("id", "task", "optimizer", "hparams", "seed", "outcome", "value", "wall", "device")
    for col in cols:
        table.add_column(col)
    for t in trials:
        hp = " ".join(f"{k}={_fmt(v)}" for k, v in sorted(t.hparams.items()))
        value = _fmt(t.value) if t.value is not None else ""
        ident = "" if t.id is None else str(t.id)
        outcome = str(t.outcome) if t.outcome is not None else "running"
        if t.outcome is None and t.epoch is not None:
            outcome += f" (epoch {t.epoch})"
        table.add_row(
            ident, t.task, t.optimizer, hp, str(t.seed), outcome, value,
            f"{t.wall_time_s:.2f}s", t.device or "",
        )  # fmt: skip
    return table


def _fmt(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def print_json(data: object) -> None:
    """Write one JSON document to stdout (indented; no colours, no wrapping)."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def is_tty() -> bool:
    """Whether stderr is a terminal (progress bars only then, by default)."""
    return sys.stderr.isatty()
