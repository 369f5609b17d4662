"""Liveness and readiness probes (no token needed)."""

from __future__ import annotations

from fastapi import APIRouter

from service.auth import StoreDep
from service.errors import error_responses
from service.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> Health:
    """Return ``ok`` whenever the API process is up."""
    return Health()


@router.get(
    "/readyz",
    summary="Readiness: the database is reachable",
    responses=error_responses(503),
)
def readyz(store: StoreDep) -> Readiness:
    """Return ``ok`` when the database answers.

    Raises:
        StoreError: The database is unreachable (503).
    """
    store.ping()
    return Readiness()
