"""``vradam-hpo data``: fetch the datasets the paper-scale tasks read, on explicit request.

Tasks never download anything themselves; tests write small files in the same formats.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.commands._common import cli_errors, console, err_console

data_app = typer.Typer(help="Fetch datasets into a data directory (explicit download).")

DATASETS = ("cifar10",)


@data_app.command("download")
def download(
    dataset: Annotated[str, typer.Argument(help=f"One of: {', '.join(DATASETS)}.")],
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Folder to download into (default: DATA_ROOT/DATASET, where DATA_ROOT is "
            "VRADAM_LAB_DATA_ROOT or ./data: the folder a study's `data_dir: DATASET` reads).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Download a dataset, verify its checksum and extract it into the data directory.

    By default into the folder that ``data_dir: cifar10`` (as in
    ``studies/definitions/cifar10.yaml``) names for ``vradam-hpo run`` and for a service
    worker alike: ``cifar10`` under the data root.

    WikiText-2 and token shards have no single canonical archive with a stable checksum:
    place ``wiki.{train,valid,test}.tokens`` or ``train*.bin``/``val*.bin`` files yourself.
    """
    from workers.tasks.download import download_cifar10

    if dataset not in DATASETS:
        console.print(f"[bold red]error:[/] dataset: unknown {dataset!r}; known: {DATASETS}")
        raise typer.Exit(2)
    from service.settings import Settings

    root = Settings().data_root
    target = data_dir if data_dir is not None else root / dataset
    with cli_errors():
        folder = download_cifar10(target)
    typer.echo(f"{dataset}: {folder}")
    if data_dir is None:
        err_console.print(
            f"a study reads it with `data_dir: {dataset}` (under the data root {root})",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    """Add ``data download`` to ``app``."""
    app.add_typer(data_app, name="data")
