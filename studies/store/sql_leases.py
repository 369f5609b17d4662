"""Studies' leases on SQL (mixed into ``SQLStore``): claim, acquire, renew, release.

Every check and the write it allows are one statement or one locked transaction: on
PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED`` and row locks; on SQLite a conditional
``UPDATE`` whose row count says who won (SQLite serialises writers).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from labcore.errors import ConflictError
from studies.store import convert
from studies.store.models import StudyRow
from studies.store.records import StudyRecord, StudyStatus


def _now() -> datetime:
    return datetime.now(UTC)


def apply_status(row: StudyRow, status: StudyStatus, error: str | None) -> None:
    """Move a study row to ``status``: timestamps, a spent cancel flag, the lease on finish."""
    now = _now()
    if StudyStatus(row.status).finished and not status.finished:
        row.cancel_requested = False  # a finished study resumed: an old cancel is spent
    if row.status != status.value:
        row.note = None  # a note belongs to the state it was written in
    row.status = status.value
    if status == StudyStatus.RUNNING and row.started_at is None:
        row.started_at = now
    if status.finished:
        row.finished_at = now
        row.worker_id = None
        row.lease_expires_at = None
    else:
        row.finished_at = None
    if error is not None or status.finished:
        row.error = error


class LeasesMixin:
    """Which worker runs which study, until when (mixed into ``SQLStore``)."""

    _dialect: str

    def _session(self) -> contextlib.AbstractContextManager[Session]:  # provided by SQLStore
        raise NotImplementedError

    def _study_row(self, s: Session, study_id: str, *, lock: bool = False) -> StudyRow:
        raise NotImplementedError  # provided by SQLStore

    def _lock_if(self, s: Session, study_id: str, *where: Any) -> bool:
        raise NotImplementedError  # provided by SQLStore

    def claim_study(self, worker_id: str, lease_seconds: float) -> StudyRecord | None:
        """Atomically claim the oldest queued study or a running one with an expired lease."""
        now = _now()
        claimable = sa.or_(
            StudyRow.status == StudyStatus.QUEUED.value,
            sa.and_(
                StudyRow.status == StudyStatus.RUNNING.value,
                StudyRow.lease_expires_at.is_not(None),
                StudyRow.lease_expires_at < now,
            ),
        )
        with self._session() as s:
            for _ in range(20):  # SQLite: another worker may win a candidate; try the next
                stmt = sa.select(StudyRow.id).where(claimable).order_by(StudyRow.created_at)
                if self._dialect == "postgresql":
                    stmt = stmt.with_for_update(skip_locked=True)
                study_id = s.scalars(stmt.limit(1)).first()
                if study_id is None:
                    return None
                values: dict[str, Any] = {
                    "status": StudyStatus.RUNNING.value,
                    "worker_id": worker_id,
                    "lease_expires_at": now + timedelta(seconds=lease_seconds),
                    "started_at": sa.func.coalesce(StudyRow.started_at, now),
                }
                done = s.execute(
                    sa.update(StudyRow)
                    .where(StudyRow.id == study_id, claimable)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                if done.rowcount == 1:
                    s.flush()
                    s.expire_all()
                    return convert.study(self._study_row(s, study_id))
        return None

    def renew_lease(self, study_id: str, worker_id: str, lease_seconds: float) -> bool:
        """Extend the lease; False when the study is not running under this worker."""
        expires = _now() + timedelta(seconds=lease_seconds)
        return self._update_if_held(study_id, worker_id, lease_expires_at=expires)

    def _update_if_held(self, study_id: str, worker_id: str, **values: Any) -> bool:
        """Write ``values`` in one statement if the study runs under ``worker_id``."""
        with self._session() as s:
            done = s.execute(
                sa.update(StudyRow)
                .where(
                    StudyRow.id == study_id,
                    StudyRow.worker_id == worker_id,
                    StudyRow.status == StudyStatus.RUNNING.value,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return done.rowcount == 1

    def acquire_study(self, study_id: str, worker_id: str, lease_seconds: float) -> StudyRecord:
        """Take this study with a lease unless another worker's lease on it is live."""
        now = _now()
        free = sa.or_(
            StudyRow.status != StudyStatus.RUNNING.value,
            StudyRow.worker_id.is_(None),
            StudyRow.worker_id == worker_id,
            StudyRow.lease_expires_at.is_(None),
            StudyRow.lease_expires_at < now,
        )
        with self._session() as s:
            if not self._lock_if(s, study_id, free):
                row = self._study_row(s, study_id)
                raise ConflictError(f"study {study_id!r} is running under {row.worker_id!r}")
            row = self._study_row(s, study_id, lock=True)
            apply_status(row, StudyStatus.RUNNING, None)
            row.worker_id = worker_id
            row.lease_expires_at = now + timedelta(seconds=lease_seconds)
            s.flush()
            return convert.study(row)

    def set_note(self, study_id: str, worker_id: str, note: str | None) -> bool:
        """Set a running study's note if this worker holds it; False when it does not."""
        return self._update_if_held(study_id, worker_id, note=note)

    def release_study(
        self, study_id: str, worker_id: str, status: StudyStatus | str, error: str | None = None
    ) -> None:
        """End this worker's lease with a status; ConflictError if another worker holds it."""
        with self._session() as s:
            held = sa.or_(StudyRow.worker_id.is_(None), StudyRow.worker_id == worker_id)
            if not self._lock_if(s, study_id, held):
                row = self._study_row(s, study_id)
                raise ConflictError(f"study {study_id!r} is held by worker {row.worker_id!r}")
            row = self._study_row(s, study_id, lock=True)
            apply_status(row, StudyStatus(status), error)
            row.worker_id = None
            row.lease_expires_at = None
