"""Study commands through the API: submit, status, list, trials, wait, cancel, delete."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from service.commands._common import (
    DEFAULT_URL,
    JsonOption,
    TokenOption,
    UrlOption,
    cells_table,
    cli_errors,
    client,
    console,
    err_console,
    exit_for_status,
    is_tty,
    print_json,
    study_table,
    trials_table,
)

StudyId = Annotated[str, typer.Argument(help="The study's id.")]


def submit(
    spec: Annotated[Path, typer.Argument(help="Study definition (YAML or JSON).")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until it finishes.")] = False,
) -> None:
    """Submit a study definition to the service; print its id on stdout."""
    with cli_errors(), client(url, token) as c:
        study = c.submit(spec)
        err_console.print(f"submitted study [bold]{study.id}[/] ({study.name}): {study.status}")
        print(study.id)
        if wait:
            study = c.wait(study.id, progress=is_tty())
            err_console.print(cells_table(study))
    if wait:
        exit_for_status(study.id, study.status, study.error)


def status(
    study_id: StudyId,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a study's status, progress per cell and outcome counts."""
    with cli_errors(), client(url, token) as c:
        if as_json:
            print_json(c.get_json(f"/studies/{study_id}"))
            return
        study = c.get(study_id)
    console.print(cells_table(study))
    if study.note:
        console.print(f"[yellow]{study.status}:[/] {study.note}")
    if study.error:
        label = "warning" if study.status == "completed" else "error"
        console.print(f"[red]{label}:[/] {study.error}")


def list_(
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: JsonOption = False,
) -> None:
    """List studies, newest first."""
    with cli_errors(), client(url, token) as c:
        if as_json:
            params = {"status": status, "limit": limit, "offset": offset}
            print_json(c.get_json("/studies", params))
            return
        page = c.list(status=status, limit=limit, offset=offset)
    console.print(study_table(page.items))
    console.print(f"{len(page.items)} of {page.total}")


def trials(
    study_id: StudyId,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    cell: Annotated[int | None, typer.Option(help="Only this cell id.")] = None,
    outcome: Annotated[str | None, typer.Option(help="Only this outcome.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: JsonOption = False,
    as_csv: Annotated[
        bool,
        typer.Option(
            "--csv",
            help="Print every matching trial (all pages) as CSV on stdout, one row per trial.",
        ),
    ] = False,
) -> None:
    """List a study's trials (a table, the API's JSON page, or CSV of all of them)."""
    if as_json and as_csv:
        raise typer.BadParameter("use one of --json and --csv", param_hint="--csv")
    with cli_errors(), client(url, token) as c:
        if as_json:
            params = {"cell_id": cell, "outcome": outcome, "limit": limit, "offset": offset}
            print_json(c.get_json(f"/studies/{study_id}/trials", params))
            return
        if as_csv:
            from service.frames import trials_csv

            sys.stdout.write(trials_csv(c.all_trials(study_id, cell_id=cell, outcome=outcome)))
            return
        page = c.trials(study_id, cell_id=cell, outcome=outcome, limit=limit, offset=offset)
    console.print(trials_table(page.items))
    console.print(f"{len(page.items)} of {page.total}")


def wait(
    study_id: StudyId,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    timeout: Annotated[float | None, typer.Option(help="Give up after seconds.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Wait until a study finishes; exit 1 unless it completed."""
    with cli_errors(), client(url, token) as c:
        study = c.wait(study_id, progress=progress and is_tty(), timeout=timeout)
    console.print(cells_table(study))
    exit_for_status(study.id, study.status, study.error)


def cancel(study_id: StudyId, url: UrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """Cancel a study (its running trials stop within seconds; results are kept)."""
    with cli_errors(), client(url, token) as c:
        study = c.cancel(study_id)
    console.print(f"study {study.id}: {study.status} (cancel requested)")


def delete(
    study_id: StudyId,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a study and all its results (refused while it runs)."""
    if not yes:
        typer.confirm(f"Delete study {study_id} and all its results?", abort=True)
    with cli_errors(), client(url, token) as c:
        c.delete(study_id)
    console.print(f"deleted study {study_id}")


def register(app: typer.Typer) -> None:
    """Add the study commands to ``app``."""
    app.command()(submit)
    app.command()(status)
    app.command("list")(list_)
    app.command()(trials)
    app.command()(wait)
    app.command()(cancel)
    app.command()(delete)
