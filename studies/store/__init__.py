"""Persistence: studies, cells, trials, per-epoch metrics, leases and API tokens.

``open_store(url)`` returns a :class:`Store`; ``DEFAULT_DB_URL`` is the embedded SQLite
file (override with the ``VRADAM_LAB_DB`` environment variable).
"""

from __future__ import annotations

import os

from studies.store.base import Store
from studies.store.records import CellRecord, StudyRecord, StudyStatus, TokenRecord, TrialRecord

DEFAULT_DB_URL: str = os.environ.get("VRADAM_LAB_DB", "sqlite:///vradam_lab.db")


def open_store(url: str | None = None) -> Store:
    """Return a store for ``url`` (default: :data:`DEFAULT_DB_URL`).

    The schema is not created here: call :meth:`Store.create_schema` once.

    Raises:
        StoreError: The URL is not a supported database.
    """
    from studies.store.sql import SQLStore

    return SQLStore(url or os.environ.get("VRADAM_LAB_DB", DEFAULT_DB_URL))


def __getattr__(name: str) -> object:
    if name == "SQLStore":  # lazy: keeps `import studies.store.records` light
        from studies.store.sql import SQLStore

        return SQLStore
    raise AttributeError(name)


__all__ = [
    "DEFAULT_DB_URL",
    "CellRecord",
    "SQLStore",
    "Store",
    "StudyRecord",
    "StudyStatus",
    "TokenRecord",
    "TrialRecord",
    "open_store",
]
