"""Store fixtures: each test gets an empty store on SQLite or on a real PostgreSQL database.

SQLite: the schema is created once per session in a template file that each test copies.
PostgreSQL: one fresh database per session (``vradam_test_<random>``, dropped at the end),
emptied before each test.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from studies.store import SQLStore

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database with the schema, dropped at the end of the session."""
    import psycopg

    name = f"vradam_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as e:
        pytest.fail(f"PostgreSQL is not reachable at 127.0.0.1:5432: {e}")
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    store = SQLStore(url)
    store.create_schema()
    store.close()
    try:
        yield url
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with the schema (ours and Optuna's), copied by each test."""
    path = tmp_path_factory.mktemp("template") / "lab.db"
    store = SQLStore(f"sqlite:///{path}")
    store.create_schema()
    store.close()
    return path


def _empty_postgres(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE lab_studies, lab_tokens, studies RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store with the schema, on SQLite or PostgreSQL."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        shutil.copy(template, tmp_path / "lab.db")
        return f"sqlite:///{tmp_path / 'lab.db'}"
    url = request.getfixturevalue("pg_database_url")
    _empty_postgres(url)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[SQLStore]:
    """An empty :class:`SQLStore` (closed after the test)."""
    s = SQLStore(store_url)
    yield s
    s.close()
