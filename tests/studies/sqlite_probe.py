"""Look at a SQLite store file from outside the lab's code, as another process would.

Every read opens its own :mod:`sqlite3` connection and closes it: the open/close of a
foreign connection is exactly what must not disturb a store that another process is
writing (a closing last connection checkpoints and deletes the WAL).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from labcore.outcomes import Outcome

ROOT = Path(__file__).resolve().parents[2]
FINALS = tuple(sorted(o.value for o in Outcome.finals()))


def query(path: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Run one read on a fresh connection and close it."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def integrity(path: Path) -> str:
    """``PRAGMA integrity_check``'s answer (``"ok"`` when the file is sound)."""
    return "; ".join(str(r[0]) for r in query(path, "PRAGMA integrity_check"))


def study_status(path: Path, study_id: str) -> str | None:
    """The study's status as stored, or None if the row is missing."""
    rows = query(path, "SELECT status FROM lab_studies WHERE id = ?", study_id)
    return str(rows[0][0]) if rows else None


def study_id_by_name(path: Path, name: str) -> str:
    """The id of the only study called ``name``."""
    rows = query(path, "SELECT id FROM lab_studies WHERE name = ?", name)
    assert len(rows) == 1, rows
    return str(rows[0][0])


def counts(path: Path, study_id: str) -> dict[str, int]:
    """Finished lab trials, their epoch rows and Optuna's COMPLETE trials of a study."""
    marks = ",".join("?" * len(FINALS))
    sqls = {
        "trials": (
            f"SELECT count(*) FROM lab_trials WHERE study_id = ? AND outcome IN ({marks})",
            (study_id, *FINALS),
        ),
        "epochs": ("SELECT count(*) FROM lab_trial_epochs WHERE study_id = ?", (study_id,)),
        "optuna": (
            "SELECT count(*) FROM trials t JOIN studies s ON s.study_id = t.study_id "
            "WHERE s.study_name LIKE ? AND t.state = 'COMPLETE'",
            (f"%.{study_id}/%",),
        ),
    }
    return {k: int(str(query(path, sql, *params)[0][0])) for k, (sql, params) in sqls.items()}


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``vradam-hpo ARGS`` in a new process (from the repository root)."""
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Reader(threading.Thread):
    """Reads the file with :mod:`sqlite3` (open, select, close) until stopped."""

    def __init__(self, path: Path, period_s: float = 0.05) -> None:
        super().__init__(name="sqlite-reader", daemon=True)
        self.path = path
        self.period_s = period_s
        self.reads = 0
        self.errors: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        """Read until :meth:`stop`; errors are collected, not raised."""
        while not self._stop_event.wait(self.period_s):
            try:
                query(self.path, "SELECT count(*) FROM lab_trials")
                self.reads += 1
            except sqlite3.Error as e:
                self.errors.append(repr(e))

    def stop(self) -> None:
        """Stop reading and wait for the thread."""
        self._stop_event.set()
        self.join(30)
