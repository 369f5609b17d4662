"""Fixtures for the service tests: stores on SQLite and on a fresh PostgreSQL database."""

from __future__ import annotations

import socket
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from labcore.outcomes import Outcome
from labcore.results import EpochMetrics, TrialResult
from studies.store import Store, open_store

with warnings.catch_warnings():  # Starlette asks for httpx2; httpx is what we ship
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

__all__ = ["TestClient", "fake_result", "free_port", "quadratic_spec"]

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
LAB_TABLES = (
    "lab_trial_epochs",
    "lab_running_trials",
    "lab_trials",
    "lab_cells",
    "lab_studies",
    "lab_tokens",
)


def quadratic_spec(
    name: str = "tiny",
    *,
    points: int = 3,
    seeds: int = 2,
    epochs: int = 2,
    optimizers: tuple[str, ...] = ("adamw", "vradam"),
    **extra: Any,
) -> dict[str, Any]:
    """A study of the millisecond ``quadratic`` task."""
    return {
        "name": name,
        "tasks": [{"name": "quadratic", "budget": {"epochs": epochs}}],
        "optimizers": [{"name": o} for o in optimizers],
        "search_space": {"lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True}},
        "sampler": {"name": "grid", "points": {"lr": points}},
        "seeds": list(range(seeds)),
        **extra,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this session, dropped at the end."""
    import psycopg

    name = f"vradam_svc_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.format(name=name)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path: Path = tmp_path_factory.mktemp("svc") / "service.db"
    store = open_store(f"sqlite:///{path}")
    store.create_schema()
    yield store
    store.close()


@pytest.fixture(scope="session")
def _pg_store(pg_url: str) -> Iterator[Store]:
    store = open_store(pg_url)
    store.create_schema()
    yield store
    store.close()


def wipe(store: Store) -> None:
    """Delete every row of the lab's tables (Optuna's are keyed by unique study names)."""
    engine = sa.create_engine(store.url)
    try:
        with engine.begin() as conn:
            for table in LAB_TABLES:
                conn.execute(sa.text(f"DELETE FROM {table}"))
    finally:
        engine.dispose()


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """An empty store, on SQLite and on PostgreSQL."""
    s: Store = request.getfixturevalue(
        f"_{'pg' if request.param == 'postgres' else 'sqlite'}_store"
    )
    wipe(s)
    yield s


@pytest.fixture
def sqlite_store(_sqlite_store: Store) -> Store:
    """An empty SQLite store."""
    wipe(_sqlite_store)
    return _sqlite_store


def fake_result(outcome: Outcome, value: float, *, epochs: int = 2) -> TrialResult:
    """A trial result as ``run_trial`` would return it (no training needed)."""
    hist = tuple(
        EpochMetrics(epoch=e, step=10 * e, metrics={"train_loss": value + e, "val_loss": value})
        for e in range(epochs + 1)
    )
    return TrialResult(
        outcome=outcome,
        metrics={"val_loss": value, "test_loss": value},
        initial_metrics={"val_loss": 10.0},
        epochs=hist,
        diverged_at_step=5 if outcome == Outcome.DIVERGED else None,
        wall_time_s=0.01,
        error="boom" if outcome == Outcome.FAILED else None,
    )
