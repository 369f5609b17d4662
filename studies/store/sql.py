"""SQLStore: the :class:`~studies.store.base.Store` on SQLAlchemy 2 (SQLite or PostgreSQL).

SQLite (the embedded default) runs in WAL mode with a busy timeout and foreign keys on;
PostgreSQL is reached through psycopg 3 (``postgresql+psycopg://``; a bare
``postgresql://`` URL is rewritten to it). The schema comes from Alembic migrations in
``studies/migrations``; Optuna's own tables share the database. Which code may open the
SQLite file, and how the schema lock works (``<database>.lock``), is written in
:class:`SQLStore`'s docstring.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, defer, sessionmaker

from labcore.errors import ConflictError, NotFoundError, StoreError
from studies.store import convert, sqlite_file
from studies.store.base import Store
from studies.store.models import (
    VERSION_TABLE,
    CellRow,
    EpochRow,
    RunningTrialRow,
    StudyRow,
    TrialRow,
)
from studies.store.records import CellRecord, StudyRecord, StudyStatus
from studies.store.sql_leases import LeasesMixin, apply_status
from studies.store.sql_running import RunningMixin
from studies.store.sql_tokens import TokensMixin
from studies.store.sql_trials import TrialsMixin

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = sqlite_file.BUSY_TIMEOUT_S
SCHEMA_LOCK_KEY = 0x7652_4164_616D  # pg_advisory_lock key held while creating the schema
# Alembic's migration context is process-global: one migration at a time per process.
_SCHEMA_THREAD_LOCK = threading.Lock()


def normalize_url(url: str) -> str:
    """Return ``url`` with PostgreSQL pointed at psycopg 3."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def engine_kwargs(url: str) -> dict[str, Any]:
    """Engine arguments for ``url`` (also given to Optuna's RDBStorage)."""
    if url.startswith("sqlite"):
        return {"connect_args": sqlite_file.connect_args()}
    return {"pool_pre_ping": True}


def _now() -> datetime:
    return datetime.now(UTC)


