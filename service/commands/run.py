"""``vradam-hpo run STUDY.yaml``: run a study in this process, straight on the store.

No API server: the engine runs here with the local or the Ray executor, with a progress
bar (trials done/total, best so far, elapsed, ETA) and a summary table at the end.
Running the same definition again resumes the newest unfinished study of that name and
definition (the executor section may differ): finished trials are not run again.
Ctrl-C stops gracefully (the study is marked cancelled and resumes on the next run); a
second Ctrl-C aborts at once.

The study is held like a service worker holds one: with a lease (worker id
``cli:<host>:<pid>``) renewed by a heartbeat thread, which also picks up a
``vradam-hpo cancel``. A study another process holds under a live lease is never resumed
here; one whose holder died (``kill -9``) resumes once its lease has expired.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from labcore.errors import LabError
from service.commands._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    DbOption,
    cli_errors,
    console,
    db_url,
    err_console,
    exit_for_status,
)

if TYPE_CHECKING:
    from studies.engine import ProgressEvent, StudySummary
    from studies.runner import RunReport, StudyRunner
    from studies.spec import StudySpec
    from studies.store import Store, StudyRecord
    from studies.trust import Trust

logger = logging.getLogger(__name__)

LEASE_SECONDS = 30.0
HEARTBEAT_SECONDS = 5.0


def local_trust() -> Trust:
    """:data:`~studies.trust.LOCAL` with relative data folders under the data root.

    A ``data_dir: cifar10`` means ``$VRADAM_LAB_DATA_ROOT/cifar10`` (default
    ``data/cifar10``) here exactly as on a service worker, which is where
    ``vradam-hpo data download cifar10`` puts it; absolute paths stay as they are.
    """
    from dataclasses import replace

    from service.settings import Settings
    from studies.trust import LOCAL

    return replace(LOCAL, data_root=Settings().data_root)


def cli_worker_id() -> str:
    """``cli:<host>:<pid>``: the worker id a ``run`` process holds its study under."""
    return f"cli:{socket.gethostname()}:{os.getpid()}"


def held_elsewhere(record: StudyRecord, now: datetime | None = None) -> bool:
    """Whether another process runs ``record`` under a lease that has not expired."""
    now = now or datetime.now(UTC)
    return (
        record.status == "running"
        and record.worker_id is not None
        and record.lease_expires_at is not None
        and record.lease_expires_at > now
    )


def _comparable(spec: dict[str, Any]) -> dict[str, Any]:
    """The parts of a spec that decide its results (not where trials run).

    Sections added to the definition later are left out while at their defaults, so a
    study stored before they existed is still found by its definition.
    """
    from studies.spec import StudySpec

    defaults = StudySpec.model_fields
    out = {k: v for k, v in spec.items() if k != "executor"}
    for key in ("analysis", "confirmation"):
        field = defaults.get(key)
        if key in out and field is not None and out[key] == _default_json(field):
            del out[key]
    return out


def _default_json(field: Any) -> Any:
    value = field.get_default(call_default_factory=True)
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def find_resumable(
    store: Store, spec: StudySpec, on_skip: Callable[[StudyRecord], None] | None = None
) -> StudyRecord | None:
    """The newest study with this name and definition (executor aside), if any.

    Studies that another process holds under a live lease are skipped (``on_skip`` is
    called with each).
    """
    want = _comparable(spec.to_dict())
    offset = 0
    while True:
        page, total = store.list_studies(limit=200, offset=offset)
        for record in page:
            if record.name == spec.name and _comparable(record.spec) == want:
                if not held_elsewhere(record):
                    return record
                if on_skip is not None:
                    on_skip(record)
        offset += len(page)
        if not page or offset >= total:
            return None


def summary_table(summary: StudySummary) -> Table:
    """Per cell: trials by outcome, best learning rate and best value (mean over seeds)."""
    table = Table(
        title=f"study {summary.study_id} ({summary.name}): {summary.status}, "
        f"{summary.n_run} trials run now in {summary.elapsed_s:.1f}s",
        caption="n: trials planned; ok = complete, div = diverged; best lr and its "
        "metric: mean over seeds (a divergence counts as the initial value)",
    )
    table.add_column("task", no_wrap=True)
    table.add_column("optimizer", no_wrap=True)
    table.add_column("n", justify="right")
    table.add_column("ok/div/pruned/failed", justify="right", no_wrap=True)
    table.add_column("best lr", justify="right", no_wrap=True)
    table.add_column(summary.metric, justify="right", no_wrap=True)
    for c in summary.cells:
        table.add_row(
            c.cell.task,
            c.cell.optimizer,
            str(c.cell.n_planned),
            "/".join(str(c.counts.get(k, 0)) for k in ("complete", "diverged", "pruned", "failed")),
            f"{c.best_lr:.3g}" if c.best_lr is not None else "",
            f"{c.best_value:.4g}" if c.best_value is not None else "",
        )
    return table


class _Interrupt:
    """First SIGINT asks the engine to stop; the second raises KeyboardInterrupt."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: Any = None

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        err_console.print("[yellow]stopping after the running trials (Ctrl-C again to abort)")
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def run(
    study: Annotated[
        Path, typer.Argument(help="Study definition (YAML or JSON).", exists=True, dir_okay=False)
    ],
    db: DbOption = None,
    executor: Annotated[
        str | None,
        typer.Option("--executor", help="local or ray (default: the definition's)."),
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="Ray cluster address (default: local).")
    ] = None,
    max_concurrent: Annotated[
        int | None, typer.Option("--max-concurrent", min=1, help="Trials at a time.")
    ] = None,
    new: Annotated[
        bool, typer.Option("--new", help="Start a new study instead of resuming one.")
    ] = False,
    lease_seconds: Annotated[
        float, typer.Option("--lease-seconds", min=0.1, hidden=True, help="Lease length.")
    ] = LEASE_SECONDS,
    heartbeat_seconds: Annotated[
        float, typer.Option("--heartbeat-seconds", min=0.01, hidden=True, help="Renewal period.")
    ] = HEARTBEAT_SECONDS,
) -> None:
    """Run (or resume) a study here, on the local or the Ray executor."""
    from studies.engine import summarize
    from studies.executors import build_executor
    from studies.limits import check_limits
    from studies.runner import StudyRunner
    from studies.spec import parse_spec
    from studies.store import StudyStatus, open_store
    from studies.trust import LOCAL

    logging.getLogger("optuna").setLevel(logging.WARNING)
    with cli_errors():
        spec = parse_spec(study, trust=LOCAL)  # your own definition: your code, your paths
        updates: dict[str, Any] = {}
        if executor is not None:
            if executor not in ("local", "ray"):
                raise typer.BadParameter("use 'local' or 'ray'", param_hint="--executor")
            updates["name"] = executor
        if max_concurrent is not None:
            updates["max_concurrent"] = max_concurrent
        if ray_address is not None:
            updates["name"] = "ray"
        if updates:
            spec = spec.with_executor(**updates)  # validated like the file itself
        check_limits(spec)  # the same limits a service applies, by default
        if heartbeat_seconds >= lease_seconds:
            raise typer.BadParameter("must be below --lease-seconds", param_hint="--heartbeat")
        store = open_store(db_url(db))
        store.create_schema()

        def skipped(record: StudyRecord) -> None:
            until = record.lease_expires_at.isoformat(timespec="seconds")  # type: ignore[union-attr]
            console.print(
                f"study {record.id} is running under {record.worker_id} (lease until {until}): "
                "not resuming it"
            )

        previous = None if new else find_resumable(store, spec, on_skip=skipped)
        if previous is not None and previous.status == StudyStatus.COMPLETED:
            console.print(f"study {previous.id} ({spec.name}) is already complete (--new to rerun)")
            console.print(summary_table(summarize(spec, store, previous.id)))
            return
        if previous is None:
            previous = store.create_study(spec.name, spec.to_dict())
        else:
            console.print(f"resuming study {previous.id} ({previous.status})")
        runner = StudyRunner(
            store,
            cli_worker_id(),
            lease_seconds=lease_seconds,
            heartbeat_seconds=heartbeat_seconds,
            on_stop=StudyStatus.CANCELLED,  # Ctrl-C: the next run resumes it
        )
        record = runner.acquire(previous.id)  # ConflictError: another process holds it
        spec = local_trust().resolve(spec)  # absolute data paths: trials may run elsewhere

        def on_wait(note: str | None) -> None:
            if note is not None:
                err_console.print(f"[yellow]{note}")
            store.set_note(record.id, runner.worker_id, note)

        report, interrupted = _run_with_progress(
            runner,
            record,
            spec,
            lambda s: build_executor(s.executor, ray_address=ray_address, on_wait=on_wait),
        )
        if report.summary is not None:
            console.print(summary_table(report.summary))
            for line in report.summary.disclosures:
                console.print(f"[dim]note: {line}")
        if report.exception is not None and isinstance(report.exception, LabError):
            raise report.exception  # printed once by cli_errors
    if report.status is None:
        err_console.print(f"[yellow]study {record.id} was left as it is: {report.error}")
        raise typer.Exit(EXIT_FAILED)
    if report.status == StudyStatus.CANCELLED:
        console.print("stopped early: run the same command again to resume")
        if interrupted:
            raise typer.Exit(EXIT_INTERRUPTED)
    exit_for_status(record.id, report.status, report.error)


def _run_with_progress(
    runner: StudyRunner, record: StudyRecord, spec: StudySpec, make_executor: Any
) -> tuple[RunReport, bool]:
    """Run the held study through ``runner`` with a progress bar and Ctrl-C handling.

    Returns:
        The runner's report, and whether Ctrl-C stopped the run.
    """
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("best {task.fields[best]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as bar:
        task_id = bar.add_task(spec.name, total=None, best="-")

        def on_progress(e: ProgressEvent) -> None:
            best = f"{e.best_value:.4g} ({e.best_cell})" if e.best_value is not None else "-"
            if e.record is None:  # start (or resume): the ETA counts from here
                bar.reset(task_id, total=e.total, completed=e.done, best=best)
            else:
                bar.update(task_id, total=e.total, completed=e.done, best=best)

        with _Interrupt() as interrupt:
            report = runner.run(
                record,
                spec,
                make_executor,
                progress=on_progress,
                should_stop=interrupt.event.is_set,
            )
    return report, interrupt.event.is_set()


def register(app: typer.Typer) -> None:
    """Add ``run`` to ``app``."""
    app.command()(run)
