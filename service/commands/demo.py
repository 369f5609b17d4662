"""``vradam-hpo demo`` (what ``make demo`` runs): the whole service, end to end, on one machine.

Starts the embedded service (API + one worker) on a SQLite file (``./runs/demo.db`` by
default; ``--db`` to change), submits ``studies/definitions/demo.yaml`` through the SDK
with a fresh API token, waits with a progress bar, prints the result table, writes the
report to ``./reports/demo/`` and says where to look next, then stops the service.

Run again, it reuses the newest *completed* study of the same name and definition in
that database instead of running it again (it says so); ``--fresh`` runs a new one.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from labcore.errors import LabError
from service.commands._common import cli_errors, console, err_console, quiet_optuna

if TYPE_CHECKING:
    from studies.report import Report

DEMO_SPEC = Path(__file__).resolve().parents[2] / "studies" / "definitions" / "demo.yaml"
DEMO_DB = Path("runs") / "demo.db"
DEMO_OUT = Path("reports") / "demo"


INTERVALS_NOTE = (
    "ℓ*: mean over seeds at η*; \\[lo, hi]: 95% t interval over seeds (5 seeds or more); "
    "range lo…hi: the seeds' min and max (fewer than 5 seeds)"
)


def result_table(report: Report) -> Table:
    """One row per (task, optimizer), in the report's own words and number formats.

    The columns are the report's summary table's (``report.md``, ``report.html``): η*,
    ℓ* (source) with its interval over seeds (``[lo, hi]`` a 95% t interval from 5 seeds,
    ``range lo…hi`` the seeds' min and max below that), W0.1 (decades of learning rate
    with the grid bracket; ``≥``: it reaches the grid's edge), divergence LR (the
    smallest learning rate where half the seeds diverged) and the paired wins/ties/losses
    over (η, seed) against the baseline. Cells are formatted by the Markdown renderer's
    functions, so the numbers read the same in all three places.
    """
    from studies.report import render_md as md

    table = Table(
        title=f"learning-rate robustness ({report.metric}, {report.direction}; "
        f"baseline {report.baseline})",
        caption=INTERVALS_NOTE,
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    delta = 0.1
    columns = ("task", "optimizer", "η*", "ℓ* (source)", f"W{delta:g} (grid bracket)",
               "divergence LR", "wins/ties/losses (η, seed)")  # fmt: skip
    for col in columns:  # the names never shrink; long headers and intervals may wrap
        if col in ("task", "optimizer"):
            table.add_column(col, no_wrap=True)
        else:
            table.add_column(col, justify="right", overflow="fold")
    for task in report.tasks:
        for o in task.optimizers:
            basin = next((b for b in o.basins if abs(b.delta - delta) < 1e-9), None)
            table.add_row(
                task.task,
                o.optimizer,
                md.lr_str(o.lr_star),
                f"{md.est_str(o.best)} ({o.best_source})" if o.best else md.DASH,
                md.basin_str(basin),
                md.lr_str(o.divergence_lr),
                md.wtl(o.paired.overall) if o.paired else md.DASH,
            )
    return table


def demo(
    spec: Annotated[
        Path, typer.Option("--spec", help="Study definition to run.", exists=True, dir_okay=False)
    ] = DEMO_SPEC,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database URL (default: sqlite:///runs/demo.db)."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Report directory.")] = DEMO_OUT,
    port: Annotated[int, typer.Option(help="API port (0: any free port).")] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    fresh: Annotated[
        bool,
        typer.Option("--fresh", help="Run a new study even if an identical one already completed."),
    ] = False,
) -> None:
    """Run a study through the embedded service and write its report (or reuse one)."""
    quiet_optuna()
    if db is None:
        DEMO_DB.parent.mkdir(parents=True, exist_ok=True)
        db = f"sqlite:///{DEMO_DB}"
    if not fresh and _reuse_finished(spec, db, out):
        return
    _run_demo(spec, db, out, port, progress, timeout)


def _reuse_finished(spec: Path, db: str, out: Path) -> bool:
    """Report the newest completed study of this definition, if there is one.

    Returns:
        Whether one was found (and reported).

    Raises:
        typer.Exit: A lab error (printed once), e.g. an invalid definition.
    """
    from service.commands.run import find_resumable
    from service.embedded import safe_url
    from studies.report import build_report, write_report
    from studies.spec import load_spec
    from studies.store import open_store

    with cli_errors():
        store = open_store(db)
        try:
            store.create_schema()
            record = find_resumable(store, load_spec(spec))
            if record is None or record.status != "completed":
                return False
            report = build_report(store, record.id)
            paths = write_report(report, out)
        finally:
            store.close()
    when = f" on {record.finished_at:%Y-%m-%d %H:%M}" if record.finished_at else ""
    console.print(
        f"[bold green]VRAdam Lab demo[/]: reusing study [bold]{record.id}[/] ({record.name}), "
        f"completed{when} from the same definition in {safe_url(db)}; nothing was rerun "
        "(pass [bold]--fresh[/] to run it again)",
        soft_wrap=True,
    )
    console.print(result_table(report))
    _where_next(record.id, db, out, paths)
    return True


def _run_demo(
    spec: Path, db: str, out: Path, port: int, progress: bool, timeout: float | None
) -> None:
    """Start the embedded service, submit ``spec``, wait, write and print the report."""
    from service.client import Client
    from service.embedded import EmbeddedService, safe_url
    from service.settings import Settings
    from studies.report import build_report, write_report

    settings = Settings(
        db_url=db, host="127.0.0.1", port=port, local_mode=True, poll_seconds=0.5,
        heartbeat_seconds=1.0,
    )  # fmt: skip
    with cli_errors():
        service = EmbeddedService(settings).start()
        token_name = f"demo-{uuid.uuid4().hex[:8]}"
        try:
            console.print(
                f"[bold green]VRAdam Lab demo[/]: API on {service.url} "
                f"(docs at {service.docs_url} while the demo runs), database {safe_url(db)}",
                soft_wrap=True,
            )
            _, secret = service.store.create_token(token_name, ("read", "write"))
            with Client(service.url, token=secret) as client:
                study = client.submit(spec)
                console.print(
                    f"submitted study [bold]{study.id}[/] ({study.name}) from {spec}",
                    soft_wrap=True,
                )
                final = client.wait(study.id, progress=progress, timeout=timeout)
            report = build_report(service.store, final.id)
            paths = write_report(report, out)
        finally:
            with contextlib.suppress(LabError):
                service.store.revoke_token(token_name)
            service.stop()
    counts = " ".join(f"{k}={v}" for k, v in sorted(final.counts.items()))
    console.print(
        f"study {final.id}: [bold]{final.status}[/] in {final.timings.elapsed_s or 0:.1f} s "
        f"({counts})"
    )
    console.print(result_table(report))
    _where_next(final.id, db, out, paths)
    if final.status != "completed":
        err_console.print(f"[red]the study ended {final.status}[/]: {final.error or ''}")
        raise typer.Exit(1)


def _where_next(study_id: str, db: str, out: Path, paths: dict[str, Path]) -> None:
    from service.embedded import safe_url

    shown = safe_url(db)
    files = ", ".join(p.name for p in paths.values())
    for line in (
        "\n[bold]Where to look next[/]",
        f"  report:     {paths['html']}  ({files} in {out})",
        f"  API + docs: vradam-hpo serve --db {shown}  then open http://127.0.0.1:8000/docs",
        f"  dashboard:  vradam-hpo dashboard --db {shown}  (Optuna dashboard, every cell)",
        f"  re-report:  vradam-hpo report {study_id} --db {shown} --out DIR",
    ):
        console.print(line, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""
    app.command()(demo)
