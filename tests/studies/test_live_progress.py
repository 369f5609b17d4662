"""Live progress: while a trial runs, the store and Optuna's storage show it running.

A real study (the quadratic task, the local executor, the real store on SQLite and
PostgreSQL) runs a trial function that, after every epoch the executor was told of,
reads the database (:mod:`tests.studies.live_trialfn`). What it saw is the live view.
"""

from __future__ import annotations

import math
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from studies.runner import run_study
from studies.sampling import trial_key
from studies.store import SQLStore, StudyStatus
from tests.studies import live_trialfn
from workers.executors import LocalExecutor

SPEC: dict[str, Any] = {
    "name": "live",
    "tasks": [{"name": "quadratic", "budget": {"epochs": 3}}],
    "optimizers": [{"name": "adamw", "fixed": {"weight_decay": 0.0}}],
    "search_space": {"lr": {"type": "float", "low": 1e-2, "high": 10.0, "log": True}},
    "sampler": {"name": "grid", "points": {"lr": 2}},
    "seeds": [0],
}


@pytest.fixture
def observed(store: SQLStore) -> Any:
    live_trialfn.STORE_URL = store.url
    live_trialfn.SEEN.clear()
    yield live_trialfn.SEEN
    live_trialfn.SEEN.clear()


def test_a_running_trial_is_visible_with_its_epochs(store: SQLStore, observed: list) -> None:
    ex = LocalExecutor(trial_fn="tests.studies.live_trialfn:observed")
    summary = run_study(SPEC, store, ex)
    assert summary.status == StudyStatus.COMPLETED
    assert observed, "the trial function never looked"
    for seen in observed:
        key = trial_key(seen["hparams"], seen["seed"])
        # the store: exactly this trial runs (one at a time), at this epoch
        (row,) = seen["running"]
        assert row.key == key and row.started_at is not None
        assert row.epoch == seen["epoch"] and "val_loss" in row.metrics
        # Optuna: a RUNNING trial with a start time and the epochs so far as intermediate values
        (live,) = [t for t in seen["optuna"] if t.user_attrs.get("key") == key]
        assert live.state == TrialState.RUNNING and live.datetime_start is not None
        reported = set(live.intermediate_values)
        assert reported <= set(range(1, seen["epoch"] + 1))
        if seen["epoch"] >= 1 and math.isfinite(row.metrics["val_loss"]):
            assert seen["epoch"] in reported
            assert live.intermediate_values[seen["epoch"]] == row.metrics["val_loss"]
    assert any(s["epoch"] == 3 for s in observed)  # a learning curve grew to the end

    assert store.list_running(summary.study_id) == []  # nothing runs any more
    records = {t.key: t for t in store.list_trials(summary.study_id)[0]}
    (cell,) = store.list_cells(summary.study_id)
    study = optuna.load_study(
        study_name=cell.optuna_study_name, storage=optuna.storages.RDBStorage(store.url)
    )
    assert study.metric_names == ["val_loss"]  # the dashboard says val_loss, not Objective 0
    assert study.user_attrs["objective"] == "minimize val_loss"
    assert len(study.trials) == 2
    for t in study.trials:
        rec = records[t.user_attrs["key"]]
        assert t.number == rec.optuna_trial_number
        assert t.state == TrialState.COMPLETE and t.value == rec.value
        assert t.datetime_complete is not None and t.datetime_complete > t.datetime_start
        assert t.user_attrs["outcome"] == str(rec.outcome)
        if rec.outcome == "complete":
            assert sorted(t.intermediate_values) == [1, 2, 3]


def test_a_diverged_trial_says_so_in_optuna(store: SQLStore) -> None:
    spec = {**SPEC, "search_space": {"lr": {"type": "float", "low": 10.0, "high": 100.0}}}
    summary = run_study(spec, store, LocalExecutor())
    (rec, _) = store.list_trials(summary.study_id)[0]
    assert rec.outcome == "diverged" and rec.diverged_at_step is not None
    assert rec.value == rec.initial_metrics["val_loss"]  # scored with ℓ0
    (cell,) = store.list_cells(summary.study_id)
    study = optuna.load_study(
        study_name=cell.optuna_study_name, storage=optuna.storages.RDBStorage(store.url)
    )
    assert study.metric_names == ["val_loss"]
    by_key = {t.user_attrs["key"]: t for t in study.trials}
    t = by_key[rec.key]
    # COMPLETE, valued at ℓ0 (what the report and the samplers score it with), and marked
    assert t.state == TrialState.COMPLETE and t.value == rec.value
    assert t.user_attrs["outcome"] == "diverged"
    assert t.user_attrs["diverged_at_step"] == rec.diverged_at_step
    assert t.user_attrs["scoring"] == "ℓ0: initial val_loss"
    assert t.user_attrs["note"].startswith(f"DIVERGED at step {rec.diverged_at_step}")


def test_a_crashed_runs_running_rows_do_not_block_a_resume(store: SQLStore) -> None:
    spec = {**SPEC, "seeds": [0, 1]}
    first = run_study(spec, store, LocalExecutor(), should_stop=lambda: True)
    study_id = first.study_id
    (cell,) = store.list_cells(study_id)
    # what a worker killed mid-trial leaves: a running row (and no result)
    hp = {"weight_decay": 0.0, "lr": 0.01}
    store.start_trial(cell.id, trial_key(hp, 0), hp, 0)
    assert len(store.list_running(study_id)) == 1
    done = run_study(spec, store, LocalExecutor(), study_id=study_id)
    assert done.status == StudyStatus.COMPLETED and done.n_run == 4
    assert store.list_running(study_id) == []
    trials, total = store.list_trials(study_id)
    assert total == 4 and all(t.attempts == 1 for t in trials)
