"""Processes sharing a database: schema creation, delete and release races, leases.

Each race is forced at the point where the unguarded code went wrong (a statement hook
runs the competitor there), on SQLite and on the real PostgreSQL.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from labcore.errors import ConflictError, NotFoundError
from studies.store import SQLStore, StudyStatus

REPO = Path(__file__).resolve().parents[2]
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SPEC = {"name": "s", "seeds": [0]}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database without any schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    import psycopg

    name = f"vradam_fresh_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_concurrent_schema_creation_on_a_fresh_database(fresh_url: str) -> None:
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def create() -> None:
        store = SQLStore(fresh_url)
        try:
            barrier.wait()
            store.create_schema()
        except BaseException as e:
            errors.append(e)
        finally:
            store.close()

    threads = [threading.Thread(target=create) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    store = SQLStore(fresh_url)
    store.ping()
    assert store.create_study("s", SPEC).status == StudyStatus.QUEUED
    store.close()


CREATE_WHEN_TOLD = """
import pathlib, sys, time
from studies.store import SQLStore
store = SQLStore(sys.argv[1])
pathlib.Path(sys.argv[2]).touch()
while not pathlib.Path(sys.argv[3]).exists():
    time.sleep(0.005)
store.create_schema()
"""


@pytest.mark.slow
def test_concurrent_schema_creation_by_processes(fresh_url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    ready = [tmp_path / f"ready{i}" for i in range(3)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CREATE_WHEN_TOLD, fresh_url, str(r), str(go)],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in ready
    ]
    deadline = time.monotonic() + 60
    while not all(r.exists() for r in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # all three imported: now they race
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    store = SQLStore(fresh_url)
    store.ping()
    store.close()


class CompetitorAt:
    """Runs ``competitor`` in a thread when ``store`` first executes a matching statement.

    The store waits up to 0.5 s for it (it may block on a lock the store holds: that is
    the fix); :meth:`result` waits for it to end and returns what it returned.
    """

    def __init__(
        self, store: SQLStore, matches: Callable[[str], bool], competitor: Callable[[], Any]
    ) -> None:
        self._matches, self._competitor = matches, competitor
        self._thread: threading.Thread | None = None
        self._out: list[Any] = []
        sa.event.listen(store._engine, "before_cursor_execute", self._hook)

    def _hook(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self._thread is None and self._matches(statement.lstrip().upper()):
            self._thread = threading.Thread(target=lambda: self._out.append(self._competitor()))
            self._thread.start()
            self._thread.join(0.5)

    def result(self) -> Any:
        assert self._thread is not None, "the statement never ran"
        self._thread.join(30)
        return self._out[0]


def test_delete_never_removes_a_study_claimed_meanwhile(store_url: str) -> None:
    store, worker = SQLStore(store_url), SQLStore(store_url)
    s = store.create_study("s", SPEC)
    claim = CompetitorAt(
        store, lambda sql: sql.startswith("DELETE"), lambda: worker.claim_study("w", 60)
    )
    try:
        store.delete_study(s.id)
        deleted = True
    except ConflictError:
        deleted = False
    claimed = claim.result()
    if claimed is not None:  # the worker won: the study must still be there, running
        assert not deleted and worker.get_study(s.id).worker_id == "w"
    else:
        assert deleted
    store.close()
    worker.close()


def test_release_never_ends_a_study_another_worker_claimed_meanwhile(store_url: str) -> None:
    store, other = SQLStore(store_url), SQLStore(store_url)
    s = store.create_study("s", SPEC)
    assert store.claim_study("w1", 0.0) is not None  # w1's lease has already expired
    claim = CompetitorAt(
        store, lambda sql: sql.startswith("UPDATE"), lambda: other.claim_study("w2", 60)
    )
    try:
        store.release_study(s.id, "w1", StudyStatus.COMPLETED)
        released = True
    except ConflictError:
        released = False
    claimed = claim.result()
    now = other.get_study(s.id)
    if claimed is not None:  # w2 won: w1's release must not end w2's study
        assert not released and now.status == StudyStatus.RUNNING and now.worker_id == "w2"
    else:
        assert released and now.status == StudyStatus.COMPLETED
    store.close()
    other.close()


def test_acquire_study_respects_live_leases(store: SQLStore) -> None:
    s = store.create_study("s", SPEC)
    rec = store.acquire_study(s.id, "cli:a", 60)
    assert rec.status == StudyStatus.RUNNING and rec.worker_id == "cli:a" and rec.lease_expires_at
    assert store.claim_study("w", 60) is None  # held: a service worker cannot take it
    with pytest.raises(ConflictError, match="cli:a"):
        store.acquire_study(s.id, "cli:b", 60)
    assert store.acquire_study(s.id, "cli:a", 60).worker_id == "cli:a"  # its own again
    assert store.renew_lease(s.id, "cli:a", -1)  # cli:a died: its lease ran out
    assert store.acquire_study(s.id, "cli:b", 60).worker_id == "cli:b"
    store.release_study(s.id, "cli:b", StudyStatus.CANCELLED)
    again = store.acquire_study(s.id, "cli:c", 60)  # a finished study resumes
    assert again.status == StudyStatus.RUNNING and again.finished_at is None
    stuck = store.create_study("stuck", SPEC)  # running without a lease (an old `run`)
    store.set_status(stuck.id, StudyStatus.RUNNING)
    assert store.acquire_study(stuck.id, "cli:d", 60).worker_id == "cli:d"
    with pytest.raises(NotFoundError):
        store.acquire_study("nope", "cli:a", 60)
