"""The ``vradam-hpo`` command line (also ``python -m service.cli``).

``run`` lives in :mod:`service.commands.run`; the service's commands (serve, worker,
submit, status, ...) are added by :func:`service.commands.register_all`. Shell completion
comes from typer: ``vradam-hpo --install-completion`` (bash, zsh, fish, PowerShell) or
``vradam-hpo --show-completion`` to print the script. The installed ``vradam-hpo`` script
enters through :mod:`service._entry`, which explains a missing extra instead of crashing.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from service.commands import register_all
from service.commands import run as run_command


def _hide_flag_types() -> None:
    """Print no type beside a flag in ``--help`` (typer labels every flag ``<bool>``).

    A flag takes no value, so ``--wait <bool>`` reads as if it wanted one. Options with
    values keep their ``<int>``, ``<text>``, ... labels.
    """
    from typer.core import TyperOption

    original = TyperOption.display_type_rich
    if getattr(original, "hides_flags", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag and self.metavar is None:
            return None
        return original(self, ctx)

    display_type_rich.hides_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_hide_flag_types()
app = typer.Typer(
    name="vradam-hpo",
    help="VRAdam Lab: compare optimizers' robustness to the learning rate.",
    no_args_is_help=True,
    add_completion=True,
)


def package_version() -> str:
    """The installed distribution's version (``0+unknown`` when run from a bare checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vradam-lab")
    except PackageNotFoundError:
        return "0+unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"vradam-hpo {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """VRAdam Lab: compare optimizers' robustness to the learning rate."""


run_command.register(app)
register_all(app)


def main() -> None:
    """Entry point of the ``vradam-hpo`` script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
