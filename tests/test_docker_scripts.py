"""The image's helper scripts (docker/), run here with stand-ins for ``ray`` and the lab CLI.

``ray-head.sh`` supervises the Ray head and the worker loop: the loop's exit must not take
the head down (it is restarted), the head's exit must end the container, and SIGTERM must
stop both.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAD_SH = ROOT / "docker" / "ray-head.sh"

# `ray start --block` stand-in: records its PID and blocks; `ray health-check` answers.
FAKE_RAY = """#!/bin/sh
if [ "$1" = start ]; then echo $$ > "$STATE/head.pid"; exec sleep 600; fi
exit 0
"""
# The worker loop stand-in: counts its starts and exits at once (a crash).
FAKE_LAB = """#!/bin/sh
echo run >> "$STATE/worker.runs"
exit 3
"""


def _until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def head(tmp_path: Path) -> Callable[[], tuple[subprocess.Popen[bytes], Path]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("ray", FAKE_RAY), ("vradam-hpo", FAKE_LAB)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "STATE": str(tmp_path),
        "VRADAM_LAB_RESTART_DELAY_S": "0.1",
    }
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> tuple[subprocess.Popen[bytes], Path]:
        proc = subprocess.Popen(["sh", str(HEAD_SH)], env=env, stderr=subprocess.DEVNULL)
        procs.append(proc)
        return proc, tmp_path

    yield start
    pid_file = tmp_path / "head.pid"
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    if pid_file.exists() and _alive(int(pid_file.read_text())):
        os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.mark.skipif(sys.platform != "linux", reason="a POSIX sh and /proc")
def test_a_crashing_worker_loop_is_restarted_and_the_head_stays_up(head) -> None:
    proc, state = head()
    runs = state / "worker.runs"
    _until(lambda: runs.exists() and len(runs.read_text().split()) >= 3, 20, "3 restarts")
    head_pid = int((state / "head.pid").read_text())
    assert proc.poll() is None and _alive(head_pid)
    os.kill(head_pid, signal.SIGKILL)  # the head dies: the container must end
    assert proc.wait(20) != 0


@pytest.mark.skipif(sys.platform != "linux", reason="a POSIX sh and /proc")
def test_sigterm_stops_the_head_and_the_loop(head) -> None:
    proc, state = head()
    _until(lambda: (state / "worker.runs").exists(), 20, "the worker loop")
    head_pid = int((state / "head.pid").read_text())
    proc.send_signal(signal.SIGTERM)
    proc.wait(20)
    _until(lambda: not _alive(head_pid), 10, "the head to stop")
