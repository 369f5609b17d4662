"""The published campaign (docs/results/) regenerates: its reports come from its stored studies.

Each stored study is copied (the committed file is never opened for writing) and reported
with the same command ``docs/results/regenerate.sh`` runs; the Markdown and JSON must equal
the committed ones but for the generation time (and JSON floats beyond 12 digits).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from service.cli import app

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
REGENERATE = RESULTS / "regenerate.sh"
GENERATED = re.compile(r" · generated \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")


def published() -> list[str]:
    """The study names regenerate.sh walks over (its ``NAMES=`` line)."""
    for line in REGENERATE.read_text().splitlines():
        if line.startswith("NAMES="):
            return line.split("=", 1)[1].strip().strip('"').split()
    raise AssertionError(f"no NAMES= line in {REGENERATE}")


def baseline(name: str) -> str:
    """The baseline regenerate.sh reports ``name`` against (knob studies: default VRAdam)."""
    return "vradam" if name.startswith("knobs-") else "adamw"


def comparable(value: Any) -> Any:
    """``value`` with floats to 12 significant digits (library versions move the last bits)."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if k != "generated_at"}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.12g}")
    return value


def test_every_published_definition_has_a_stored_study_and_reports() -> None:
    names = set(published())
    assert names == {p.stem for p in (RESULTS / "definitions").glob("*.yaml")}
    assert names == {p.stem for p in (RESULTS / "studies").glob("*.db")}
    assert names == {p.name for p in (RESULTS / "reports").iterdir() if p.is_dir()}
    assert "knobs-*) baseline=vradam" in REGENERATE.read_text()  # the rule baseline() mirrors


@pytest.mark.slow
@pytest.mark.parametrize("name", published())
def test_regenerating_a_published_report_reproduces_it(name: str, tmp_path: Path) -> None:
    db = tmp_path / f"{name}.db"
    shutil.copyfile(RESULTS / "studies" / f"{name}.db", db)
    out = tmp_path / "report"
    args = ["report", str(RESULTS / "definitions" / f"{name}.yaml"), "--baseline",
            baseline(name), "--db", f"sqlite:///{db}", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    committed = RESULTS / "reports" / name
    fresh_md = GENERATED.sub("", (out / "report.md").read_text())
    assert fresh_md == GENERATED.sub("", (committed / "report.md").read_text())
    fresh = json.loads((out / "report.json").read_text())
    assert comparable(fresh) == comparable(json.loads((committed / "report.json").read_text()))
