"""``vradam-hpo run``: runs a study in-process, prints the summary, resumes by definition."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import yaml
from typer.testing import CliRunner

from service.cli import app
from studies.spec import parse_spec
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


def _setup(tmp_path: Path, spec: dict = SPEC) -> tuple[Path, str, SQLStore]:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    db = f"sqlite:///{tmp_path / 'lab.db'}"
    store = SQLStore(db)
    store.create_schema()
    return path, db, store


def test_run_does_not_resume_a_study_another_process_holds(tmp_path: Path) -> None:
    spec, db, store = _setup(tmp_path)
    held = store.create_study(SPEC["name"], parse_spec(SPEC).to_dict())
    store.acquire_study(held.id, "host:1:w", 60)  # a live worker runs it
    result = CliRunner().invoke(app, ["run", str(spec), "--db", db])
    assert result.exit_code == 0, result.output
    assert f"study {held.id} is running under host:1:w" in result.output
    studies, total = store.list_studies()
    assert total == 2
    new = next(s for s in studies if s.id != held.id)
    assert new.status == StudyStatus.COMPLETED and new.worker_id is None
    assert store.get_study(held.id).worker_id == "host:1:w"  # untouched
    assert store.list_trials(held.id)[1] == 0
    store.close()


def test_run_resumes_a_study_whose_holder_died(tmp_path: Path) -> None:
    spec, db, store = _setup(tmp_path)
    held = store.create_study(SPEC["name"], parse_spec(SPEC).to_dict())
    store.acquire_study(held.id, "cli:host:1", 60)
    assert store.renew_lease(held.id, "cli:host:1", -1)  # killed: the lease ran out
    result = CliRunner().invoke(app, ["run", str(spec), "--db", db])
    assert result.exit_code == 0, result.output
    assert f"resuming study {held.id}" in result.output
    done = store.get_study(held.id)
    assert done.status == StudyStatus.COMPLETED and done.worker_id is None
    assert store.list_studies()[1] == 1 and store.list_trials(held.id)[1] == 4
    store.close()


def test_cancel_stops_a_run(tmp_path: Path) -> None:
    long = {**SPEC, "tasks": [{"name": "quadratic", "budget": {"epochs": 300}}]}
    long["sampler"] = {"name": "grid", "points": {"lr": 8}}
    spec, db, store = _setup(tmp_path, long)

    def cancel_once_running() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            studies, _ = store.list_studies()
            if studies and studies[0].worker_id and store.list_trials(studies[0].id)[1]:
                store.request_cancel(studies[0].id)  # as `vradam-hpo cancel` does
                return
            time.sleep(0.05)

    canceller = threading.Thread(target=cancel_once_running)
    canceller.start()
    args = ["run", str(spec), "--db", db, "--lease-seconds", "5", "--heartbeat-seconds", "0.1"]
    result = CliRunner().invoke(app, args)
    canceller.join()
    assert result.exit_code == 1, result.output  # cancelled: not a success
    assert "stopped early" in result.output and "was cancelled" in result.output
    (study,), _ = store.list_studies()
    assert study.status == StudyStatus.CANCELLED and study.worker_id is None
    assert store.list_trials(study.id)[1] < 16
    store.close()


def test_a_study_whose_every_trial_failed_exits_1_with_the_cause(tmp_path: Path) -> None:
    # CIFAR-10 with no data: every trial fails (the data is missing), so the study fails
    empty = tmp_path / "no-data"
    empty.mkdir()
    broken = {
        **SPEC,
        "name": "no-data",
        "tasks": [{"name": "cifar10_cnn", "budget": {"epochs": 1}, "data_dir": str(empty)}],
        "max_retries": 0,
    }
    spec, db, store = _setup(tmp_path, broken)
    result = CliRunner().invoke(app, ["run", str(spec), "--db", db])
    assert result.exit_code == 1, result.output
    (study,), _ = store.list_studies()
    assert study.status == StudyStatus.FAILED
    assert study.error is not None and study.error.startswith("no trial succeeded: 4 of 4")
    assert result.output.count("no trial succeeded") == 1  # said once, with the cause
    assert "cifar-10" in result.output.lower()
    store.close()
