"""A report built from trials recorded in the real SQL store (SQLite file)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from labcore.errors import NotFoundError
from labcore.outcomes import Outcome
from labcore.results import EpochMetrics, TrialResult
from studies.report import build_report, load_trials, render
from studies.store import SQLStore
from tests.studies.report_fixtures import MAIN, make_spec


def _result(val: float | None, lr: float, optimizer: str) -> TrialResult:
    ratios = (0.9, 0.8) if optimizer == "vradam" else (None, None)
    epochs = [EpochMetrics(0, 0, {"val_loss": 2.0})]
    final = 1.5 if val is None else val
    epochs += [
        EpochMetrics(i + 1, 10 * (i + 1), {"val_loss": final}, r) for i, r in enumerate(ratios)
    ]
    metrics = {"val_loss": final, "test_loss": final + 0.05}
    return TrialResult(
        outcome=Outcome.DIVERGED if val is None else Outcome.COMPLETE,
        metrics=metrics,
        initial_metrics={"val_loss": 2.0, "test_loss": 2.0},
        epochs=tuple(epochs),
        diverged_at_step=15 if val is None else None,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLStore]:
    s = SQLStore(f"sqlite:///{tmp_path / 'lab.db'}")
    s.create_schema()
    yield s
    s.close()


def test_build_report_from_the_sql_store(store: SQLStore) -> None:
    spec = make_spec()
    study = store.create_study("fixture", spec)
    n = 0
    for opt, grid in MAIN.items():
        cell = store.ensure_cell(study.id, "t", opt, f"{study.id}/t/{opt}", n_planned=8)
        for lr, vals in grid.items():
            for seed, v in enumerate(vals):
                hp = {"lr": lr}
                key = json.dumps({"hparams": hp, "seed": seed}, sort_keys=True)
                value = 2.0 if v is None else v
                store.record_trial(cell.id, key, hp, seed, _result(v, lr, opt), value, n)
                n += 1
    assert len(load_trials(store, study.id, page_size=3)) == 16  # pages through every trial

    running = build_report(store, study.id)
    assert running.partial  # queued, not completed
    store.set_status(study.id, "running")
    store.set_status(study.id, "completed")
    rep = build_report(store, study.id)
    assert not rep.partial and rep.study_id == study.id and rep.study_name == "fixture"
    adamw = next(o for o in rep.tasks[0].optimizers if o.optimizer == "adamw")
    vradam = next(o for o in rep.tasks[0].optimizers if o.optimizer == "vradam")
    assert adamw.lr_star == 1e-2 and vradam.lr_star == 1e-1
    assert [p.estimate.mean for p in adamw.curve] == pytest.approx([0.85, 0.5, 0.6, 2.0])
    assert adamw.curve[3].diverged_seeds == [0, 1]
    assert vradam.paired is not None and vradam.paired.overall is not None
    assert vradam.paired.overall.mean_diff == pytest.approx(-0.1875)
    assert vradam.headline is not None and vradam.headline.diff.values == pytest.approx([-0.1] * 2)
    assert rep.tasks[0].l0_test == 2.0  # the test metric's initial value, per seed
    assert vradam.effective_lr[0].mean_ratio == pytest.approx([0.9, 0.8])
    assert "| vradam | 0.1 |" in render(rep, "md")


def test_build_report_of_an_unknown_study(store: SQLStore) -> None:
    with pytest.raises(NotFoundError):
        build_report(store, "nope")


def test_list_trials_without_epoch_metrics_keeps_only_the_effective_lr(store: SQLStore) -> None:
    study = store.create_study("light", make_spec())
    for opt in ("adamw", "vradam"):
        cell = store.ensure_cell(study.id, "t", opt, f"{study.id}/t/{opt}", n_planned=1)
        store.record_trial(cell.id, "k", {"lr": 0.1}, 0, _result(1.0, 0.1, opt), 1.0, None)
    full, _ = store.list_trials(study.id, with_epochs=True)
    light, _ = store.list_trials(study.id, with_epochs=True, epoch_metrics=False)
    by_opt = {t.optimizer: t for t in light}
    assert [len(t.epochs) for t in full] == [3, 3]
    assert by_opt["adamw"].epochs == ()  # no effective learning rate to carry
    assert [(e.epoch, e.step, e.effective_lr_ratio) for e in by_opt["vradam"].epochs] == [
        (1, 10, 0.9),
        (2, 20, 0.8),
    ]
    assert all(e.metrics == {} for e in by_opt["vradam"].epochs)
    # Everything but the epochs is identical to the full read.
    strip = [t.__class__(**{**t.__dict__, "epochs": ()}) for t in full]
    assert strip == [t.__class__(**{**t.__dict__, "epochs": ()}) for t in light]
