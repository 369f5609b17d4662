"""Live progress: the engine's hooks that show running trials while they run.

When a trial starts, the store gets a running row (``vradam-hpo status``/``trials``,
``GET /v1/studies/{id}/trials``) and the cell a RUNNING Optuna trial with a real start
time; every epoch updates the row and reports the objective to Optuna as an
intermediate value, so optuna-dashboard draws learning curves as they arrive.

Progress is best effort: a failed progress write is logged and the trial goes on (its
result, recorded by :mod:`studies.recording`, is what counts).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from labcore.results import EpochMetrics
from studies.cells import Cell
from studies.store import Store
from workers.executors.base import TrialRequest

logger = logging.getLogger(__name__)


class LiveProgress:
    """The ``on_start``/``on_epoch`` hooks of one study's run.

    Args:
        store: The study's store.
        study_id: The study.
        cells: The run's cells by id (a request of an unknown cell only gets a row).
    """

    def __init__(self, store: Store, study_id: str, cells: Mapping[int, Cell]) -> None:
        self.store = store
        self.study_id = study_id
        self.cells = dict(cells)

    def on_start(self, request: TrialRequest) -> None:
        """A trial started: a live Optuna trial and a running row."""
        cell = self.cells.get(request.cell_id)
        number = None
        try:
            number = cell.start(request.key) if cell is not None else None
        except Exception:
            logger.warning("trial %s: no live Optuna trial", request.key, exc_info=True)
        try:
            self.store.start_trial(
                request.cell_id, request.key, request.hparams, request.seed, number
            )
        except Exception:
            logger.warning("trial %s: could not mark it running", request.key, exc_info=True)

    def on_epoch(self, request: TrialRequest, epoch: EpochMetrics) -> None:
        """An epoch ended: the running row's latest metrics, Optuna's intermediate value."""
        cell = self.cells.get(request.cell_id)
        try:
            if cell is not None:
                cell.report(request.key, epoch)
        except Exception:
            logger.warning("trial %s: could not report epoch %d", request.key, epoch.epoch)
        try:
            self.store.update_running(
                request.cell_id, request.key, epoch.epoch, epoch.step, dict(epoch.metrics)
            )
        except Exception:
            logger.warning("trial %s: could not store epoch %d", request.key, epoch.epoch)

    def clear(self, cell_id: int | None = None, key: str | None = None) -> None:
        """Remove running rows (all of the study's by default); best effort."""
        try:
            self.store.clear_running(self.study_id, cell_id, key)
        except Exception:
            logger.warning("study %s: could not clear running trials", self.study_id)
