"""``vradam-hpo run``: runs a study in-process, prints the summary, resumes by definition."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from service.cli import app
from studies.store import SQLStore, StudyStatus

SPEC = {
    "name": "cli-run",
    "tasks": [{"name": "quadratic", "budget": {"epochs": 2}}],
    "optimizers": [{"name": "adamw"}, {"name": "vradam"}],
    "search_space": {"lr": {"type": "float", "low": 1e-3, "high": 10.0, "log": True}},
    "sampler": {"name": "grid", "points": {"lr": 2}},
    "seeds": [0],
}


def test_run_then_rerun_resumes_the_same_study(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    db = f"sqlite:///{tmp_path / 'lab.db'}"
    runner = CliRunner()
    first = runner.invoke(app, ["run", str(spec), "--db", db])
    assert first.exit_code == 0, first.output
    assert "completed, 4 trials run now" in first.output and "vradam" in first.output
    store = SQLStore(db)
    studies, total = store.list_studies()
    assert total == 1 and studies[0].status == StudyStatus.COMPLETED
    # Same definition, another executor setting: the same study, nothing rerun.
    again = runner.invoke(app, ["run", str(spec), "--db", db, "--max-concurrent", "2"])
    assert again.exit_code == 0, again.output
    assert "already complete" in again.output
    assert store.list_studies()[1] == 1 and store.list_trials(studies[0].id)[1] == 4
    fresh = runner.invoke(app, ["run", str(spec), "--db", db, "--new"])
    assert fresh.exit_code == 0 and store.list_studies()[1] == 2
    store.close()


def test_invalid_definition_exits_1_with_field_paths(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        yaml.safe_dump({**SPEC, "optimizers": [{"name": "adamw", "fixed": {"beta3": 1}}]})
    )
    result = CliRunner().invoke(app, ["run", str(spec), "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 1
    assert "optimizers.0.fixed.beta3" in result.output


def test_report_accepts_the_definition_file(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    db = f"sqlite:///{tmp_path / 'lab.db'}"
    runner = CliRunner()
    SQLStore(db).create_schema()
    never_run = runner.invoke(app, ["report", str(spec), "--db", db, "--out", str(tmp_path)])
    assert never_run.exit_code == 1 and "no study in this database" in never_run.output
    assert runner.invoke(app, ["run", str(spec), "--db", db]).exit_code == 0
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", str(spec), "--db", db, "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    assert "vradam" in report and "adamw" in report
    assert (out / "report.html").stat().st_size > 1000
