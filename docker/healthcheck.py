#!/usr/bin/env python
"""Container healthchecks (stdlib only): exit 0 when healthy.

``healthcheck.py http URL``: the URL answers 2xx. ``healthcheck.py raylet``: this
container runs a raylet (``ray start`` on a worker node). ``healthcheck.py head``: a
raylet runs here, the head's GCS answers on 127.0.0.1:6379, and the lab's worker loop runs.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path


def _commands() -> list[list[str]]:
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                raw = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            out.append([a.decode(errors="replace") for a in raw.split(b"\0") if a])
    return out


def _raylet() -> bool:
    return any(c and c[0].endswith("/raylet") for c in _commands())


def _worker_loop() -> bool:
    return any("vradam-hpo" in " ".join(c[:2]) and "worker" in c for c in _commands())


def main(argv: list[str]) -> int:
    """Run the check named by ``argv[0]``."""
    kind = argv[0] if argv else ""
    if kind == "http" and len(argv) == 2:
        with urllib.request.urlopen(argv[1], timeout=5) as r:
            return 0 if 200 <= r.status < 300 else 1
    if kind == "raylet":
        return 0 if _raylet() else 1
    if kind == "head":
        gcs = subprocess.run(
            ["ray", "health-check", "--address", "127.0.0.1:6379"], capture_output=True
        )
        return 0 if gcs.returncode == 0 and _raylet() and _worker_loop() else 1
    print("usage: healthcheck.py http URL | raylet | head", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
