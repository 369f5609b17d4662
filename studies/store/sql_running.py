"""The running-trials half of :class:`~studies.store.sql.SQLStore`: live progress.

One row per trial that a worker runs now, with its start time and its latest epoch.
Writes here are progress, not results: the engine calls them best effort, and a row is
removed when the trial's result is recorded (in the same transaction), when the trial is
cancelled, and whenever a run of the study starts or ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from labcore.errors import NotFoundError
from studies.store import convert
from studies.store.models import CellRow, RunningTrialRow
from studies.store.records import RunningTrialRecord


def _now() -> datetime:
    return datetime.now(UTC)


class RunningMixin:
    """Running trials on SQL (mixed into ``SQLStore``)."""

    def _session(self) -> contextlib.AbstractContextManager[Session]:  # provided by SQLStore
        raise NotImplementedError

    def start_trial(
        self,
        cell_id: int,
        key: str,
        hparams: Mapping[str, Any],
        seed: int,
        optuna_trial_number: int | None = None,
    ) -> RunningTrialRecord:
        """Mark ``(cell_id, key)`` as running from now (replacing a stale row)."""
        now = _now()
        with self._session() as s:
            cell = s.get(CellRow, cell_id)
            if cell is None:
                raise NotFoundError(f"no cell {cell_id}")
            s.execute(
                sa.delete(RunningTrialRow).where(
                    RunningTrialRow.cell_id == cell_id, RunningTrialRow.key == key
                )
            )
            row = RunningTrialRow(
                study_id=cell.study_id,
                cell_id=cell_id,
                key=key,
                hparams=dict(hparams),
                seed=seed,
                started_at=now,
                updated_at=now,
                optuna_trial_number=optuna_trial_number,
            )
            s.add(row)
            s.flush()
            return convert.running_trial(row, cell)

    def update_running(
        self, cell_id: int, key: str, epoch: int, step: int, metrics: Mapping[str, float]
    ) -> bool:
        """Store the running trial's latest epoch; False if it is not running."""
        with self._session() as s:
            done = s.execute(
                sa.update(RunningTrialRow)
                .where(RunningTrialRow.cell_id == cell_id, RunningTrialRow.key == key)
                .values(epoch=epoch, step=step, metrics=dict(metrics), updated_at=_now())
                .execution_options(synchronize_session=False)
            )
            return bool(done.rowcount)

    def clear_running(
        self, study_id: str, cell_id: int | None = None, key: str | None = None
    ) -> int:
        """Remove running rows of a study (or of one cell, or one key); return how many."""
        where = [RunningTrialRow.study_id == study_id]
        if cell_id is not None:
            where.append(RunningTrialRow.cell_id == cell_id)
        if key is not None:
            where.append(RunningTrialRow.key == key)
        with self._session() as s:
            return int(s.execute(sa.delete(RunningTrialRow).where(*where)).rowcount or 0)

    def list_running(self, study_id: str) -> list[RunningTrialRecord]:
        """Return the study's running trials, earliest start first."""
        with self._session() as s:
            rows = s.execute(
                sa.select(RunningTrialRow, CellRow)
                .join(CellRow, CellRow.id == RunningTrialRow.cell_id)
                .where(RunningTrialRow.study_id == study_id)
                .order_by(RunningTrialRow.started_at, RunningTrialRow.id)
            ).all()
            return [convert.running_trial(r, c) for r, c in rows]

    def running_counts(self, study_ids: Sequence[str]) -> dict[str, dict[int, int]]:
        """Return ``{study_id: {cell_id: running trials}}`` (one query)."""
        ids = list(dict.fromkeys(study_ids))
        out: dict[str, dict[int, int]] = {sid: {} for sid in ids}
        if not ids:
            return out
        with self._session() as s:
            for study_id, cell_id, n in s.execute(
                sa.select(RunningTrialRow.study_id, RunningTrialRow.cell_id, sa.func.count())
                .where(RunningTrialRow.study_id.in_(ids))
                .group_by(RunningTrialRow.study_id, RunningTrialRow.cell_id)
            ):
                out[study_id][int(cell_id)] = int(n)
        return out
