"""A real ``vradam-hpo serve`` on a SQLite file that other processes use at the same time.

The serve banner tells the user to run ``vradam-hpo token create`` while it runs; that,
``token list``, ``report`` and plain :mod:`sqlite3` reads must leave a running study, its
trials and the file intact, and nothing finished may be lost when serve is killed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.client import Client
from tests.service.conftest import free_port, quadratic_spec
from tests.studies.sqlite_probe import ROOT, Reader, cli, counts, integrity, study_status

pytestmark = pytest.mark.slow

POINTS, SEEDS, EPOCHS = 6, 3, 10
N_TRIALS = POINTS * SEEDS * 2  # two optimizers


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    with Client(url) as anonymous:
        while not anonymous.healthy():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)


def test_serve_survives_other_processes_on_its_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    db = f"sqlite:///{path}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--db", db, "--port", str(port)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_healthy(url, proc, log)
        made = cli("token", "create", "--name", "writer", "--db", db)  # as the banner says
        assert made.returncode == 0, made.stderr
        spec = quadratic_spec("shared", points=POINTS, seeds=SEEDS, epochs=EPOCHS)
        with Client(url, token=made.stdout.strip()) as client:
            sid = client.submit(spec).id
            reader = Reader(path)
            reader.start()
            others: list[str] = []
            deadline = time.monotonic() + 90
            try:
                while not client.get(sid).finished:  # other processes, one after another
                    assert time.monotonic() < deadline, log.read_text()
                    n = len(others)
                    args = [
                        ("token", "create", "--name", f"t{n}", "--db", db),
                        ("token", "list", "--db", db),
                        ("report", sid, "--db", db, "--out", str(tmp_path / f"r{n}")),
                    ][n % 3]
                    done = cli(*args)
                    assert done.returncode == 0, (args, done.stdout, done.stderr)
                    others.append(args[0])
            finally:
                reader.stop()
            final = client.get(sid)
        assert final.status == "completed", (final.error, log.read_text()[-3000:])
        assert final.progress.n_finished == final.progress.n_planned == N_TRIALS
        assert not reader.errors, reader.errors[:3]
        assert reader.reads > 10 and len(others) >= 2  # the study ran while others read
        expected = {"trials": N_TRIALS, "epochs": N_TRIALS * (EPOCHS + 1), "optuna": N_TRIALS}
        assert counts(path, sid) == expected
        assert integrity(path) == "ok"
        assert "disk I/O error" not in log.read_text()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
    # serve is gone without a goodbye: everything it reported finished is in the file
    assert study_status(path, sid) == "completed"
    assert counts(path, sid) == expected
    assert integrity(path) == "ok"
    listed = cli("token", "list", "--db", db)
    assert listed.returncode == 0 and "writer" in listed.stdout, listed.stderr
