"""``vradam-hpo report``: write a study's robustness report (JSON, Markdown, HTML, PNG, SVG)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.commands._common import DbOption, cli_errors, console, db_url


def report(
    study_id: Annotated[str, typer.Argument(help="The study's id.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write report.* into.")],
    db: DbOption = None,
    baseline: Annotated[str, typer.Option(help="Optimizer to compare against.")] = "adamw",
) -> None:
    """Build the study's report from the database and write it to a directory."""
    from studies.report import build_report, write_report
    from studies.store import open_store

    with cli_errors():
        store = open_store(db_url(db))
        try:
            paths = write_report(build_report(store, study_id, baseline=baseline), out)
        finally:
            store.close()
    for fmt, path in paths.items():
        console.print(f"{fmt:>4}: {path}")


def register(app: typer.Typer) -> None:
    """Add ``report`` to ``app``."""
    app.command()(report)
