"""``vradam-hpo report``: write a study's robustness report (JSON, Markdown, HTML, PNG, SVG)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from labcore.errors import NotFoundError
from service.commands._common import DbOption, cli_errors, console, db_url

if TYPE_CHECKING:
    from studies.store import Store


def report(
    study: Annotated[
        str,
        typer.Argument(
            help="A study's id, or a study definition (YAML/JSON) whose newest study "
            "of that name and definition is reported."
        ),
    ],
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
            study_id = _resolve_study_id(store, study)
            paths = write_report(build_report(store, study_id, baseline=baseline), out)
        finally:
            store.close()
    for fmt, path in paths.items():
        console.print(f"{fmt:>4}: {path}")


def _resolve_study_id(store: Store, study: str) -> str:
    """Return ``study`` itself, or the id of the newest study run from that definition file.

    Raises:
        NotFoundError: If the definition has never been run on this database.
        SpecError: If the file is not a valid study definition.
    """
    path = Path(study)
    if path.suffix.lower() not in (".yaml", ".yml", ".json") or not path.is_file():
        return study
    from service.commands.run import find_resumable
    from studies.spec import load_spec

    record = find_resumable(store, load_spec(path))
    if record is None:
        raise NotFoundError(f"no study in this database was run from {path}")
    return record.id


def register(app: typer.Typer) -> None:
    """Add ``report`` to ``app``."""
    app.command()(report)
