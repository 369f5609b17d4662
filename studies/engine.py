"""The engine: a held study's trials run, and every result lands in the store.

:func:`execute` expands a study into cells (one Optuna study per (task, optimizer),
created up front in the store's database), asks Optuna for hyperparameters, runs each
``(hparams, seed)`` exactly once on the given executor (retrying failures up to
``max_retries``), and records every result. Running the same study again continues where
it stopped: finished keys are skipped. The engine reports; it never sets the study's
status: the runner (:mod:`studies.runner`) holds the lease and decides that.

The engine imports neither torch nor ray: it receives an executor object.
"""

from __future__ import annotations

import logging
import math
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna

from labcore.errors import ConflictError
from labcore.outcomes import Outcome
from studies.cells import Cell
from studies.confirmation import n_confirmation, run_confirmations
from studies.live import LiveProgress
from studies.plan import WorkItem, n_planned, optuna_study_name
from studies.recording import record_result
from studies.spec import StudySpec
from studies.store import CellRecord, Store, StudyRecord, StudyStatus, TrialRecord
from studies.store.sql import engine_kwargs
from workers.executors.base import Executor, TrialOutcome

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProgressEvent:
    """Sent to the ``progress`` callback at the start and after every recorded trial.

    Attributes:
        done: Trials with a final result (or out of retries).
        total: Trials planned.
        best_value: Best objective among complete trials so far.
        best_cell: ``task/optimizer`` of that trial.
        elapsed_s: Seconds since this run started.
        record: The trial just recorded (``None`` for the start event).
    """

    done: int
    total: int
    best_value: float | None
    best_cell: str | None
    elapsed_s: float
    record: TrialRecord | None = None


@dataclass(frozen=True)
class CellSummary:
    """Per-cell result: counts by outcome and the best configuration (mean over seeds)."""

    cell: CellRecord
    counts: dict[str, int]
    best_value: float | None
    best_hparams: dict[str, Any] | None

    @property
    def best_lr(self) -> float | None:
        """The best configuration's learning rate."""
        return None if self.best_hparams is None else self.best_hparams.get("lr")


@dataclass(frozen=True)
class StudySummary:
    """What ``run_study`` returns."""

    study_id: str
    name: str
    status: StudyStatus
    cells: list[CellSummary]
    n_planned: int
    n_run: int
    elapsed_s: float
    disclosures: list[str] = field(default_factory=list)
    metric: str = "val_loss"


class _Throttled:
    """Calls ``fn`` at most every ``period`` seconds; latches once True.

    The default period is 0: callers pass cheap checks (an event set by a heartbeat
    thread or a signal handler), and a cancellation should take effect at once.
    """

    def __init__(self, fn: Callable[[], bool] | None, period: float = 0.0) -> None:
        self._fn, self._period = fn, period
        self._last = -math.inf
        self._value = False
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        if self._fn is None or self._value:
            return self._value
        with self._lock:
            now = time.monotonic()
            if now - self._last >= self._period:
                self._last = now
                self._value = bool(self._fn())
        return self._value


def open_optuna_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage on the store's database (same URL, same SQLite timeouts)."""
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs(url))


