"""Headless Debian ``chromium`` for browser tests: a screenshot and the rendered DOM.

With ``offline=True`` every host name but 127.0.0.1 fails to resolve, so a page that
needs a CDN renders blank (what the tests catch). Fails, rather than skips, without
Chromium: CI installs it (``apt-get install -y chromium``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

OFFLINE_RULES = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def chromium() -> str:
    """The Chromium executable."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "headless Chromium is required: apt-get install -y chromium"
    return exe


def command(
    profile: Path,
    *,
    offline: bool = True,
    budget_ms: int | None = 3000,
    size: tuple[int, int] = (1280, 900),
) -> list[str]:
    """Headless Chromium's command line, before the action flag and the URL.

    ``budget_ms`` (virtual time for scripts to fetch and render first) is left out if None.
    """
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={size[0]},{size[1]}",
    ]
    if budget_ms is not None:
        cmd.append(f"--virtual-time-budget={budget_ms}")
    if offline:
        cmd.append(f"--host-resolver-rules={OFFLINE_RULES}")
    return cmd


def render(
    url: str,
    tmp: Path,
    shot: Path,
    *,
    offline: bool = True,
    budget_ms: int = 3000,
    size: tuple[int, int] = (1280, 900),
) -> str:
    """Load ``url``; save a PNG screenshot at ``shot`` and return the rendered DOM."""
    tmp.mkdir(parents=True, exist_ok=True)
    dom = subprocess.run(
        [
            *command(tmp / "profile-dom", offline=offline, budget_ms=budget_ms, size=size),
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-3000:]
    shot.parent.mkdir(parents=True, exist_ok=True)
    pic = subprocess.run(
        [
            *command(tmp / "profile-shot", offline=offline, budget_ms=budget_ms, size=size),
            f"--screenshot={shot}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert pic.returncode == 0 and shot.is_file(), pic.stderr[-3000:]
    return dom.stdout
