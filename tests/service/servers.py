"""Real ``vradam-hpo serve`` / ``worker`` processes for tests that need a live server."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from service.cli import main; main()"]


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a CLI process: this checkout first, no inherited lab settings."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("VRADAM_LAB_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra or {})
    return env


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    """Poll ``url/healthz`` until it answers; fail if the process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise AssertionError(f"the server exited with {proc.returncode}:\n{out[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2.0).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s")


@contextlib.contextmanager
def cli_process(
    args: Sequence[str], env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``vradam-hpo ARGS``; SIGTERM it (then SIGKILL) at the end."""
    proc = subprocess.Popen(
        [*CLI, *args],
        env=cli_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


@contextlib.contextmanager
def serve(
    port: int, args: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Run ``vradam-hpo serve ARGS`` until it answers on 127.0.0.1:``port``."""
    with cli_process(["serve", *args], env) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        yield proc, url
