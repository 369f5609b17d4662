"""Confirmation runs: after the search, each cell's η* re-runs once per fresh seed."""

from __future__ import annotations

import optuna

from studies.engine import ProgressEvent
from studies.report.confirm import select_for_confirmation
from studies.runner import run_study
from studies.spec import parse_spec
from studies.store import SQLStore, StudyStatus
from tests.studies.test_engine import quadratic_spec
from workers.executors import LocalExecutor


def test_each_cells_eta_star_is_confirmed_on_fresh_seeds_once(store: SQLStore) -> None:
    data = quadratic_spec(confirmation={"seeds": [10, 11, 12]})
    spec = parse_spec(data)
    events: list[ProgressEvent] = []
    summary = run_study(data, store, LocalExecutor(), progress=events.append)
    assert summary.status == StudyStatus.COMPLETED
    assert events[-1].done == events[-1].total == 12 + 2 * 3
    trials, total = store.list_trials(summary.study_id, limit=100)
    assert total == 18
    for cell in store.list_cells(summary.study_id):
        mine = [t for t in trials if t.cell_id == cell.id]
        search = [t for t in mine if t.seed in spec.seeds]
        confirm = [t for t in mine if t.seed not in spec.seeds]
        chosen = select_for_confirmation(spec, search)
        assert chosen is not None
        assert sorted(t.seed for t in confirm) == [10, 11, 12]
        assert all(t.hparams == chosen for t in confirm)  # the report's own η*
        study = optuna.load_study(study_name=cell.optuna_study_name, storage=store.url)
        assert len(study.trials) == 6  # Optuna saw the search alone
    again = run_study(data, store, LocalExecutor(), study_id=summary.study_id)
    assert again.n_run == 0  # nothing confirmed twice
    # the summary's best configuration is the search's, not a mix with the fresh seeds
    adamw = next(c for c in summary.cells if c.cell.optimizer == "adamw")
    assert adamw.best_lr == 0.1
