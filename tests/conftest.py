"""Fixtures shared across the test packages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """One local Ray (2 CPUs) for the whole session, shut down at the end.

    Workers get the repository on PYTHONPATH so test trial functions
    (``tests.workers.trialfns``) import there too.
    """
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
    )
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def private_pg() -> Iterator[object]:
    """A private PostgreSQL cluster (initdb + pg_ctl, free port, temp dir), stopped at the end.

    For tests that stop and restart the server; never the shared one on 5432.
    """
    from tests.pgcluster import pg_cluster, server_bin

    if server_bin() is None:
        pytest.fail("no PostgreSQL server binaries under /usr/lib/postgresql")
    with pg_cluster() as cluster:
        yield cluster
