"""Kill ``vradam-hpo run`` mid-study with SIGKILL, run it again: the grid, each trial once.

The killed run leaves its study ``running`` under its lease; once the lease expires, the
next run resumes it (and a service worker could too).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import optuna
import pytest
import yaml

from studies.sampling import grid_values, trial_key
from studies.spec import ParamSpec
from studies.store import SQLStore, StudyStatus

REPO = Path(__file__).resolve().parents[2]
SPEC = {
    "name": "killme",
    "tasks": [{"name": "quadratic", "budget": {"epochs": 40}}],
    "optimizers": [{"name": "adamw", "fixed": {"weight_decay": 0.0}}],
    "search_space": {"lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True}},
    "sampler": {"name": "grid", "points": {"lr": 8}},
    "seeds": [0, 1],
    "executor": {"name": "local"},
}


LEASE_S = 3.0


def cli(spec: Path, db: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "service.cli",
        "run",
        str(spec),
        "--db",
        db,
        "--lease-seconds",
        str(LEASE_S),
        "--heartbeat-seconds",
        "0.5",
    ]


@pytest.mark.slow
def test_sigkill_mid_study_then_resume(tmp_path: Path) -> None:
    spec_file = tmp_path / "study.yaml"
    spec_file.write_text(yaml.safe_dump(SPEC))
    db = f"sqlite:///{tmp_path / 'lab.db'}"
    store = SQLStore(db)
    store.create_schema()

    proc = subprocess.Popen(
        cli(spec_file, db), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    recorded = 0
    while time.monotonic() < deadline and proc.poll() is None:
        studies, _ = store.list_studies()
        if studies:
            recorded = store.list_trials(studies[0].id)[1]
            if recorded >= 3:
                break
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()!r}"
    proc.kill()  # SIGKILL: no cleanup at all
    proc.wait(timeout=30)
    studies, _ = store.list_studies()
    study_id = studies[0].id
    before = store.list_trials(study_id)[1]
    assert 3 <= before < 16
    died = store.get_study(study_id)
    assert died.status == StudyStatus.RUNNING  # left as it died, under its lease
    assert died.worker_id == f"cli:{socket.gethostname()}:{proc.pid}"
    assert died.lease_expires_at is not None
    stale = store.list_running(study_id)  # the trial it was running when it died
    assert len(stale) <= 1 and all(
        r.key not in {t.key for t in store.list_trials(study_id)[0]} for r in stale
    )

    wait = (died.lease_expires_at - datetime.now(UTC)).total_seconds()
    time.sleep(max(0.0, wait) + 0.2)  # the dead run's lease expires: its study is free
    done = subprocess.run(cli(spec_file, db), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"resuming study {study_id}" in done.stdout
    resumed = store.get_study(study_id)
    assert resumed.worker_id is None and resumed.lease_expires_at is None  # released
    assert store.list_running(study_id) == []  # the stale row was cleared, its trial re-run

    studies, n_studies = store.list_studies()
    assert n_studies == 1 and studies[0].status == StudyStatus.COMPLETED
    trials, total = store.list_trials(study_id, limit=100)
    lrs = grid_values(ParamSpec(type="float", low=1e-3, high=1.0, log=True), 8)
    expected = {trial_key({"weight_decay": 0.0, "lr": lr}, s) for lr in lrs for s in (0, 1)}
    assert total == 16 and {t.key for t in trials} == expected  # exactly the grid
    assert all(t.attempts == 1 for t in trials)  # each once: none ran twice
    cell = store.list_cells(study_id)[0]
    study = optuna.load_study(study_name=cell.optuna_study_name, storage=db)
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.RUNNING not in states
    assert states.count(optuna.trial.TrialState.COMPLETE) == 16 - sum(
        t.outcome == "diverged" and t.value is None for t in trials
    )
    store.close()
