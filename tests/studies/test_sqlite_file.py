"""The embedded SQLite file: only SQLite opens it; the schema lock is a file beside it."""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from studies.store import SQLStore
from studies.store.sqlite_file import database_path, file_lock, lock_path

FOREIGN_READ = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=30)
print(conn.execute("SELECT count(*) FROM lab_tokens").fetchone()[0])
conn.close()
"""

TRY_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    print("held")
else:
    print("free")
"""


def _python(code: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


def test_a_foreign_connection_closing_leaves_the_stores_wal_alone(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    store = SQLStore(f"sqlite:///{path}")
    try:
        store.create_schema()  # took (and released) the schema lock with a connection open
        store.create_token("first", ("read",))
        wal = path.with_name(path.name + "-wal")
        assert wal.exists()
        # another process opens and closes the file: it is not the last connection
        assert _python(FOREIGN_READ, str(path)) == "1"
        assert wal.exists(), "the other process checkpointed and deleted our WAL"
        store.create_token("second", ("read",))
        assert _python(FOREIGN_READ, str(path)) == "2"  # our writes after it are visible
        assert [t.name for t in store.list_tokens()] == ["first", "second"]
    finally:
        store.close()
    assert not wal.exists()  # the last connection, closing, folded the WAL in
    assert _python(FOREIGN_READ, str(path)) == "2"


def test_the_store_never_opens_the_database_file_outside_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = (tmp_path / "lab.db").resolve()
    opened: list[Path] = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file: object, *args: object, **kwargs: object) -> object:
        if isinstance(file, str | os.PathLike):
            opened.append(Path(os.fsdecode(file)).resolve())
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    def spy_os_open(file: object, *args: object, **kwargs: object) -> int:
        opened.append(Path(os.fsdecode(file)).resolve())  # type: ignore[arg-type]
        return real_os_open(file, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    store = SQLStore(f"sqlite:///{path}")
    try:
        store.create_schema()
        store.create_schema()  # again, on the existing schema
        study = store.create_study("s", {"name": "s"})
        store.ensure_cell(study.id, "quadratic", "adamw", f"s.{study.id}/quadratic/adamw", 1)
        store.delete_study(study.id)  # opens Optuna's storage too
    finally:
        store.close()
    assert path.exists()
    assert path not in opened  # SQLite opens it in C, never through Python
    assert lock_path(path) in opened


def test_the_schema_lock_is_a_separate_file_held_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    url = sa.make_url(f"sqlite:///{path}")
    with file_lock(url) as held:
        assert held == tmp_path / "lab.db.lock"
        assert _python(TRY_LOCK, str(held)) == "held"
        assert not path.exists()  # the database file is not touched
    assert _python(TRY_LOCK, str(held)) == "free"
    assert held.exists()  # left in place for the next locker


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///lab.db", Path("lab.db")),
        ("sqlite:////srv/lab/lab.db", Path("/srv/lab/lab.db")),
        ("sqlite:///file:/srv/lab.db?mode=ro&uri=true", Path("/srv/lab.db")),
        ("sqlite:///file:mem?mode=memory&uri=true", None),
        ("sqlite:///:memory:", None),
        ("sqlite://", None),
    ],
)
def test_database_path(url: str, expected: Path | None) -> None:
    assert database_path(sa.make_url(url)) == expected


def test_an_in_memory_database_needs_no_lock_file(tmp_path: Path) -> None:
    with file_lock(sa.make_url("sqlite://")) as held:
        assert held is None
    store = SQLStore("sqlite://")
    try:
        store.create_schema()
        store.ping()
    finally:
        store.close()


def test_alembic_by_hand_migrates_under_the_lock_file(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from studies.store.models import VERSION_TABLE
    from studies.store.sql import MIGRATIONS_DIR

    path = tmp_path / "lab.db"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("version_table", VERSION_TABLE)
    cfg.set_main_option("sqlalchemy.url", f"sqlite:///{path}")
    command.upgrade(cfg, "head")  # no connection passed: env.py makes one
    assert lock_path(path).exists()
    store = SQLStore(f"sqlite:///{path}")
    try:
        store.ping()  # the lab's tables exist
        assert _python(FOREIGN_READ, str(path)) == "0"
    finally:
        store.close()
