"""The service's CLI commands; :func:`register_all` adds them to ``service.cli.app``."""

from __future__ import annotations

import typer

from service.commands import dashboard, data, demo, report, serve, studies, tokens


def register_all(app: typer.Typer) -> None:
    """Add every service command to ``app``.

    serve, worker, submit, status, list, trials, wait, cancel, delete, token, dashboard,
    report, demo and data.
    """
    for module in (serve, studies, tokens, dashboard, report, demo, data):
        module.register(app)
