"""The ``vradam-hpo`` console script's entry point: standard library only.

``pip install vradam-lab`` without extras installs the optimizer (torch alone) and this
script; the CLI itself needs the ``service`` extra (typer, rich, pydantic, SQLAlchemy,
...). Instead of a traceback about a missing ``typer``, the script then says which extra
to install. A missing module of this project itself is a bug, and is raised as it is.
"""

from __future__ import annotations

import importlib.util
import sys

SERVICE_HINT = "vradam-hpo needs the service extra: pip install 'vradam-lab[service]'"
OWN_PACKAGES = frozenset({"labcore", "vradam", "workers", "studies", "service"})
# Import names of the ``service`` extra (pyproject.toml) that the CLI's commands import,
# some only lazily: all are checked first, so no command fails halfway for want of one.
SERVICE_MODULES = (
    "typer", "rich", "pydantic", "pydantic_settings", "yaml", "sqlalchemy", "alembic",
    "optuna", "fastapi", "uvicorn", "httpx",
)  # fmt: skip


def missing_service_modules() -> list[str]:
    """The modules of the ``service`` extra that cannot be imported here (none imported)."""
    missing = []
    for name in SERVICE_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a broken or half-removed package
            found = False
        if not found:
            missing.append(name)
    return missing


def _explain(names: list[str]) -> None:
    listed = ", ".join(repr(n) for n in names)
    print(f"{SERVICE_HINT}\n(not installed: the Python module {listed})", file=sys.stderr)
    raise SystemExit(1)


def missing_dependency(error: ImportError) -> str | None:
    """The third-party module ``error`` says is missing, or ``None`` if it is one of ours."""
    name = (error.name or "").partition(".")[0]
    if not name or name in OWN_PACKAGES:
        return None
    return name


def main() -> None:
    """Run the CLI, or explain which extra to install when a dependency is missing.

    Raises:
        SystemExit: Exit status 1 (with the hint on stderr) when the CLI's dependencies
            are not installed; otherwise whatever the CLI exits with.
        ImportError: A module of this project itself is missing (a broken install).
    """
    missing = missing_service_modules()
    if missing:
        _explain(missing)
    try:
        from service.cli import main as cli_main
    except ImportError as e:
        name = missing_dependency(e)
        if name is None:
            raise
        _explain([name])
    cli_main()


if __name__ == "__main__":
    main()
