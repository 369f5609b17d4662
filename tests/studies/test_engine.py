"""The engine end to end: real store (SQLite and PostgreSQL), real Optuna, real run_trial."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import optuna
import pytest

from labcore.outcomes import Outcome
from labcore.results import EpochMetrics, TrialResult
from studies.engine import ProgressEvent
from studies.runner import run_study
from studies.sampling import trial_key
from studies.store import SQLStore, StudyStatus
from tests.workers import trialfns
from workers.executors import Executor, LocalExecutor, TrialOutcome, TrialRequest

LRS = [1e-3, 0.1, 10.0]


def quadratic_spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "quad",
        "tasks": [{"name": "quadratic", "budget": {"epochs": 2}}],
        "optimizers": [
            {"name": "adamw", "fixed": {"weight_decay": 0.0}},
            {"name": "vradam", "fixed": {"beta3": 1.0, "alpha1": 10.0}},
        ],
        "search_space": {"lr": {"type": "float", "low": 1e-3, "high": 10.0, "log": True}},
        "sampler": {"name": "grid", "points": {"lr": 3}},
        "seeds": [0, 1],
        "max_retries": 1,
    }
    spec.update(changes)
    return spec


def grid_keys(spec: dict[str, Any], optimizer: str) -> set[str]:
    fixed = next(o.get("fixed", {}) for o in spec["optimizers"] if o["name"] == optimizer)
    return {trial_key({**fixed, "lr": lr}, s) for lr in LRS for s in spec["seeds"]}


def test_grid_study_end_to_end(store: SQLStore) -> None:
    spec = quadratic_spec()
    events: list[ProgressEvent] = []
    summary = run_study(spec, store, LocalExecutor(), progress=events.append)
    assert summary.status == StudyStatus.COMPLETED and summary.n_run == 12 == summary.n_planned
    record = store.get_study(summary.study_id)
    assert record.status == StudyStatus.COMPLETED and record.finished_at is not None
    assert events[0].done == 0 and events[-1].done == events[-1].total == 12
    assert [e.done for e in events] == sorted(e.done for e in events)

    trials, total = store.list_trials(summary.study_id, limit=100, with_epochs=True)
    assert total == 12
    for cell in store.list_cells(summary.study_id):
        keys = [t.key for t in trials if t.cell_id == cell.id]
        assert sorted(keys) == sorted(grid_keys(spec, cell.optimizer))  # the grid, each once
        assert cell.optuna_study_name == f"quad.{summary.study_id}/quadratic/{cell.optimizer}"
        study = optuna.load_study(study_name=cell.optuna_study_name, storage=store.url)
        assert len(study.trials) == 6
        assert {t.user_attrs["seed"] for t in study.trials} == {0, 1}
        assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
        assert all(t.value is not None and math.isfinite(t.value) for t in study.trials)
        numbers = {t.user_attrs["key"]: t.number for t in study.trials}
        assert all(numbers[t.key] == t.optuna_trial_number for t in trials if t.cell_id == cell.id)
        curves = [
            t.intermediate_values for t in study.trials if t.user_attrs["outcome"] == "complete"
        ]
        assert curves and all(sorted(c) == [1, 2] for c in curves)  # per-epoch val_loss
    diverged = [t for t in trials if t.outcome == "diverged"]
    assert diverged and all(t.hparams["lr"] == 10.0 for t in diverged)
    for t in diverged:  # told to Optuna with the initial loss, not NaN
        assert t.value == pytest.approx(t.initial_metrics["val_loss"])
        assert t.diverged_at_step is not None
    complete = [t for t in trials if t.outcome == "complete"]
    assert all(len(t.epochs) == 3 and t.epochs[0].epoch == 0 for t in complete)
    adamw = next(c for c in summary.cells if c.cell.optimizer == "adamw")
    assert adamw.best_lr == 0.1 and adamw.counts["complete"] >= 4

    again = run_study(spec, store, LocalExecutor(), study_id=summary.study_id)
    assert again.n_run == 0 and again.status == StudyStatus.COMPLETED
    assert store.list_trials(summary.study_id)[1] == 12


def test_failures_are_retried_up_to_the_limit(store: SQLStore) -> None:
    trialfns.FAIL_FIRST = 1
    trialfns.ALWAYS_FAIL_LRS = {10.0}
    trialfns._calls.clear()
    try:
        spec = quadratic_spec(optimizers=[{"name": "adamw"}], max_retries=2)
        ex = LocalExecutor(trial_fn="tests.workers.trialfns:flaky")
        summary = run_study(spec, store, ex)
    finally:
        trialfns.ALWAYS_FAIL_LRS = set()
    trials, _ = store.list_trials(summary.study_id)
    by_lr = {(t.hparams["lr"], t.seed): t for t in trials}
    assert {k: t.attempts for k, t in by_lr.items() if k[0] != 10.0} == {
        (1e-3, 0): 2,
        (1e-3, 1): 2,
        (0.1, 0): 2,
        (0.1, 1): 2,
    }
    assert all(
        by_lr[(10.0, s)].attempts == 3 and by_lr[(10.0, s)].outcome == "failed" for s in (0, 1)
    )
    assert summary.n_run == 4 * 2 + 2 * 3 and summary.status == StudyStatus.COMPLETED
    cell = store.list_cells(summary.study_id)[0]
    study = optuna.load_study(study_name=cell.optuna_study_name, storage=store.url)
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 4 + 6
    again = run_study(
        spec,
        store,
        LocalExecutor(trial_fn="tests.workers.trialfns:flaky"),
        study_id=summary.study_id,
    )
    assert again.n_run == 0  # exhausted keys are not retried forever


def test_cancel_then_resume_runs_each_trial_once(store: SQLStore) -> None:
    spec = quadratic_spec()
    calls = {"n": 0}

    def progress(e: ProgressEvent) -> None:
        calls["n"] = e.done

    t0 = time.monotonic()
    first = run_study(
        spec, store, LocalExecutor(), progress=progress, should_stop=lambda: calls["n"] >= 5
    )
    assert time.monotonic() - t0 < 30
    assert first.status == StudyStatus.CANCELLED and 5 <= first.n_run < 12
    resumed = run_study(spec, store, LocalExecutor(), study_id=first.study_id)
    assert resumed.status == StudyStatus.COMPLETED
    trials, total = store.list_trials(first.study_id, limit=100)
    assert total == 12 and all(t.attempts == 1 for t in trials)
    for cell in store.list_cells(first.study_id):
        assert {t.key for t in trials if t.cell_id == cell.id} == grid_keys(spec, cell.optimizer)
        study = optuna.load_study(study_name=cell.optuna_study_name, storage=store.url)
        running = [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
        assert not running


def test_sampled_study_pairs_seeds_and_resumes_its_configurations(store: SQLStore) -> None:
    spec = quadratic_spec(sampler={"name": "random", "n_trials": 3, "seed": 7})
    done = {"n": 0}
    first = run_study(
        spec,
        store,
        LocalExecutor(),
        progress=lambda e: done.__setitem__("n", e.done),
        should_stop=lambda: done["n"] >= 3,
    )
    assert first.status == StudyStatus.CANCELLED
    final = run_study(spec, store, LocalExecutor(), study_id=first.study_id)
    assert final.status == StudyStatus.COMPLETED and final.n_planned == 12
    trials, total = store.list_trials(first.study_id, limit=100)
    assert total == 12 and all(t.attempts == 1 for t in trials)
    for cell in store.list_cells(first.study_id):
        lrs = [t.hparams["lr"] for t in trials if t.cell_id == cell.id]
        assert len(set(lrs)) == 3  # three configurations, each run with both seeds
        assert all(lrs.count(lr) == 2 for lr in lrs)
    adamw = {t.hparams["lr"] for t in trials if t.optimizer == "adamw"}
    vradam = {t.hparams["lr"] for t in trials if t.optimizer == "vradam"}
    assert adamw == vradam  # same seeded sampler per cell: a paired comparison


def test_a_result_recorded_but_not_told_is_added_to_optuna_on_resume(store: SQLStore) -> None:
    spec = quadratic_spec(optimizers=[{"name": "adamw"}], seeds=[0])
    done = {"n": 0}
    first = run_study(
        spec,
        store,
        LocalExecutor(),
        progress=lambda e: done.__setitem__("n", e.done),
        should_stop=lambda: done["n"] >= 1,
    )
    cell = store.list_cells(first.study_id)[0]
    # A process that died after recording a result and before telling Optuna:
    hp = {"lr": 10.0}
    res = TrialResult(Outcome.DIVERGED, {}, {"val_loss": 3.0}, (EpochMetrics(0, 0, {}),), 4)
    store.record_trial(cell.id, trial_key(hp, 0), hp, 0, res, 3.0, None)
    final = run_study(spec, store, LocalExecutor(), study_id=first.study_id)
    assert final.n_run == 1 and final.status == StudyStatus.COMPLETED
    study = optuna.load_study(study_name=cell.optuna_study_name, storage=store.url)
    told = {t.user_attrs["key"]: t for t in study.trials}
    assert len(study.trials) == 3 and told[trial_key(hp, 0)].value == 3.0
    assert told[trial_key(hp, 0)].user_attrs["outcome"] == "diverged"


def test_tpe_study_pairs_seeds(store: SQLStore) -> None:
    spec = quadratic_spec(optimizers=[{"name": "adamw"}], sampler={"name": "tpe", "n_trials": 4})
    summary = run_study(spec, store, LocalExecutor(max_concurrent=2))
    assert summary.status == StudyStatus.COMPLETED and summary.n_run == 8
    trials, _ = store.list_trials(summary.study_id)
    lrs = [t.hparams["lr"] for t in trials]
    assert len(set(lrs)) == 4 and all(lrs.count(lr) == 2 for lr in lrs)
    cell = store.list_cells(summary.study_id)[0]
    study = optuna.load_study(study_name=cell.optuna_study_name, storage=store.url)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) == 8 and {t.user_attrs["seed"] for t in finished} == {0, 1}
    assert {t.number for t in finished} == {t.optuna_trial_number for t in trials}


def test_pruning_stops_trials_as_pruned(store: SQLStore) -> None:
    spec = quadratic_spec(
        optimizers=[{"name": "adamw"}],
        tasks=[{"name": "quadratic", "budget": {"epochs": 4}}],
        pruning={"name": "median", "n_startup_trials": 1, "n_warmup_epochs": 0},
        seeds=[0],
        search_space={"lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True}},
        sampler={"name": "grid", "points": {"lr": 4}},
    )
    ex = LocalExecutor(trial_fn="tests.workers.trialfns:sleepy")
    summary = run_study(spec, store, ex)
    trials, _ = store.list_trials(summary.study_id, with_epochs=True)
    pruned = [t for t in trials if t.outcome == "pruned"]
    assert pruned and all(len(t.epochs) < 5 for t in pruned)
    assert " ".join(summary.disclosures).count("pruning") == 1


@pytest.mark.slow
@pytest.mark.ray
def test_grid_study_on_ray(store: SQLStore, ray_cluster: None) -> None:
    from workers.executors.ray_executor import RayExecutor

    spec = quadratic_spec(executor={"name": "ray", "max_concurrent": 2})
    with RayExecutor(max_concurrent=2) as ex:
        summary = run_study(spec, store, ex)
    assert summary.status == StudyStatus.COMPLETED and summary.n_run == 12
    trials, _ = store.list_trials(summary.study_id, limit=100, with_epochs=True)
    for cell in store.list_cells(summary.study_id):
        assert {t.key for t in trials if t.cell_id == cell.id} == grid_keys(spec, cell.optimizer)
    assert {t.outcome for t in trials if t.hparams["lr"] == 10.0} == {"diverged"}


class _RecordsFirst(Executor):
    """Runs trials locally, but another process records each key's final result first.

    The engine's own ``record_trial`` then meets a ConflictError. A key asked for twice
    means the engine did not treat the stored result as finished (it would loop forever).
    """

    name = "records-first"

    def __init__(self, store_url: str) -> None:
        super().__init__(max_concurrent=1)
        self.inner = LocalExecutor()
        self.other = SQLStore(store_url)
        self.asked: Counter[tuple[int, str]] = Counter()

    def run(
        self,
        requests: Sequence[TrialRequest],
        *,
        should_stop: Any = None,
        should_prune: Any = None,
        **hooks: Any,
    ) -> Iterator[TrialOutcome]:
        for r in requests:
            self.asked[r.ident] += 1
            assert self.asked[r.ident] == 1, f"trial {r.key} was requested again"
        inner = self.inner.run(
            requests, should_stop=should_stop, should_prune=should_prune, **hooks
        )
        for out in inner:
            r = out.request
            self.other.record_trial(r.cell_id, r.key, r.hparams, r.seed, out.result, 42.0, None)
            yield out

    def close(self) -> None:
        self.other.close()


def test_a_trial_recorded_elsewhere_first_counts_as_finished(store: SQLStore) -> None:
    spec = quadratic_spec(optimizers=[{"name": "adamw"}])
    events: list[ProgressEvent] = []
    with _RecordsFirst(store.url) as ex:
        summary = run_study(spec, store, ex, progress=events.append)
    assert summary.status == StudyStatus.COMPLETED and summary.n_run == 6
    assert sum(ex.asked.values()) == 6  # each key asked for once
    assert events[-1].done == events[-1].total == 6
    trials, total = store.list_trials(summary.study_id)
    assert total == 6 and all(t.attempts == 1 and t.value == 42.0 for t in trials)


def test_resume_adds_a_retried_success_that_was_never_told(store: SQLStore) -> None:
    spec = quadratic_spec(optimizers=[{"name": "adamw"}], seeds=[0])
    done = {"n": 0}
    first = run_study(
        spec,
        store,
        LocalExecutor(),
        progress=lambda e: done.__setitem__("n", e.done),
        should_stop=lambda: done["n"] >= 1,
    )
    cell = store.list_cells(first.study_id)[0]
    study = optuna.load_study(study_name=cell.optuna_study_name, storage=store.url)
    dist = {"lr": optuna.distributions.FloatDistribution(1e-3, 10.0, log=True)}
    retried, no_value = {"lr": 0.1}, {"lr": 10.0}
    # Key 1 failed once (told to Optuna as FAIL), then succeeded on retry, and the process
    # died before telling Optuna the success.
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.FAIL,
            params=retried,
            distributions=dist,
            user_attrs={"key": trial_key(retried, 0), "seed": 0, "outcome": "failed"},
        )
    )
    failed = TrialResult(Outcome.FAILED, {}, error="flaky")
    store.record_trial(cell.id, trial_key(retried, 0), retried, 0, failed, None, None)
    ok = TrialResult(Outcome.COMPLETE, {"val_loss": 0.25}, {"val_loss": 3.0}, ())
    store.record_trial(cell.id, trial_key(retried, 0), retried, 0, ok, 0.25, None)
    # Key 2 diverged without an initial value (a final result Optuna can only hold as FAIL).
    diverged = TrialResult(Outcome.DIVERGED, {}, {}, (), 3)
    store.record_trial(cell.id, trial_key(no_value, 0), no_value, 0, diverged, None, None)

    final = run_study(spec, store, LocalExecutor(), study_id=first.study_id)
    assert final.n_run == 0 and final.status == StudyStatus.COMPLETED
    run_study(spec, store, LocalExecutor(), study_id=first.study_id)  # resumes add nothing twice
    trials = optuna.load_study(study_name=cell.optuna_study_name, storage=store.url).trials
    by_key: dict[str, list[optuna.trial.FrozenTrial]] = {}
    for t in trials:
        if t.user_attrs.get("outcome") != "failed":
            by_key.setdefault(t.user_attrs["key"], []).append(t)
    assert sorted(by_key) == sorted(grid_keys(spec, "adamw"))  # every key once: no duplicate
    assert all(len(v) == 1 for v in by_key.values())
    told = by_key[trial_key(retried, 0)][0]
    assert told.state == optuna.trial.TrialState.COMPLETE and told.value == 0.25
    assert by_key[trial_key(no_value, 0)][0].user_attrs["outcome"] == "diverged"


def test_labelled_arms_and_a_schedule_reach_the_trials(store: SQLStore) -> None:
    """Two VRAdam arms (labels) are cells of their own; both run VRAdam under the schedule."""
    seen: list[TrialRequest] = []

    class Recording(LocalExecutor):
        def run(self, requests, *args, **kwargs):  # type: ignore[no-untyped-def]
            seen.extend(requests)
            return super().run(requests, *args, **kwargs)

    spec = quadratic_spec(
        tasks=[{"name": "quadratic", "budget": {"epochs": 2, "steps_per_epoch": 5}}],
        optimizers=[
            {"name": "vradam", "fixed": {"beta3": 1.0}},
            {"name": "vradam", "label": "vradam-b10", "fixed": {"beta3": 10.0}},
        ],
        schedule={"name": "warmup_cosine", "warmup_fraction": 0.2},
        seeds=[0],
    )
    summary = run_study(spec, store, Recording())
    assert summary.status == StudyStatus.COMPLETED and summary.n_run == 6
    assert sorted(c.optimizer for c in store.list_cells(summary.study_id)) == [
        "vradam",
        "vradam-b10",
    ]
    assert {r.optimizer for r in seen} == {"vradam"}  # the registry name, not the label
    assert {r.hparams["beta3"] for r in seen} == {1.0, 10.0}
    assert all(r.schedule is not None and r.schedule.name == "warmup_cosine" for r in seen)
    assert TrialRequest.from_dict(seen[0].to_dict()) == seen[0]  # JSON transport (Ray)
    trials, _ = store.list_trials(summary.study_id, limit=100)
    by_cell = Counter(t.optimizer for t in trials)
    assert by_cell == {"vradam": 3, "vradam-b10": 3}
