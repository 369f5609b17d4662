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
        "| adamw | 0.01 | 0.5 [-0.7706, 1.771] | 0.00 | 1.00 | ≥2.00 | 0.4875 | 1 | — | — | — |"
        in md
    )
    assert "| vradam | 0.1 | 0.4 [-0.8706, 1.671] | 0.00 | 1.00 | 1.00 | 0.4 | 1 |" in md
    assert "-0.187 [" in md and "| 56% |" in md and "-0.1 [-0.1, -0.1]" in md
    assert "| 0.01 | **0.5 [-0.7706, 1.771]** | 0.5 [0.5, 0.5] |" in md
    assert "| 1 | 2 [2, 2] ✕2/2 | 1.3 [-7.594, 10.19] ✕1/2 |" in md
    assert "| 1 | 0.9 |" in md  # vradam's effective LR at η* on task u, epoch 1
    assert "## Aggregate across tasks" in md and "| vradam | 2 |" in md
    assert "- Pruning: off" in md and "- Seeds: 0, 1" in md


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
    assert (w, h) == (1144, 880)  # 2 task columns x 2 rows (curves, effective LR), 110 dpi
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
    assert "<table>" in html and "<strong>0.5 [-0.7706, 1.771]</strong>" in html
    assert "Partial report" in html


def test_write_report_and_unknown_format(report: Report, tmp_path: Path) -> None:
    paths = write_report(report, tmp_path / "out")
    assert sorted(paths) == sorted(FORMATS)
    assert all(p.is_file() and p.stat().st_size > 100 for p in paths.values())
    assert paths["md"].read_text(encoding="utf-8") == render(report, "md")
    with pytest.raises(ValueError, match="unknown report format"):
        render(report, "pdf")
