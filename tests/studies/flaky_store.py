"""A real SQL store whose database "goes down" for chosen calls, on demand."""

from __future__ import annotations

import threading
from typing import Any

from labcore.errors import StoreError
from studies.store import SQLStore


class FlakyStore(SQLStore):
    """The real SQLite store, except that renewals fail or hang on demand.

    ``down`` set: :meth:`renew_lease` raises StoreError (the database is unreachable).
    ``hang`` set: :meth:`renew_lease` blocks until ``unhang`` is set.
    ``fail_records = n``: the next ``n`` calls of :meth:`record_trial` raise StoreError.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.down = threading.Event()
        self.hang = threading.Event()
        self.unhang = threading.Event()
        self.renewals = 0
        self.fail_records = 0
        self.failed_records = 0

    def record_trial(self, *args: Any, **kwargs: Any) -> Any:
        if self.failed_records < self.fail_records:
            self.failed_records += 1
            raise StoreError("connection refused")
        return super().record_trial(*args, **kwargs)

    def renew_lease(self, study_id: str, worker_id: str, lease_seconds: float) -> bool:
        if self.hang.is_set():
            self.unhang.wait(30)
        if self.down.is_set():
            raise StoreError("connection refused")
        self.renewals += 1
        return super().renew_lease(study_id, worker_id, lease_seconds)
