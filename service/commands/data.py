"""``vradam-hpo data``: fetch the datasets the paper-scale tasks read, on explicit request.

Tasks never download anything themselves; tests write small files in the same formats.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.commands._common import cli_errors, console

data_app = typer.Typer(help="Fetch datasets into a data directory (explicit download).")

DATASETS = ("cifar10",)


@data_app.command("download")
def download(
    dataset: Annotated[str, typer.Argument(help=f"One of: {', '.join(DATASETS)}.")],
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Folder to download into (the task's data_dir).")
    ] = Path("data"),
) -> None:
    """Download a dataset, verify its checksum and extract it into the data directory.

    WikiText-2 and token shards have no single canonical archive with a stable checksum:
    place ``wiki.{train,valid,test}.tokens`` or ``train*.bin``/``val*.bin`` files yourself.
    """
    from workers.tasks.download import download_cifar10

    if dataset not in DATASETS:
        console.print(f"[bold red]error:[/] dataset: unknown {dataset!r}; known: {DATASETS}")
        raise typer.Exit(2)
    with cli_errors():
        folder = download_cifar10(data_dir)
    typer.echo(f"{dataset}: {folder}")


def register(app: typer.Typer) -> None:
    """Add ``data download`` to ``app``."""
    app.add_typer(data_app, name="data")
