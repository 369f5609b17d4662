"""Build a report from the store: the study, its cells and every trial with its epochs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from studies.report.analysis import analyze
from studies.report.model import Report

if TYPE_CHECKING:
    from studies.store.base import Store
    from studies.store.records import TrialRecord

PAGE_SIZE = 1000


def load_trials(store: Store, study_id: str, page_size: int = PAGE_SIZE) -> list[TrialRecord]:
    """Return every trial of a study with its epochs, paging through the store.

    Raises:
        StoreError: The database is unreachable.
    """
    trials: list[TrialRecord] = []
    while True:
        # Epoch metrics are not decoded: the report reads only the effective learning rate.
        page, total = store.list_trials(
            study_id, limit=page_size, offset=len(trials), with_epochs=True, epoch_metrics=False
        )
        trials.extend(page)
        if not page or len(trials) >= total:
            return trials


def build_report(store: Store, study_id: str, baseline: str = "adamw") -> Report:
    """Read a study and its trials from ``store`` and analyse them.

    The report is partial while the study is not ``completed`` or when a cell has fewer
    final trials than it planned.

    Raises:
        NotFoundError: No study has this id.
        StoreError: The database is unreachable.
        SpecError: The stored spec's objective direction is invalid.
    """
    study = store.get_study(study_id)
    planned = {(c.task, c.optimizer): c.n_planned for c in store.list_cells(study_id)}
    trials = load_trials(store, study_id)
    return analyze(
        trials,
        study.spec,
        baseline=baseline,
        partial=str(study.status) != "completed",
        study_id=study.id,
        study_name=study.name,
        planned=planned,
    )
