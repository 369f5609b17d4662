"""The HTML report rendered by headless Chromium: the figure shows, the console is clean.

Needs Debian's ``chromium`` (``apt-get install -y chromium``). The test fails, rather than
skips, when it is missing: CI installs it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studies.report import analyze, render
from tests.chromium import command
from tests.studies.report_fixtures import main_trials, make_spec, run

pytestmark = pytest.mark.browser

# matplotlib's default colours of the first two optimizers (adamw, vradam).
CURVE_COLORS = {"adamw": (0x1F, 0x77, 0xB4), "vradam": (0xD6, 0x27, 0x28)}


def _screenshot(page: Path, tmp_path: Path) -> tuple[np.ndarray, str]:
    """Load ``page`` in headless Chromium; return the screenshot (RGB) and its log."""
    shot = tmp_path / "shot.png"
    cmd = [
        *command(tmp_path / "profile", offline=False, budget_ms=None, size=(1280, 2000)),
        f"--screenshot={shot}",
        "--enable-logging=stderr",
        "--v=0",
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0 and shot.is_file(), log[-3000:]
    return np.asarray(Image.open(shot).convert("RGB")).astype(int), log


def _console_messages(log: str) -> list[str]:
    return [ln for ln in log.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]


def _color_pixels(img: np.ndarray, rgb: tuple[int, int, int]) -> int:
    return int((np.abs(img - np.array(rgb)).sum(axis=2) < 60).sum())


def test_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    trials = main_trials() + [
        run("vradam", lr, s, 0.5, task="u", ratios=(0.9, 0.8))
        for lr in (1e-3, 1e-2, 1e-1, 1.0)
        for s in (0, 1)
    ]
    report = analyze(trials, make_spec(tasks=("t", "u")))
    page = tmp_path / "report.html"
    page.write_text(str(render(report, "html")), encoding="utf-8")
    img, log = _screenshot(page, tmp_path)
    assert img.shape == (2000, 1280, 3)
    assert _console_messages(log) == []
    # The figure sits right under the title: its area must show the curves, not a blank
    # box or a broken-image icon (tables are black on white/grey, never these colours).
    fig = img[80:1000, :, :]
    assert fig.std() > 20
    for name, rgb in CURVE_COLORS.items():
        assert _color_pixels(fig, rgb) > 100, f"no {name} curve in the figure area"
    below = img[1000:, :, :]
    assert _color_pixels(below, CURVE_COLORS["adamw"]) < 50  # the tables carry no curves


def test_console_errors_and_blank_pages_are_detected(tmp_path: Path) -> None:
    """The checks above can fail: a page with a script error and no figure trips them."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><body><h1>no figure</h1>"
        "<script>undefinedFunction();</script></body></html>",
        encoding="utf-8",
    )
    img, log = _screenshot(page, tmp_path)
    assert any("Uncaught ReferenceError" in m for m in _console_messages(log))
    assert _color_pixels(img[80:1000], CURVE_COLORS["adamw"]) == 0


def test_every_table_column_is_visible_without_scrolling(tmp_path: Path) -> None:
    """No table is wider than the page (nothing hides behind a horizontal scroll bar).

    A copy of the page gets a probe script (the report itself has none) that logs how many
    tables overflow the viewport; the log line proves the probe ran.
    """
    spec = make_spec(tasks=("t",), opts=("adamw", "vradam", "lion", "sgd"))
    trials = main_trials() + [
        run(o, t.hparams["lr"], t.seed, t.metrics.get("val_loss"), test=0.5)
        for o in ("lion", "sgd")
        for t in main_trials()
        if t.optimizer == "vradam"
    ]
    html = str(render(analyze(trials, spec), "html"))
    probe = (
        "<script>window.addEventListener('load',()=>{const w=window.innerWidth;"
        "const bad=[...document.querySelectorAll('table')].filter("
        "t=>t.getBoundingClientRect().right>w+1||t.scrollWidth>t.clientWidth+1).length;"
        "console.log('OVERFLOWING_TABLES='+bad+' of '+document.querySelectorAll('table').length)"
        "});</script>"
    )
    page = tmp_path / "probe.html"
    page.write_text(html.replace("</body>", probe + "</body>"), encoding="utf-8")
    _, log = _screenshot(page, tmp_path)
    lines = [ln for ln in _console_messages(log) if "OVERFLOWING_TABLES=" in ln]
    assert lines, log[-2000:]
    assert "OVERFLOWING_TABLES=0 of" in lines[0], lines[0]