class SQLStore(LeasesMixin, TrialsMixin, RunningMixin, TokensMixin, Store):
    """The store on a SQL database (see :class:`~studies.store.base.Store` for the contract).

    The rule for the embedded SQLite file (any number of processes may share it: serve,
    ``token``, ``report``, ``run``, the Optuna dashboard, a ``sqlite3`` shell):

    * **Only SQLite opens the database file**: this store's engine and Optuna's
      ``RDBStorage`` (a second engine on the same file, in this process or another;
      SQLite shares its locks between connections of one process), both through
      SQLAlchemy with :func:`engine_kwargs`. Nothing else calls ``open``/``os.open``/
      ``sqlite3.connect`` on it (``stat``/``exists`` are fine): closing a foreign
      descriptor drops every POSIX lock SQLite holds in the process, and another process
      then deletes the WAL under it (see :mod:`studies.store.sqlite_file`).
    * **What the lab locks itself** (the schema migration in :meth:`create_schema`)
      locks ``<database>.lock`` beside the file with ``flock``; the lock file is created
      on first use and never removed. (So SQLite's ``unix-dotfile`` VFS, which uses that
      name, is not supported.)
    * **Settings**: WAL journal mode (persistent in the file; readers never block the
      one writer), a busy timeout of :data:`SQLITE_BUSY_TIMEOUT_S` on every connection
      (waiting writers queue instead of failing), ``synchronous`` left at SQLite's
      default (FULL: a committed trial survives a crash of the process), foreign keys
      on for the lab's engine. WAL needs every process on one host with a local
      filesystem (not NFS).
    * **Disposing** an engine (:meth:`close`, Optuna's storage after a study) closes only
      idle pooled connections; one checked out by another thread stays open until that
      thread is done with it, so no path closes a connection in use. A closing
      connection checkpoints and removes the WAL only when SQLite sees no other one.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:///vradam_lab.db`` or
            ``postgresql+psycopg://user@host:5432/db``.

    Raises:
        StoreError: The URL names an unsupported database or driver.
    """

    def __init__(self, url: str) -> None:
        self._url = normalize_url(url)
        try:
            self._engine = sa.create_engine(self._url, **engine_kwargs(self._url))
        except (sa_exc.ArgumentError, ImportError) as e:
            raise StoreError(f"cannot open database {url!r}: {e}") from e
        self._dialect = self._engine.dialect.name
        if self._dialect not in ("sqlite", "postgresql"):
            raise StoreError(f"unsupported database {self._dialect!r}: use SQLite or PostgreSQL")
        if self._dialect == "sqlite":
            sa.event.listen(self._engine, "connect", sqlite_file.set_pragmas)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)

    @property
    def url(self) -> str:
        """The database URL; also the URL Optuna's RDBStorage uses."""
        return self._url

    def __repr__(self) -> str:
        return f"SQLStore({self._engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Dispose of the connection pool."""
        self._engine.dispose()

    @contextlib.contextmanager
    def _session(self) -> Iterator[Session]:
        """One transaction; database errors become StoreError."""
        try:
            with self._sessions.begin() as session:
                yield session
        except (sa_exc.OperationalError, sa_exc.ProgrammingError, sa_exc.InterfaceError) as e:
            raise StoreError(f"database error: {e.orig or e}") from e

    # ------------------------------------------------------------------ schema
    def create_schema(self) -> None:
        """Migrate to head (Alembic) and create Optuna's tables; idempotent.

        Safe to call from several processes at once, also while others use the
        database: the migration and Optuna's table creation run under a lock
        (PostgreSQL: an advisory lock; SQLite: an exclusive ``flock`` on the separate
        ``<database>.lock`` file, never on the database file, see the class docstring).

        Raises:
            StoreError: The database is unreachable or the migration failed.
        """
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("version_table", VERSION_TABLE)
        try:
            with _SCHEMA_THREAD_LOCK, self._schema_lock():
                with self._engine.begin() as conn:
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
                import optuna

                storage = optuna.storages.RDBStorage(
                    self._url, engine_kwargs=engine_kwargs(self._url)
                )
                storage.remove_session()
                storage.engine.dispose()
        except (sa_exc.OperationalError, sa_exc.ProgrammingError, sa_exc.InterfaceError) as e:
            raise StoreError(f"cannot create the schema: {e.orig or e}") from e
        logger.info("schema ready at %r", self)

    @contextlib.contextmanager
    def _schema_lock(self) -> Iterator[None]:
        """Hold the database-wide schema lock (see :meth:`create_schema`)."""
        if self._dialect == "postgresql":
            with self._engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": SCHEMA_LOCK_KEY})
            return
        with sqlite_file.file_lock(self._engine.url):  # never on the database file itself
            yield

    @contextlib.contextmanager
    def locked_connection(self) -> Iterator[sa.Connection]:
        """A connection under the schema lock, for running Alembic by hand (``env.py``).

        Raises:
            StoreError: The database is unreachable.
        """
        try:
            with _SCHEMA_THREAD_LOCK, self._schema_lock(), self._engine.connect() as conn:
                yield conn
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as e:
            raise StoreError(f"database error: {e.orig or e}") from e

    def ping(self) -> None:
        """Raise StoreError unless the database answers and the schema exists."""
        with self._session() as s:
            s.execute(sa.select(sa.func.count()).select_from(StudyRow).limit(1))

    # ----------------------------------------------------------------- studies
    def create_study(self, name: str, spec: Mapping[str, Any]) -> StudyRecord:
        """Store a submitted study as queued."""
        row = StudyRow(
            id=uuid.uuid4().hex[:12],
            name=name,
            spec=dict(spec),
            status=StudyStatus.QUEUED.value,
            created_at=_now(),
            cancel_requested=False,
        )
        with self._session() as s:
            s.add(row)
        return convert.study(row)

    def _study_row(self, s: Session, study_id: str, *, lock: bool = False) -> StudyRow:
        stmt = sa.select(StudyRow).where(StudyRow.id == study_id)
        if lock and self._dialect == "postgresql":
            stmt = stmt.with_for_update()
        row = s.scalars(stmt).one_or_none()
        if row is None:
            raise NotFoundError(f"no study {study_id!r}")
        return row

    def get_study(self, study_id: str) -> StudyRecord:
        """Return the study; NotFoundError if missing."""
        with self._session() as s:
            return convert.study(self._study_row(s, study_id))

    def list_studies(
        self,
        status: StudyStatus | str | None = None,
        limit: int = 50,
        offset: int = 0,
        *,
        with_spec: bool = True,
    ) -> tuple[list[StudyRecord], int]:
        """Return studies newest first and their total count (two queries)."""
        with self._session() as s:
            return self._list_studies(s, status, limit, offset, with_spec)

    def _list_studies(
        self,
        s: Session,
        status: StudyStatus | str | None,
        limit: int,
        offset: int,
        with_spec: bool,
    ) -> tuple[list[StudyRecord], int]:
        where = [] if status is None else [StudyRow.status == StudyStatus(status).value]
        stmt = sa.select(StudyRow).where(*where)
        if not with_spec:
            stmt = stmt.options(defer(StudyRow.spec, raiseload=True))
        total = s.scalar(sa.select(sa.func.count()).select_from(StudyRow).where(*where)) or 0
        rows = s.scalars(
            stmt.order_by(StudyRow.created_at.desc(), StudyRow.id).limit(limit).offset(offset)
        ).all()
        return [convert.study(r, with_spec=with_spec) for r in rows], total

    def study_details(
        self, study_ids: Sequence[str]
    ) -> dict[str, tuple[list[CellRecord], dict[int, dict[str, int]]]]:
        """Return every study's cells and outcome counts in two queries."""
        with self._session() as s:
            return self._study_details(s, study_ids)

    def _study_details(
        self, s: Session, study_ids: Sequence[str]
    ) -> dict[str, tuple[list[CellRecord], dict[int, dict[str, int]]]]:
        ids = list(dict.fromkeys(study_ids))
        out: dict[str, tuple[list[CellRecord], dict[int, dict[str, int]]]] = {
            sid: ([], {}) for sid in ids
        }
        if not ids:
            return out
        cells = s.scalars(
            sa.select(CellRow).where(CellRow.study_id.in_(ids)).order_by(CellRow.id)
        ).all()
        for c in cells:
            out[c.study_id][0].append(convert.cell(c))
        for study_id, cell_id, outcome, n in s.execute(
            sa.select(TrialRow.study_id, TrialRow.cell_id, TrialRow.outcome, sa.func.count())
            .where(TrialRow.study_id.in_(ids))
            .group_by(TrialRow.study_id, TrialRow.cell_id, TrialRow.outcome)
        ):
            out[study_id][1].setdefault(cell_id, {})[outcome] = int(n)
        return out

    def study_page(
        self,
        status: StudyStatus | str | None = None,
        limit: int = 50,
        offset: int = 0,
        *,
        with_spec: bool = True,
    ) -> tuple[
        list[StudyRecord], int, dict[str, tuple[list[CellRecord], dict[int, dict[str, int]]]]
    ]:
        """Return a page of studies, the total and their details: one transaction, 4 queries."""
        with self._session() as s:
            records, total = self._list_studies(s, status, limit, offset, with_spec)
            return records, total, self._study_details(s, [r.id for r in records])

    def study_with_details(
        self, study_id: str
    ) -> tuple[StudyRecord, list[CellRecord], dict[int, dict[str, int]]]:
        """Return one study, its cells and counts: one transaction, 3 queries."""
        with self._session() as s:
            record = convert.study(self._study_row(s, study_id))
            cells, counts = self._study_details(s, [study_id])[study_id]
            return record, cells, counts

    def set_status(
        self, study_id: str, status: StudyStatus | str, error: str | None = None
    ) -> StudyRecord:
        """Set the status, started_at on running and finished_at when final."""
        status = StudyStatus(status)
        with self._session() as s:
            row = self._study_row(s, study_id, lock=True)
            apply_status(row, status, error)
            return convert.study(row)

    def request_cancel(self, study_id: str) -> StudyRecord:
        """Flag a running study; cancel a queued one at once; ConflictError if finished."""
        with self._session() as s:
            row = self._study_row(s, study_id, lock=True)
            if StudyStatus(row.status).finished:
                raise ConflictError(f"study {study_id!r} already finished ({row.status})")
            row.cancel_requested = True
            if row.status == StudyStatus.QUEUED:
                apply_status(row, StudyStatus.CANCELLED, None)
            return convert.study(row)

    def _lock_if(self, s: Session, study_id: str, *where: Any) -> bool:
        """Lock the study's row if it matches ``where``: the transaction's first write.

        A no-op update. On SQLite it takes the database write lock before anything is
        read (a read first could act on a stale state); on PostgreSQL, the row lock. A
        check and the writes it allows are then atomic.
        """
        done = s.execute(
            sa.update(StudyRow)
            .where(StudyRow.id == study_id, *where)
            .values(worker_id=StudyRow.worker_id)
            .execution_options(synchronize_session=False)
        )
        return bool(done.rowcount == 1)

    def delete_study(self, study_id: str) -> None:
        """Delete the study, its rows and its Optuna studies; ConflictError while running.

        Optuna's studies go after the commit; failing to remove one is logged, not raised
        (the study itself is gone).
        """
        with self._session() as s:
            if not self._lock_if(s, study_id, StudyRow.status != StudyStatus.RUNNING.value):
                self._study_row(s, study_id)  # NotFoundError
                raise ConflictError(f"study {study_id!r} is running: cancel it first")
            names = s.scalars(
                sa.select(CellRow.optuna_study_name).where(CellRow.study_id == study_id)
            ).all()
            for model in (EpochRow, RunningTrialRow, TrialRow, CellRow):
                s.execute(sa.delete(model).where(model.study_id == study_id))
            s.execute(sa.delete(StudyRow).where(StudyRow.id == study_id))
        if names:
            self._delete_optuna_studies(names)

    def _delete_optuna_studies(self, names: Sequence[str]) -> None:
        """Remove Optuna studies by name; ones already gone are fine, failures are logged."""
        try:
            import optuna

            storage = optuna.storages.RDBStorage(self._url, engine_kwargs=engine_kwargs(self._url))
        except Exception:
            logger.exception("cannot open Optuna's storage to delete %s", list(names))
            return
        try:
            for name in names:
                try:
                    optuna.delete_study(study_name=name, storage=storage)
                except KeyError:
                    continue  # already gone
                except Exception:
                    logger.exception("cannot delete Optuna study %r (left behind)", name)
        finally:
            storage.remove_session()
            storage.engine.dispose()

    # ------------------------------------------------------------------- cells
    def ensure_cell(
        self, study_id: str, task: str, optimizer: str, optuna_study_name: str, n_planned: int
    ) -> CellRecord:
        """Return the (study, task, optimizer) cell, creating it if needed."""
        for _ in range(2):
            try:
                with self._session() as s:
                    self._study_row(s, study_id)
                    row = s.scalars(
                        sa.select(CellRow).where(
                            CellRow.study_id == study_id,
                            CellRow.task == task,
                            CellRow.optimizer == optimizer,
                        )
                    ).one_or_none()
                    if row is None:
                        row = CellRow(
                            study_id=study_id,
                            task=task,
                            optimizer=optimizer,
                            optuna_study_name=optuna_study_name,
                            n_planned=n_planned,
                        )
                        s.add(row)
                    else:
                        row.n_planned = n_planned
                    s.flush()
                    return convert.cell(row)
            except sa_exc.IntegrityError:  # a concurrent creator won: read theirs
                continue
        raise ConflictError(f"cannot create cell {optuna_study_name!r}: the name is taken")

    def list_cells(self, study_id: str) -> list[CellRecord]:
        """Return the study's cells in creation order."""
        with self._session() as s:
            rows = s.scalars(
                sa.select(CellRow).where(CellRow.study_id == study_id).order_by(CellRow.id)
            ).all()
            return [convert.cell(r) for r in rows]
