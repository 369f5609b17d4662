"""``vradam-hpo report``: write a study's robustness report (JSON, Markdown, HTML, PNG, SVG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from labcore.errors import NotFoundError
from service.commands._common import DbOption, TokenOption, cli_errors, console, db_url

REPORT_FORMATS = ("json", "md", "html", "png", "svg")

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
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Read the report through this API instead of a database "
            "(the study must be an id; with --token or VRADAM_LAB_TOKEN).",
            show_default=False,
        ),
    ] = None,
    token: TokenOption = None,
    baseline: Annotated[str, typer.Option(help="Optimizer to compare against.")] = "adamw",
) -> None:
    """Write a study's report (JSON, Markdown, HTML, PNG, SVG) from a database or the API."""
    if url is not None and db is not None:
        raise typer.BadParameter("use one of --db and --url", param_hint="--url")
    if url is not None:
        with cli_errors():
            paths = _report_via_api(url, token, study, out, baseline)
        for fmt, path in paths.items():
            console.print(f"{fmt:>4}: {path}")
        return
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


def _report_via_api(
    url: str, token: str | None, study_id: str, out: Path, baseline: str
) -> dict[str, Path]:
    """Fetch every format of the study's report from the API; write ``out/report.*``.

    Raises:
        NotFound: No such study on that server.
        ClientError: Any other failed request.
    """
    from service.client import Client

    paths: dict[str, Path] = {}
    with Client(url, token=token) as c:
        c.get(study_id)  # a clear 404 before anything is written
        out.mkdir(parents=True, exist_ok=True)
        for fmt in REPORT_FORMATS:
            body = c.report(study_id, fmt, baseline=baseline)
            path = out / f"report.{fmt}"
            if isinstance(body, bytes):
                path.write_bytes(body)
            elif isinstance(body, str):
                path.write_text(body, encoding="utf-8")
            else:
                path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
            paths[fmt] = path
    return paths


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
