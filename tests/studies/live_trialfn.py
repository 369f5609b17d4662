"""A trial function that runs the real ``run_trial`` and looks at the store mid-trial.

``observed`` wraps the executor's reporter: after the executor has handled an epoch (and
so the engine's live-progress hooks have written it), it reads the store's running
trials and the cell's Optuna trials from the database, and keeps what it saw in
:data:`SEEN`. The test sets :data:`STORE_URL` first.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import optuna

from labcore.budget import Budget
from labcore.results import EpochMetrics, TrialResult
from studies.store import SQLStore
from workers.trial import run_trial

STORE_URL: str = ""
SEEN: list[dict[str, Any]] = []
_lock = threading.Lock()


def _look(hparams: Mapping[str, Any], seed: int, epoch: EpochMetrics) -> None:
    store = SQLStore(STORE_URL)
    try:
        study = store.list_studies()[0][0]
        running = store.list_running(study.id)
        cells = store.list_cells(study.id)
    finally:
        store.close()
    storage = optuna.storages.RDBStorage(STORE_URL)
    try:
        trials = [
            t
            for c in cells
            for t in optuna.load_study(study_name=c.optuna_study_name, storage=storage).trials
        ]
    finally:
        storage.engine.dispose()
    with _lock:
        SEEN.append(
            {
                "hparams": dict(hparams),
                "seed": seed,
                "epoch": epoch.epoch,
                "running": running,
                "optuna": trials,
            }
        )


def observed(
    task: str,
    optimizer: str,
    hparams: Mapping[str, Any],
    seed: int,
    budget: Budget | None = None,
    report: Any = None,
    **kw: Any,
) -> TrialResult:
    """``run_trial``, reading the store after every epoch the executor was told of."""

    def watched(epoch: EpochMetrics) -> bool:
        stop = bool(report(epoch)) if report is not None else False
        _look(hparams, seed, epoch)
        return stop

    return run_trial(task, optimizer, hparams, seed, budget, watched, **kw)
