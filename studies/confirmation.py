"""Confirmation runs (the DeepOBS protocol): each cell's η* re-run on fresh seeds.

After the search, a study with ``confirmation: {seeds: [...]}`` re-runs, in every cell,
the configuration the report selects (:func:`studies.report.confirm.select_for_confirmation`,
the report's own scoring) once per confirmation seed. The runs are ordinary trials of the
same cell, told apart by their seed (confirmation seeds are disjoint from the search
seeds); they are recorded in the store but not told to Optuna, so the cell's sampler and
its dashboard show the search alone. Failures are retried like search trials; finished
runs are never repeated, so a resumed study confirms only what is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from labcore.results import TrialResult
from studies.cells import Cell
from studies.recording import record_result
from studies.sampling import trial_key
from studies.spec import StudySpec
from studies.store import Store, TrialRecord
from workers.executors.base import Executor, TrialRequest

if TYPE_CHECKING:
    from studies.live import LiveProgress

logger = logging.getLogger(__name__)


def n_confirmation(spec: StudySpec, n_cells: int) -> int:
    """Confirmation trials a study plans in all (one per confirmation seed and cell)."""
    return 0 if spec.confirmation is None else len(spec.confirmation.seeds) * n_cells


def pending_confirmations(spec: StudySpec, store: Store, cell: Cell) -> list[TrialRequest]:
    """The confirmation runs of ``cell`` that still have to run (none without a η*)."""
    from studies.report.confirm import select_for_confirmation

    if spec.confirmation is None:
        return []
    records, _ = store.list_trials(cell.record.study_id, cell_id=cell.record.id, limit=10**9)
    hparams = select_for_confirmation(spec, records)
    if hparams is None:
        logger.warning("cell %s/%s: no usable search run to confirm", cell.task.name, cell.opt.key)
        return []
    by_key = {r.key: r for r in records}
    limit = 1 + spec.max_retries
    out = []
    for seed in spec.confirmation.seeds:
        key = trial_key(hparams, seed)
        done = by_key.get(key)
        if done is not None and (done.outcome.final or done.attempts >= limit):
            continue
        out.append(cell.request(hparams, seed, key))
    return out


def run_confirmations(
    spec: StudySpec,
    store: Store,
    executor: Executor,
    cells: list[Cell],
    stop: Callable[[], bool],
    on_record: Callable[[TrialRecord], None],
    live: LiveProgress | None = None,
) -> int:
    """Run every pending confirmation, in waves until none is left; return how many ran.

    Raises:
        StoreError: The database stayed unreachable until the run was stopped.
    """
    by_id = {c.record.id: c for c in cells}
    n_run = 0
    while not stop():
        requests = [r for c in cells for r in pending_confirmations(spec, store, c)]
        if not requests:
            break
        n_wave = 0
        hooks = {} if live is None else {"on_start": live.on_start, "on_epoch": live.on_epoch}
        for out in executor.run(requests, should_stop=stop, **hooks):
            if out.cancelled:
                continue
            n_run += 1
            n_wave += 1
            rec = _record(store, by_id[out.request.cell_id], out.request, out.result, stop)
            if rec is not None:
                on_record(rec)
        if n_wave == 0 and not stop():
            raise RuntimeError(f"executor {executor.name!r} returned no confirmation results")
    return n_run


def _record(
    store: Store, cell: Cell, req: TrialRequest, result: TrialResult, stop: Callable[[], bool]
) -> TrialRecord | None:
    from labcore.errors import ConflictError

    value = cell.objective_value(result)
    try:
        return record_result(store, req, result, value, None, stop)
    except ConflictError:  # another process confirmed it first
        logger.warning("confirmation %s of cell %d was recorded elsewhere", req.key, req.cell_id)
        return None
