"""The ``vradam-hpo`` script without the service extra: a hint, not a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from service._entry import SERVICE_HINT

ROOT = Path(__file__).resolve().parents[2]
HINT = "pip install 'vradam-lab[service]'"


def entry(*args: str, hide: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the console script's entry point with ``hide`` made unimportable."""
    hiding = f"import sys; sys.modules[{hide!r}] = None; " if hide else ""
    code = f"{hiding}from service._entry import main; main()"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_the_entry_module_imports_only_the_standard_library() -> None:
    code = (
        "import sys, service._entry\n"
        "print(sorted({'typer', 'rich', 'pydantic', 'torch'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)  # fmt: skip
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("hidden", ["typer", "rich", "pydantic", "sqlalchemy"])
def test_a_missing_service_dependency_names_the_extra(hidden: str) -> None:
    result = entry("--version", hide=hidden)
    assert result.returncode == 1
    assert HINT in result.stderr and SERVICE_HINT in result.stderr
    assert repr(hidden) in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_with_the_extra_installed_the_cli_runs() -> None:
    result = entry("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("vradam-hpo ")


def test_a_missing_module_of_our_own_is_raised_not_explained() -> None:
    result = entry("--version", hide="studies")
    assert result.returncode == 1 and "Traceback" in result.stderr
    assert HINT not in result.stderr


def _copy_project(dest: Path) -> Path:
    """The files a wheel is built from (no tests, no caches, no egg-info in the checkout)."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for pkg in ("labcore", "vradam", "workers", "studies", "service"):
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=ignore)
    return dest


@pytest.mark.slow
def test_bare_install_gives_vradam_with_torch_alone_and_a_script_that_explains(
    tmp_path: Path,
) -> None:
    """A real venv with no extras: ``pip install --no-deps .`` and the pinned torch.

    pip finds torch where it is configured to (this project's machines keep the CPU
    wheel locally; see the Makefile's pin).
    """
    project = _copy_project(tmp_path / "src")
    where = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(where)
    python = where / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args), capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600
        )

    for cmd in (
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(project)],
        [str(python), "-m", "pip", "install", "-q", "--only-binary=:all:", "torch==2.13.0"],
    ):
        result = run(*cmd)
        assert result.returncode == 0, result.stderr[-3000:]
    step = (
        "import importlib.util as u, torch, vradam\n"
        "assert u.find_spec('typer') is None and u.find_spec('pydantic') is None\n"
        "p = torch.nn.Parameter(torch.ones(3))\n"
        "opt = vradam.VRAdam([p], lr=0.1)\n"
        "p.sum().backward(); opt.step()\n"
        "print(vradam.__file__, float(p.sum()))\n"
    )
    result = run(str(python), "-W", "ignore", "-c", step)
    assert result.returncode == 0, result.stderr[-3000:]
    assert str(where) in result.stdout and float(result.stdout.split()[-1]) < 3.0
    script = run(str(where / "bin" / "vradam-hpo"), "--version")
    assert script.returncode == 1
    assert HINT in script.stderr and "'typer'" in script.stderr
    assert "Traceback" not in script.stderr
