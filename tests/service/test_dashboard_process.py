"""``vradam-hpo dashboard`` as a real process: SIGTERM stops its optuna-dashboard child."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import free_port
from tests.service.servers import CLI, ROOT, cli_env


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_sigterm_stops_the_dashboard_child(tmp_path: Path) -> None:
    port = free_port()
    db = f"sqlite:///{tmp_path / 'dash.db'}"
    args = [*CLI, "dashboard", "--db", db, "--port", str(port)]
    proc = subprocess.Popen(args, env=cli_env(), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)  # fmt: skip
    child = None
    try:
        deadline = time.monotonic() + 60
        while True:  # the dashboard answers: the child is up
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "optuna-dashboard did not answer in 60 s"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code < 500:
                    break
            time.sleep(0.3)
        (child,) = _children(proc.pid)
        assert _alive(child)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "optuna-dashboard outlived vradam-hpo dashboard"
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    finally:
        for pid in (proc.pid, child):
            if pid is not None and _alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
