"""The trial half of :class:`~studies.store.sql.SQLStore`: results and per-epoch metrics.

Epoch rows carry ``study_id`` and ``cell_id`` so a study's curves load with one indexed
query; ``list_trials(with_epochs=True)`` fetches a page's epochs in one more query.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from labcore.errors import ConflictError, NotFoundError
from labcore.outcomes import Outcome
from labcore.results import EpochMetrics, TrialResult
from studies.store import convert
from studies.store.models import CellRow, EpochRow, RunningTrialRow, TrialRow
from studies.store.records import TrialRecord

FINAL = (Outcome.COMPLETE.value, Outcome.DIVERGED.value, Outcome.PRUNED.value)
"""Outcomes that end a trial for good (only ``failed`` is retried)."""


def _now() -> datetime:
    return datetime.now(UTC)


class TrialsMixin:
    """Cells' trials and epochs on SQL (mixed into ``SQLStore``)."""

    _dialect: str

    def _session(self) -> contextlib.AbstractContextManager[Session]:  # provided by SQLStore
        raise NotImplementedError

    def record_trial(
        self,
        cell_id: int,
        key: str,
        hparams: Mapping[str, Any],
        seed: int,
        result: TrialResult,
        value: float | None,
        optuna_trial_number: int | None,
    ) -> TrialRecord:
        """Record one attempt's result atomically with its epochs."""
        for attempt in range(2):
            try:
                with self._session() as s:
                    return self._record(
                        s, cell_id, key, hparams, seed, result, value, optuna_trial_number
                    )
            except sa_exc.IntegrityError:  # a concurrent first insert of this key
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _record(
        self,
        s: Session,
        cell_id: int,
        key: str,
        hparams: Mapping[str, Any],
        seed: int,
        result: TrialResult,
        value: float | None,
        optuna_trial_number: int | None,
    ) -> TrialRecord:
        cell = s.get(CellRow, cell_id)
        if cell is None:
            raise NotFoundError(f"no cell {cell_id}")
        stmt = sa.select(TrialRow).where(TrialRow.cell_id == cell_id, TrialRow.key == key)
        if self._dialect == "postgresql":
            stmt = stmt.with_for_update()
        row = s.scalars(stmt).one_or_none()
        outcome = Outcome(result.outcome).value
        if row is None:
            row = TrialRow(study_id=cell.study_id, cell_id=cell_id, key=key, attempts=0)
            s.add(row)
        else:
            # A guarded no-op write: atomically checks the row is not final and (SQLite)
            # takes the write lock, so two final results for one key cannot both land.
            guard = s.execute(
                sa.update(TrialRow)
                .where(TrialRow.id == row.id, TrialRow.outcome.not_in(FINAL))
                .values(attempts=TrialRow.attempts)
                .execution_options(synchronize_session=False)
            )
            if guard.rowcount != 1:
                raise ConflictError(f"trial {key!r} of cell {cell_id} already finished")
            s.refresh(row)
            s.execute(sa.delete(EpochRow).where(EpochRow.trial_id == row.id))
        convert.fill_trial_row(row, hparams, seed, result, value, optuna_trial_number, _now())
        row.outcome = outcome
        row.attempts += 1
        s.execute(  # the attempt ended: it is no longer running
            sa.delete(RunningTrialRow).where(
                RunningTrialRow.cell_id == cell_id, RunningTrialRow.key == key
            )
        )
        s.flush()
        s.add_all(
            EpochRow(
                trial_id=row.id,
                study_id=cell.study_id,
                cell_id=cell_id,
                epoch=e.epoch,
                step=e.step,
                metrics=dict(e.metrics),
                effective_lr_ratio=e.effective_lr_ratio,
            )
            for e in result.epochs
        )
        return convert.trial(row, cell, tuple(result.epochs))

    def finished_keys(self, cell_id: int) -> set[str]:
        """Return the cell's keys with a final outcome."""
        with self._session() as s:
            return set(
                s.scalars(
                    sa.select(TrialRow.key).where(
                        TrialRow.cell_id == cell_id, TrialRow.outcome.in_(FINAL)
                    )
                )
            )

    def attempts(self, cell_id: int, key: str) -> int:
        """Return how many attempts the key has had."""
        with self._session() as s:
            n = s.scalar(
                sa.select(TrialRow.attempts).where(TrialRow.cell_id == cell_id, TrialRow.key == key)
            )
            return int(n or 0)

    def list_trials(
        self,
        study_id: str,
        cell_id: int | None = None,
        outcome: str | None = None,
        limit: int = 100,
        offset: int = 0,
        with_epochs: bool = False,
        epoch_metrics: bool = True,
    ) -> tuple[list[TrialRecord], int]:
        """Return the study's trials oldest first (epochs in one query) and their count."""
        where = [TrialRow.study_id == study_id]
        if cell_id is not None:
            where.append(TrialRow.cell_id == cell_id)
        if outcome is not None:
            where.append(TrialRow.outcome == Outcome(outcome).value)
        with self._session() as s:
            total = s.scalar(sa.select(sa.func.count()).select_from(TrialRow).where(*where)) or 0
            rows = s.execute(
                sa.select(TrialRow, CellRow)
                .join(CellRow, CellRow.id == TrialRow.cell_id)
                .where(*where)
                .order_by(TrialRow.id)
                .limit(limit)
                .offset(offset)
            ).all()
            ids = [t.id for t, _ in rows]
            epochs = self._epochs(s, ids, epoch_metrics) if with_epochs and rows else {}
            return [convert.trial(t, c, epochs.get(t.id, ())) for t, c in rows], total

    @staticmethod
    def _epochs(
        s: Session, trial_ids: Sequence[int], with_metrics: bool = True
    ) -> dict[int, tuple[Any, ...]]:
        # Plain column tuples, not ORM entities: a report reads ~20 rows per trial, and
        # building mapped objects for each was most of its time.
        metrics_col = EpochRow.metrics if with_metrics else sa.null()
        where = [EpochRow.trial_id.in_(trial_ids)]
        if not with_metrics:
            where.append(EpochRow.effective_lr_ratio.is_not(None))
        out: dict[int, list[Any]] = {}
        for trial_id, epoch, step, metrics, ratio in s.execute(
            sa.select(
                EpochRow.trial_id,
                EpochRow.epoch,
                EpochRow.step,
                metrics_col,
                EpochRow.effective_lr_ratio,
            )
            .where(*where)
            .order_by(EpochRow.trial_id, EpochRow.epoch)
        ):
            out.setdefault(trial_id, []).append(
                EpochMetrics(
                    epoch=epoch, step=step, metrics=dict(metrics or {}), effective_lr_ratio=ratio
                )
            )
        return {k: tuple(v) for k, v in out.items()}

    def get_trial(self, study_id: str, trial_id: int) -> TrialRecord:
        """Return one trial with its epochs; NotFoundError if not in this study."""
        with self._session() as s:
            found = s.execute(
                sa.select(TrialRow, CellRow)
                .join(CellRow, CellRow.id == TrialRow.cell_id)
                .where(TrialRow.id == trial_id, TrialRow.study_id == study_id)
            ).one_or_none()
            if found is None:
                raise NotFoundError(f"no trial {trial_id} in study {study_id!r}")
            t, c = found
            return convert.trial(t, c, self._epochs(s, [t.id]).get(t.id, ()))

    def outcome_counts(self, study_id: str) -> dict[int, dict[str, int]]:
        """Return ``{cell_id: {outcome: count}}``."""
        with self._session() as s:
            out: dict[int, dict[str, int]] = {}
            for cell_id, outcome, n in s.execute(
                sa.select(TrialRow.cell_id, TrialRow.outcome, sa.func.count())
                .where(TrialRow.study_id == study_id)
                .group_by(TrialRow.cell_id, TrialRow.outcome)
            ):
                out.setdefault(cell_id, {})[outcome] = int(n)
            return out
