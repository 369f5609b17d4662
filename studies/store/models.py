"""SQLAlchemy 2 models of the lab's tables (mirrored by ``studies/migrations``).

Optuna's RDB storage shares the database and owns the unprefixed tables (``studies``,
``trials``, ``alembic_version``...), so every table here is prefixed ``lab_`` and our
Alembic history is kept in ``lab_alembic_version``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

VERSION_TABLE = "lab_alembic_version"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware.

    SQLite has no time zones, so values are stored naive in UTC there (an ISO string that
    sorts chronologically); PostgreSQL keeps ``timestamptz``.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Convert to UTC; naive values are taken as UTC."""
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _encode(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {str(k): _encode(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_encode(v) for v in obj]
    return obj


def _decode_metrics(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _NONFINITE.get(v, v) if isinstance(v, str) else v for k, v in obj.items()}
    return obj


class SafeJSON(TypeDecorator[Any]):
    """JSON that round-trips non-finite floats (PostgreSQL's json rejects NaN).

    ``nan``/``inf`` are stored as the strings ``"NaN"``/``"Infinity"`` and turned back into
    floats on read for flat ``{name: value}`` mappings (metrics).
    """

    impl = sa.JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        """Encode non-finite floats."""
        return None if value is None else _encode(value)


class MetricsJSON(SafeJSON):
    """A flat ``{metric: float}`` mapping; non-finite values are decoded back to floats."""

    cache_ok = True

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        """Decode ``"NaN"``/``"Infinity"`` strings."""
        return _decode_metrics(value)


class Base(DeclarativeBase):
    """Declarative base of the lab's tables."""


class StudyRow(Base):
    """A submitted study."""

    __tablename__ = "lab_studies"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(SafeJSON)
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    worker_id: Mapped[str | None] = mapped_column(sa.String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    error: Mapped[str | None] = mapped_column(sa.Text)
    note: Mapped[str | None] = mapped_column(sa.Text)  # what a running study waits for


class CellRow(Base):
    """One (task, optimizer) of a study."""

    __tablename__ = "lab_cells"
    __table_args__ = (sa.UniqueConstraint("study_id", "task", "optimizer"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[str] = mapped_column(
        sa.String(32), sa.ForeignKey("lab_studies.id", ondelete="CASCADE"), index=True
    )
    task: Mapped[str] = mapped_column(sa.String(200))
    optimizer: Mapped[str] = mapped_column(sa.String(300))
    optuna_study_name: Mapped[str] = mapped_column(sa.String(512), unique=True)
    n_planned: Mapped[int] = mapped_column(sa.Integer)


class TrialRow(Base):
    """One (hyperparameters, seed) of a cell, with its latest result."""

    __tablename__ = "lab_trials"
    __table_args__ = (sa.UniqueConstraint("cell_id", "key"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[str] = mapped_column(
        sa.String(32), sa.ForeignKey("lab_studies.id", ondelete="CASCADE"), index=True
    )
    cell_id: Mapped[int] = mapped_column(
        sa.Integer, sa.ForeignKey("lab_cells.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(sa.String(128))
    hparams: Mapped[dict[str, Any]] = mapped_column(SafeJSON)
    seed: Mapped[int] = mapped_column(sa.Integer)
    outcome: Mapped[str] = mapped_column(sa.String(16), index=True)
    value: Mapped[float | None] = mapped_column(sa.Float)
    metrics: Mapped[dict[str, float]] = mapped_column(MetricsJSON)
    initial_metrics: Mapped[dict[str, float]] = mapped_column(MetricsJSON)
    diverged_at_step: Mapped[int | None] = mapped_column(sa.Integer)
    effective_lr: Mapped[dict[str, float]] = mapped_column(MetricsJSON)
    wall_time_s: Mapped[float] = mapped_column(sa.Float)
    attempts: Mapped[int] = mapped_column(sa.Integer)
    error: Mapped[str | None] = mapped_column(sa.Text)
    device: Mapped[str | None] = mapped_column(sa.String(32))
    optuna_trial_number: Mapped[int | None] = mapped_column(sa.Integer)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EpochRow(Base):
    """Metrics of one epoch of one trial (epoch 0 = at initialisation).

    ``study_id`` and ``cell_id`` are denormalised so a report reads a study's curves with
    one indexed query.
    """

    __tablename__ = "lab_trial_epochs"
    __table_args__ = (sa.UniqueConstraint("trial_id", "epoch"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    trial_id: Mapped[int] = mapped_column(
        sa.Integer, sa.ForeignKey("lab_trials.id", ondelete="CASCADE")
    )
    study_id: Mapped[str] = mapped_column(
        sa.String(32), sa.ForeignKey("lab_studies.id", ondelete="CASCADE"), index=True
    )
    cell_id: Mapped[int] = mapped_column(
        sa.Integer, sa.ForeignKey("lab_cells.id", ondelete="CASCADE")
    )
    epoch: Mapped[int] = mapped_column(sa.Integer)
    step: Mapped[int] = mapped_column(sa.Integer)
    metrics: Mapped[dict[str, float]] = mapped_column(MetricsJSON)
    effective_lr_ratio: Mapped[float | None] = mapped_column(sa.Float)


class RunningTrialRow(Base):
    """A trial that a worker runs now: its start and its latest epoch (live progress).

    Deleted when the trial's result is recorded, when it is cancelled, and when a run of
    its study starts or ends (a crash leaves stale rows; the next run clears them).
    """

    __tablename__ = "lab_running_trials"
    __table_args__ = (sa.UniqueConstraint("cell_id", "key"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[str] = mapped_column(
        sa.String(32), sa.ForeignKey("lab_studies.id", ondelete="CASCADE"), index=True
    )
    cell_id: Mapped[int] = mapped_column(
        sa.Integer, sa.ForeignKey("lab_cells.id", ondelete="CASCADE")
    )
    key: Mapped[str] = mapped_column(sa.String(128))
    hparams: Mapped[dict[str, Any]] = mapped_column(SafeJSON)
    seed: Mapped[int] = mapped_column(sa.Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    epoch: Mapped[int | None] = mapped_column(sa.Integer)
    step: Mapped[int | None] = mapped_column(sa.Integer)
    metrics: Mapped[dict[str, float] | None] = mapped_column(MetricsJSON)
    optuna_trial_number: Mapped[int | None] = mapped_column(sa.Integer)


class TokenRow(Base):
    """An API token (sha256 of the secret only)."""

    __tablename__ = "lab_tokens"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
