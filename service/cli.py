"""The ``vradam-hpo`` command line (also ``python -m service.cli``).

``run`` lives in :mod:`service.commands.run`; the service's commands (serve, worker,
submit, status, ...) are added by :func:`service.commands.register_all`.
"""

from __future__ import annotations

import logging

import typer

from service.commands import register_all
from service.commands import run as run_command

app = typer.Typer(
    name="vradam-hpo",
    help="VRAdam Lab: compare optimizers' robustness to the learning rate.",
    no_args_is_help=True,
    add_completion=False,
)
run_command.register(app)
register_all(app)


def main() -> None:
    """Entry point of the ``vradam-hpo`` script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
