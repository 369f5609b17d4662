"""The embedded SQLite file: its connection settings and the lock file beside it.

Only SQLite opens the database file. SQLite coordinates processes with POSIX (``fcntl``)
record locks on it, and POSIX drops *every* such lock a process holds on a file as soon
as the process closes *any* descriptor of that file: one ``open(db).close()`` outside
SQLite silently unlocks the process's connections; another process's closing connection
then believes it is the last one, checkpoints and deletes the WAL that this process still
writes to ("disk I/O error", lost trials, "database disk image is malformed").

Whatever the lab must lock itself (the schema migration) locks ``<database>.lock``, a
separate file that SQLite never opens; it is created on first use and left in place
(deleting a lock file races with the next locker).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30.0
LOCK_SUFFIX = ".lock"


def database_path(url: sa.URL) -> Path | None:
    """The file behind a ``sqlite://`` URL, or None for an in-memory database.

    Plain paths are taken as they are (relative ones to the working directory, as SQLite
    does); ``file:`` URIs (``?uri=true``) are parsed.
    """
    database = url.database or ""
    if str(url.query.get("uri", "")).lower() in ("true", "1") and database.startswith("file:"):
        if url.query.get("mode") == "memory":
            return None
        database = urlsplit(database).path
    if not database or database == ":memory:":
        return None
    return Path(database)


def lock_path(db_path: Path) -> Path:
    """The lock file of a database file: ``<database>.lock`` beside it."""
    return db_path.with_name(db_path.name + LOCK_SUFFIX)


@contextlib.contextmanager
def file_lock(url: sa.URL) -> Iterator[Path | None]:
    """Hold an exclusive ``flock`` on the database's lock file (never the database itself).

    Yields the lock file, or None where there is nothing to lock: an in-memory database,
    a platform without ``flock``, or a lock file that cannot be created (a missing
    directory, say; SQLite then reports the real problem when it opens the database).
    """
    db_path = database_path(url)
    try:
        import fcntl
    except ImportError:  # not POSIX: SQLite's own locking is all there is
        yield None
        return
    if db_path is None:
        yield None
        return
    path = lock_path(db_path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as e:
        logger.debug("no schema lock at %s: %s", path, e)
        yield None
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield path
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def connect_args() -> dict[str, Any]:
    """DB-API arguments of every SQLite connection (the lab's engine and Optuna's).

    ``timeout`` is SQLite's busy timeout: a writer waits up to that long for another
    process's transaction instead of failing with "database is locked".
    """
    return {"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}


def set_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """On each new connection: WAL mode, the busy timeout again, foreign keys on.

    WAL is a property of the file (set once, kept by every later connection); it lets
    readers run beside one writer. The busy timeout is repeated for connections made
    without :func:`connect_args`.
    """
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
    finally:
        cur.close()
