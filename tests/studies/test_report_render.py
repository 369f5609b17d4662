"""Markdown, JSON, PNG, SVG and HTML outputs of a report."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from studies.report import FORMATS, Report, analyze, render, write_report
from tests.studies.report_fixtures import main_trials, make_spec, run


@pytest.fixture(scope="module")
def report() -> Report:
    trials = main_trials()
    trials += [run("vradam", 1e-1, s, 0.35, task="u", ratios=(0.9, 0.7)) for s in (0, 1)]
    trials += [run("adamw", 1e-1, s, 0.45, task="u") for s in (0, 1)]
    return analyze(trials, make_spec(tasks=("t", "u")), study_id="abc123")


def test_markdown_has_the_expected_rows(report: Report) -> None:
    md = render(report, "md")
    assert isinstance(md, str)
    assert md.startswith("# Learning-rate robustness: fixture")
    assert "> **Partial report**" in md  # task u has one learning rate of four planned
    assert "## Task `t`" in md and "## Task `u`" in md
    assert (
        "| adamw | 0.01 | 0.5 range 0.4…0.6 (search) | 0 (not reached) | 0.77 (0–2) | "
        "2.00 (1–3) | 0.4875 range 0.425…0.55 | 1 | — | — | — |" in md
    )
    assert "| vradam | 0.1 | 0.4 range 0.3…0.5 (search) | 0.89 (0–2) | 1.30 (1–3) |" in md
    assert "-0.187 range -0.35…-0.025 | 4/1/3 | -0.1 range -0.1…-0.1 |" in md
    assert "| 0.01 | **0.5 · 0.4, 0.6** | 0.5 · 0.5, 0.5 | 0/2 [0.00, 0.84] |" in md
    assert "| 1 | 2 · 2, 2 | 1.3 · 0.6, 2 | 2/2 [0.16, 1.00] | 1/2 [0.01, 0.99] |" in md
    assert "| vradam | 0.1 (vs 0.01) | search, n=2 | test_loss: -0.1 range -0.1…-0.1 |" in md
    assert "| 1 | 0.9 |" in md  # vradam's effective LR at η* on task u, epoch 1
    assert "## Across tasks" in md and "at least 3, so none is shown" in md
    assert "## Methods" in md and "- **Scoring rule**: every run is scored min(ℓ, ℓ0)" in md
    assert "## Legend" in md and "- Pruning: off" in md and "- Seeds: 0, 1" in md


def test_json_is_valid_and_round_trips(report: Report) -> None:
    text = render(report, "json")
    assert isinstance(text, str)
    data = json.loads(text)
    assert data["study_id"] == "abc123" and data["baseline"] == "adamw"
    assert Report.model_validate(data) == report


def test_png_and_svg_are_valid_images(report: Report) -> None:
    png = render(report, "png")
    assert isinstance(png, bytes) and png.startswith(b"\x89PNG\r\n\x1a\n")
    img = Image.open(io.BytesIO(png))
    img.verify()
    w, h = Image.open(io.BytesIO(png)).size
    # 2 task columns; rows: curves, failure strip, effective LR (110 dpi)
    assert (w, h) == (1144, 981)
    svg = render(report, "svg")
    assert isinstance(svg, bytes) and b"<svg" in svg[:2000] and svg.rstrip().endswith(b"</svg>")
    assert render(report, "svg") == svg  # deterministic


def test_figure_of_an_empty_report() -> None:
    empty = analyze([], {"objective": {}})
    assert render(empty, "png").startswith(b"\x89PNG")


def test_html_is_self_contained(report: Report) -> None:
    html = render(report, "html")
    assert isinstance(html, str) and html.startswith("<!DOCTYPE html>")
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", html)
    assert "<script" not in html and "@import" not in html
    assert 'src="data:image/svg+xml;base64,' in html
    assert "<table>" in html and "<strong>0.5 · 0.4, 0.6</strong>" in html
    assert "Partial report" in html and "<h2>Legend</h2>" in html and "<h2>Methods</h2>" in html
    assert "overflow-x" not in html and "nowrap" not in html  # every column stays visible


def test_write_report_and_unknown_format(report: Report, tmp_path: Path) -> None:
    paths = write_report(report, tmp_path / "out")
    assert sorted(paths) == sorted(FORMATS)
    assert all(p.is_file() and p.stat().st_size > 100 for p in paths.values())
    assert paths["md"].read_text(encoding="utf-8") == render(report, "md")
    with pytest.raises(ValueError, match="unknown report format"):
        render(report, "pdf")
