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


def result_table(report: Report) -> Table:
    """One row per (task, optimizer): η*, ℓ* with its interval, basin width, divergence, wins.

    ``diverges`` is the smallest learning rate where half the seeds diverged; ``W(0.1)``
    is the basin width in decades of learning rate (``+``: it reaches the
    grid's edge, so the true width is larger); ``win rate`` is the paired share of
    (learning rate, seed) pairs where the optimizer beat the baseline, ties left out
    (empty when every pair tied). The interval after ℓ* is a 95% t interval over seeds
    from 5 seeds up, and the seeds' range ``[min, max]`` below that.
    """
    table = Table(
        title=f"learning-rate robustness ({report.metric}, {report.direction}; "
        f"baseline {report.baseline})",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for col in ("task", "optimizer", "η*", "ℓ*", "W(0.1)", "diverges", "win rate"):
        justify = "left" if col in ("task", "optimizer") else "right"
        table.add_column(col, justify=justify, no_wrap=True)
    for task in report.tasks:
        for o in task.optimizers:
            best = ""
            if o.best is not None:
                best = f"{o.best.mean:.4g}"
                if o.best.lo is not None and o.best.hi is not None:
                    label = "range " if o.best.kind == "range" else ""
                    best += f" [{label}{o.best.lo:.3g}, {o.best.hi:.3g}]"
            basin = next((b for b in o.basins if abs(b.delta - 0.1) < 1e-9), None)
            width = f"{basin.width:.2f}{'+' if basin.open_ended else ''}" if basin else ""
            overall = o.paired.overall if o.paired else None
            table.add_row(
                task.task,
                o.optimizer,
                f"{o.lr_star:.3g}" if o.lr_star is not None else "",
                best,
                width,
                f"{o.divergence_lr:.3g}" if o.divergence_lr is not None else "none",
                f"{overall.win_rate:.0%}"
                if overall is not None and overall.win_rate is not None
                else "",
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
