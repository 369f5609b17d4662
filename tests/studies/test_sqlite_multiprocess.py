"""``vradam-hpo run`` processes on one SQLite file at the same time, each with its study.

A long run keeps writing while a short run starts, finishes and exits (closing its last
connection), and then another short run starts and finishes: no exit may checkpoint away
or delete the WAL of a process still writing, and no later process may then write past it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.service.conftest import quadratic_spec
from tests.studies.sqlite_probe import ROOT, counts, integrity, study_id_by_name, study_status

pytestmark = pytest.mark.slow

# name: (grid points, seeds, epochs), two optimizers each; the long run outlasts both short ones
SIZES = {"long": (8, 3, 30), "short-a": (2, 1, 2), "short-b": (2, 1, 2)}


def _start(tmp_path: Path, db: str, name: str) -> subprocess.Popen[str]:
    points, seeds, epochs = SIZES[name]
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(yaml.safe_dump(quadratic_spec(name, points=points, seeds=seeds, epochs=epochs)))
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "run", str(spec), "--db", db],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str], name: str) -> None:
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, (name, out[-3000:])


def test_run_processes_share_one_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    db = f"sqlite:///{path}"
    procs = {name: _start(tmp_path, db, name) for name in ("long", "short-a")}
    try:
        _finish(procs["short-a"], "short-a")
        assert procs["long"].poll() is None, "the long run ended first: make it longer"
        procs["short-b"] = _start(tmp_path, db, "short-b")
        _finish(procs["short-b"], "short-b")
        _finish(procs["long"], "long")
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for name, (points, seeds, epochs) in SIZES.items():
        n = points * seeds * 2
        sid = study_id_by_name(path, name)
        assert study_status(path, sid) == "completed", name
        assert counts(path, sid) == {"trials": n, "epochs": n * (epochs + 1), "optuna": n}, name
    assert integrity(path) == "ok"
