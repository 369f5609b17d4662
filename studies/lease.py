"""A study's lease, kept alive by a heartbeat thread while a runner holds the study.

Whoever runs a study (a service worker, ``vradam-hpo run``) holds it under a lease in
the store: ``lease_expires_at`` moves on with each renewal. If the holder dies, the lease
runs out and the next runner may claim the study. The same heartbeat reads the study's
``cancel_requested`` flag, so a cancel reaches the run within one heartbeat.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from labcore.errors import NotFoundError, StoreError
from studies.store import Store
from studies.store.records import StudyRecord

logger = logging.getLogger(__name__)


class Lease:
    """Keeps a claimed study's lease alive from a heartbeat thread.

    The lease is held until :attr:`deadline` (a :func:`time.monotonic` time): each
    successful renewal moves it to ``start of that renewal + lease_seconds``. When the
    store refuses a renewal (the study is no longer running under this worker), or no
    renewal succeeded before the deadline (the database is unreachable, so another worker
    may claim the study), the lease is lost: :meth:`is_lost` turns True and the run must
    stop without touching the study's status.

    Args:
        store: The shared store.
        study_id: The claimed study.
        worker_id: This worker.
        lease_seconds: How long each renewal extends the lease.
        every: Seconds between heartbeats.
        valid_for: Seconds the claim has left now (default ``lease_seconds``).

    Attributes:
        lost: The lease could not be renewed in time (the study is no longer ours).
        cancel_requested: A user asked to cancel the study.
    """

    def __init__(
        self,
        store: Store,
        study_id: str,
        worker_id: str,
        lease_seconds: float,
        every: float,
        *,
        valid_for: float | None = None,
    ) -> None:
        self.store, self.study_id, self.worker_id = store, study_id, worker_id
        self.lease_seconds, self.every = lease_seconds, every
        self.deadline = time.monotonic() + (lease_seconds if valid_for is None else valid_for)
        self.lost = threading.Event()
        self.cancel_requested = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{study_id}", daemon=True)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def is_lost(self) -> bool:
        """Return whether the lease is lost, checking the deadline (cheap: no I/O).

        The deadline is checked here too, not only by the heartbeat, so a renewal stuck
        in a hanging database call cannot keep a run alive past its lease.
        """
        if not self.lost.is_set() and time.monotonic() >= self.deadline:
            self._lose(f"no renewal for {self.lease_seconds:g} s")
        return self.lost.is_set()

    def _lose(self, why: str) -> None:
        if not self.lost.is_set():
            logger.warning("lost the lease on study %s: %s", self.study_id, why)
            self.lost.set()

    def _beat(self) -> None:
        while not self._done.wait(self.every):
            started = time.monotonic()
            try:
                renewed = self.store.renew_lease(self.study_id, self.worker_id, self.lease_seconds)
            except (StoreError, NotFoundError) as e:  # keep trying until the lease runs out
                logger.warning("heartbeat for study %s failed: %s", self.study_id, e)
                if self.is_lost():
                    return
                continue
            if not renewed:
                self._lose("the study is no longer running under this worker")
                return
            if self.is_lost():  # the renewal came too late: someone may have claimed it
                return
            self.deadline = started + self.lease_seconds
            try:
                if self.store.get_study(self.study_id).cancel_requested:
                    self.cancel_requested.set()
            except (StoreError, NotFoundError) as e:
                logger.warning("cancel check for study %s failed: %s", self.study_id, e)


def seconds_left(record: StudyRecord) -> float | None:
    """Seconds until a just-claimed study's lease expires (``None`` if it has none).

    The store stamps leases with this host's UTC clock, so the difference is local.
    """
    if record.lease_expires_at is None:
        return None
    return (record.lease_expires_at - datetime.now(UTC)).total_seconds()
