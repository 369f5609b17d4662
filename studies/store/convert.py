"""Conversions between the store's table rows and its records."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from labcore.outcomes import Outcome
from labcore.results import EpochMetrics, TrialResult
from studies.store.models import CellRow, EpochRow, RunningTrialRow, StudyRow, TokenRow, TrialRow
from studies.store.records import (
    CellRecord,
    RunningTrialRecord,
    StudyRecord,
    StudyStatus,
    TokenRecord,
    TrialRecord,
)


def study(r: StudyRow, *, with_spec: bool = True) -> StudyRecord:
    """Row -> record (``with_spec=False``: the spec column was not loaded; ``spec`` is empty)."""
    return StudyRecord(
        id=r.id,
        name=r.name,
        spec=dict(r.spec or {}) if with_spec else {},
        status=StudyStatus(r.status),
        created_at=r.created_at,
        started_at=r.started_at,
        finished_at=r.finished_at,
        worker_id=r.worker_id,
        lease_expires_at=r.lease_expires_at,
        cancel_requested=bool(r.cancel_requested),
        error=r.error,
        note=r.note,
    )


def cell(r: CellRow) -> CellRecord:
    """Row -> record."""
    return CellRecord(
        id=r.id,
        study_id=r.study_id,
        task=r.task,
        optimizer=r.optimizer,
        optuna_study_name=r.optuna_study_name,
        n_planned=r.n_planned,
    )


def epoch(r: EpochRow) -> EpochMetrics:
    """Row -> per-epoch metrics."""
    return EpochMetrics(
        epoch=r.epoch,
        step=r.step,
        metrics=dict(r.metrics or {}),
        effective_lr_ratio=r.effective_lr_ratio,
    )


def trial(r: TrialRow, c: CellRow, epochs: tuple[EpochMetrics, ...] = ()) -> TrialRecord:
    """Row (with its cell) -> record."""
    return TrialRecord(
        id=r.id,
        study_id=r.study_id,
        cell_id=r.cell_id,
        task=c.task,
        optimizer=c.optimizer,
        key=r.key,
        hparams=dict(r.hparams or {}),
        seed=r.seed,
        outcome=Outcome(r.outcome),
        value=r.value,
        metrics=dict(r.metrics or {}),
        initial_metrics=dict(r.initial_metrics or {}),
        diverged_at_step=r.diverged_at_step,
        effective_lr=dict(r.effective_lr or {}),
        wall_time_s=float(r.wall_time_s or 0.0),
        attempts=r.attempts,
        error=r.error,
        optuna_trial_number=r.optuna_trial_number,
        finished_at=r.finished_at,
        epochs=epochs,
        device=r.device,
    )


def token(r: TokenRow) -> TokenRecord:
    """Row -> record."""
    return TokenRecord(
        id=r.id,
        name=r.name,
        scopes=tuple(r.scopes or ()),
        created_at=r.created_at,
        revoked_at=r.revoked_at,
        last_used_at=r.last_used_at,
    )


def _floats(m: Mapping[str, Any]) -> dict[str, float]:
    return {str(k): float(v) for k, v in m.items() if v is not None}


def fill_trial_row(
    row: TrialRow,
    hparams: Mapping[str, Any],
    seed: int,
    result: TrialResult,
    value: float | None,
    optuna_trial_number: int | None,
    now: datetime,
) -> None:
    """Copy one attempt's result into ``row`` (outcome and attempts are the caller's)."""
    row.hparams = dict(hparams)
    row.seed = int(seed)
    row.value = value if value is not None and math.isfinite(value) else None
    row.metrics = _floats(result.metrics)
    row.initial_metrics = _floats(result.initial_metrics)
    row.diverged_at_step = result.diverged_at_step
    row.effective_lr = _floats(result.effective_lr)
    row.wall_time_s = float(result.wall_time_s)
    row.error = result.error
    row.device = result.device
    row.optuna_trial_number = optuna_trial_number
    row.finished_at = now


def running_trial(r: RunningTrialRow, c: CellRow) -> RunningTrialRecord:
    """Row (with its cell) -> record."""
    return RunningTrialRecord(
        id=r.id,
        study_id=r.study_id,
        cell_id=r.cell_id,
        task=c.task,
        optimizer=c.optimizer,
        key=r.key,
        hparams=dict(r.hparams or {}),
        seed=r.seed,
        started_at=r.started_at,
        updated_at=r.updated_at,
        epoch=r.epoch,
        step=r.step,
        metrics=dict(r.metrics or {}),
        optuna_trial_number=r.optuna_trial_number,
    )
