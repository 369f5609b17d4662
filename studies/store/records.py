"""Plain records the store returns: frozen dataclasses, torch-free.

Every datetime is timezone-aware UTC. Records are snapshots: mutate the database through
:class:`studies.store.base.Store` and read a fresh record back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from labcore.outcomes import Outcome
from labcore.results import EpochMetrics


class StudyStatus(enum.StrEnum):
    """Life cycle of a study: queued -> running -> completed | failed | cancelled."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """Whether the study reached a final state."""
        return self in (StudyStatus.COMPLETED, StudyStatus.FAILED, StudyStatus.CANCELLED)


@dataclass(frozen=True)
class StudyRecord:
    """A study as submitted, with its status and lease.

    Attributes:
        id: Short uuid hex.
        name: The spec's name.
        spec: The :class:`studies.spec.StudySpec` as a JSON-able dict.
        status: Where the study is in its life cycle.
        created_at: When it was submitted.
        started_at: When a worker first started it.
        finished_at: When it reached a final state.
        worker_id: The worker holding the lease, if any.
        lease_expires_at: When the worker's lease runs out.
        cancel_requested: Whether a user asked to cancel it.
        error: Why it failed, if it did (or, for a completed one, which trials failed).
        note: What a running study is waiting for (e.g. a node with a GPU), if anything.
    """

    id: str
    name: str
    spec: dict[str, Any]
    status: StudyStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    worker_id: str | None
    lease_expires_at: datetime | None
    cancel_requested: bool
    error: str | None
    note: str | None = None


@dataclass(frozen=True)
class CellRecord:
    """One (task, optimizer) pair of a study: one Optuna study in the same database.

    Attributes:
        id: Database id.
        study_id: The owning study.
        task: Task registry name.
        optimizer: The arm: the entry's label, else its registry name (or import string).
        optuna_study_name: ``<study>/<task>/<optimizer>``.
        n_planned: Trials planned for this cell (grid points x seeds, or n_trials x seeds).
    """

    id: int
    study_id: str
    task: str
    optimizer: str
    optuna_study_name: str
    n_planned: int


@dataclass(frozen=True)
class TrialRecord:
    """One (hyperparameters, seed) run of a cell and its latest result.

    Attributes:
        id: Database id.
        study_id: The owning study.
        cell_id: The owning cell.
        task: The cell's task.
        optimizer: The cell's optimizer.
        key: Canonical key of ``(hparams, seed)`` (see :func:`studies.sampling.trial_key`).
        hparams: The full hyperparameters passed to the optimizer.
        seed: The trial's seed.
        outcome: How the latest attempt ended.
        value: The objective as told to Optuna (a diverged trial: the initial value).
        metrics: Final metrics.
        initial_metrics: Metrics at initialisation (epoch 0).
        diverged_at_step: The step at which a diverged trial stopped.
        effective_lr: VRAdam's effective-learning-rate statistics.
        wall_time_s: Wall-clock seconds of the last attempt.
        attempts: How many times the trial ran (failed attempts included).
        error: The last failure's message.
        optuna_trial_number: The Optuna trial this result was told to.
        finished_at: When the latest result was recorded.
        epochs: Per-epoch metrics, filled only when asked for.
        device: Where the latest attempt ran (``"cpu"``, ``"cuda"``); None before one did.
    """

    id: int
    study_id: str
    cell_id: int
    task: str
    optimizer: str
    key: str
    hparams: dict[str, Any]
    seed: int
    outcome: Outcome
    value: float | None
    metrics: dict[str, float]
    initial_metrics: dict[str, float]
    diverged_at_step: int | None
    effective_lr: dict[str, float]
    wall_time_s: float
    attempts: int
    error: str | None
    optuna_trial_number: int | None
    finished_at: datetime | None
    epochs: tuple[EpochMetrics, ...] = ()
    device: str | None = None


@dataclass(frozen=True)
class RunningTrialRecord:
    """A trial running now (live progress; it has no outcome yet).

    Attributes:
        id: Database id (of the running row, not of a :class:`TrialRecord`).
        study_id: The owning study.
        cell_id: The owning cell.
        task: The cell's task.
        optimizer: The cell's optimizer.
        key: Canonical key of ``(hparams, seed)``.
        hparams: The full hyperparameters.
        seed: The trial's seed.
        started_at: When the attempt started.
        updated_at: When its latest epoch arrived (or it started).
        epoch: The latest epoch reported (0: at initialisation), None before one.
        step: The optimizer step at that epoch.
        metrics: That epoch's metrics.
        optuna_trial_number: The live Optuna trial, when there is one.
    """

    id: int
    study_id: str
    cell_id: int
    task: str
    optimizer: str
    key: str
    hparams: dict[str, Any]
    seed: int
    started_at: datetime
    updated_at: datetime
    epoch: int | None = None
    step: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    optuna_trial_number: int | None = None


@dataclass(frozen=True)
class TokenRecord:
    """An API token (the secret itself is never stored, only its sha256 hash).

    Attributes:
        id: Database id.
        name: Unique name.
        scopes: ``"read"`` and/or ``"write"``.
        created_at: When it was created.
        revoked_at: When it was revoked, if it was.
        last_used_at: When it last authenticated a request.
    """

    id: int
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