def execute(
    spec: StudySpec,
    store: Store,
    executor: Executor,
    study_id: str,
    progress: Callable[[ProgressEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[int, bool]:
    """Run every unfinished trial of a study that the caller holds; record each result.

    The study's status is not touched here: the runner (:mod:`studies.runner`) decides
    it from what happened.

    Args:
        spec: The validated study definition.
        store: Where everything is recorded; its schema must exist.
        executor: Where trials run.
        study_id: The study (created by the caller).
        progress: Called with a :class:`ProgressEvent` at the start and after each trial.
        should_stop: Polled between trials and after every epoch (keep it cheap); True
            stops within seconds, keeping every finished trial.

    Returns:
        ``(trials run now, whether should_stop ended the run)``.

    Raises:
        NotFoundError: ``study_id`` does not exist.
        StoreError: The database is unreachable (the study stays resumable).
    """
    t0 = time.monotonic()
    record = store.get_study(study_id)
    logger.info("study %s (%s): running", record.id, spec.name)
    stop = _Throttled(should_stop)
    storage = open_optuna_storage(store.url)
    cells: list[Cell] = []
    live = LiveProgress(store, record.id, {})
    try:
        for task in spec.tasks:
            for opt in spec.optimizers:
                rec = store.ensure_cell(
                    record.id,
                    task.name,
                    opt.key,
                    optuna_study_name(spec.name, record.id, task.name, opt.key),
                    n_planned(spec, opt.key),
                )
                cells.append(Cell(spec, rec, storage))
        live.cells = {c.record.id: c for c in cells}
        n_run = _run_cells(spec, store, executor, record, cells, stop, progress, t0, live)
        return n_run, stop()
    except BaseException:
        for cell in cells:
            cell.abandon()
        raise
    finally:
        live.clear()  # nothing of this run runs any more
        storage.remove_session()
        storage.engine.dispose()


def _cell_state(
    store: Store, study_id: str, cell: Cell
) -> tuple[dict[str, TrialRecord], dict[str, int]]:
    records, _ = store.list_trials(study_id, cell_id=cell.record.id, limit=10**9)
    finished = {r.key: r for r in records if r.outcome.final}
    return finished, {r.key: r.attempts for r in records}


def _run_cells(
    spec: StudySpec,
    store: Store,
    executor: Executor,
    record: StudyRecord,
    cells: list[Cell],
    stop: _Throttled,
    progress: Callable[[ProgressEvent], None] | None,
    t0: float,
    live: LiveProgress,
) -> int:
    by_id = {c.record.id: c for c in cells}
    live.clear()  # rows a crashed run left behind: those trials run again
    state = {c.record.id: _cell_state(store, record.id, c) for c in cells}
    for c in cells:
        c.prepare(state[c.record.id][0])
    total = sum(c.record.n_planned for c in cells) + n_confirmation(spec, len(cells))
    best: list[Any] = [None, None]  # value, cell label
    sign = 1.0 if spec.objective.direction == "minimize" else -1.0
    for c in cells:
        for r in state[c.record.id][0].values():
            _update_best(best, r, sign)

    limit = 1 + spec.max_retries
    done = [sum(len(f) + c.exhausted(a, set(f)) for c in cells for f, a in [state[c.record.id]])]

    def emit(rec: TrialRecord | None) -> None:
        if rec is not None and (rec.outcome.final or rec.attempts >= limit):
            done[0] += 1
        if progress is not None:
            progress(ProgressEvent(done[0], total, best[0], best[1], time.monotonic() - t0, rec))

    emit(None)
    n_run = 0
    # Sampled cells ask for configurations in waves (adaptive samplers learn between
    # waves); grid cells submit everything at once.
    per_wave = max(1, math.ceil(executor.max_concurrent / (len(spec.seeds) * len(cells))))
    while not stop():
        items: list[tuple[Cell, WorkItem]] = []
        for c in cells:
            fin, att = state[c.record.id]
            items.extend((c, it) for it in c.pending(set(fin), att, per_wave))
        if not items:
            break
        requests = [c.launch(it) for c, it in items]

        def prune(request: Any, epoch: Any) -> bool:
            return by_id[request.cell_id].should_prune(request, epoch)

        should_prune = prune if spec.pruning.name != "none" else None
        n_wave = 0
        outcomes = executor.run(
            requests,
            should_stop=stop,
            should_prune=should_prune,
            on_start=live.on_start,
            on_epoch=live.on_epoch,
        )
        try:
            for out in outcomes:
                rec = _handle(store, by_id[out.request.cell_id], out, state, stop)
                if out.cancelled:
                    live.clear(out.request.cell_id, out.request.key)
                n_run += 1
                n_wave += 1
                if rec is not None:
                    _update_best(best, rec, sign)
                    emit(rec)
        finally:  # on an error, stop the executor's running trials now, not at collection
            close = getattr(outcomes, "close", None)
            if close is not None:
                close()
        for c in cells:  # requests that never started (cancellation)
            c.abandon()
        if n_wave == 0 and not stop():
            raise RuntimeError(f"executor {executor.name!r} returned no results")
    if not stop():  # the search is done: confirm each cell's η* on fresh seeds
        n_run += run_confirmations(spec, store, executor, cells, stop, emit, live)
    return n_run


def _handle(
    store: Store,
    cell: Cell,
    out: TrialOutcome,
    state: dict[int, tuple[dict[str, TrialRecord], dict[str, int]]],
    stop: Callable[[], bool],
) -> TrialRecord | None:
    req, result = out.request, out.result
    if out.cancelled:
        cell.tell(req.key, None, None)
        return None
    value = cell.objective_value(result)
    number = cell.trial_number(req.key)
    try:
        rec = record_result(store, req, result, value, number, stop)
    except ConflictError:
        logger.warning("trial %s of cell %d was already finished elsewhere", req.key, req.cell_id)
        cell.tell(req.key, None, None)  # whoever recorded it tells Optuna its own trial
        return _finished_elsewhere(store, cell, req.key, state[req.cell_id])
    cell.tell(req.key, result, value)
    fin, att = state[req.cell_id]
    att[req.key] = rec.attempts
    if rec.outcome.final:
        fin[req.key] = rec
    elif result.error:
        logger.warning("trial %s failed (attempt %d): %s", req.key, rec.attempts, result.error)
    return rec


def _finished_elsewhere(
    store: Store, cell: Cell, key: str, state: tuple[dict[str, TrialRecord], dict[str, int]]
) -> TrialRecord | None:
    """Adopt the stored final result of a key another process recorded first.

    Without this the key would stay unfinished here and be asked for again forever.
    """
    fin, att = state
    records, _ = store.list_trials(cell.record.study_id, cell_id=cell.record.id, limit=10**9)
    rec = next((r for r in records if r.key == key), None)
    if rec is not None and rec.outcome.final:
        fin[key], att[key] = rec, rec.attempts
        return rec
    # Not final after all (deleted meanwhile?): give up on the key rather than loop.
    logger.error("trial %s of cell %d: no final result stored; not retried", key, cell.record.id)
    att[key] = 1 + cell.spec.max_retries
    return None


def _update_best(best: list[Any], rec: TrialRecord, sign: float) -> None:
    if rec.outcome != str(Outcome.COMPLETE) or rec.value is None:
        return
    if best[0] is None or sign * rec.value < sign * best[0]:
        best[0], best[1] = rec.value, f"{rec.task}/{rec.optimizer}"


def summarize(
    spec: StudySpec,
    store: Store,
    study_id: str,
    *,
    n_run: int = 0,
    elapsed_s: float = 0.0,
) -> StudySummary:
    """Summarise a study from the store: per cell, counts and best mean-over-seeds config.

    A diverged trial counts with its told value (the initial metric); failed ones do not.

    Raises:
        NotFoundError: No such study.
    """
    record = store.get_study(study_id)
    counts = store.outcome_counts(study_id)
    sign = 1.0 if spec.objective.direction == "minimize" else -1.0
    cell_records = store.list_cells(study_id)
    search_seeds = set(spec.seeds)  # confirmation runs are reported apart
    cells = []
    for cell in cell_records:
        records, _ = store.list_trials(study_id, cell_id=cell.id, limit=10**9)
        groups: dict[str, list[float]] = defaultdict(list)
        configs: dict[str, dict[str, Any]] = {}
        for r in records:
            if r.outcome.scored and r.value is not None and r.seed in search_seeds:
                cfg = repr(sorted(r.hparams.items()))
                groups[cfg].append(r.value)
                configs[cfg] = r.hparams
        means = {k: statistics.fmean(v) for k, v in groups.items()}
        best_key = min(means, key=lambda k: sign * means[k]) if means else None
        cells.append(
            CellSummary(
                cell=cell,
                counts=dict(counts.get(cell.id, {})),
                best_value=means[best_key] if best_key else None,
                best_hparams=dict(configs[best_key]) if best_key else None,
            )
        )
    return StudySummary(
        study_id=study_id,
        name=record.name,
        status=record.status,
        cells=cells,
        n_planned=sum(c.n_planned for c in cell_records),
        n_run=n_run,
        elapsed_s=elapsed_s,
        disclosures=spec.disclosures(),
        metric=spec.objective.metric,
    )
