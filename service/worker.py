"""The worker loop: claim a queued study, hold its lease, run it with the engine, release it.

One :class:`Worker` runs one study at a time in one long-lived thread (Ray, when a
study uses the ``ray`` executor, is initialised from that thread, never from a web
server's main thread, whose SIGTERM handler ``ray.init`` would replace). While a study
runs, a heartbeat thread renews the lease every ``heartbeat_seconds`` and reads the
study's ``cancel_requested`` flag; the engine polls :meth:`Worker.should_stop` between
trials and epochs, so a cancel is observed within seconds.

Outcomes when the engine returns:
    * cancel requested -> ``cancelled`` (finished trials are kept);
    * the worker is shutting down -> back to ``queued``, so another worker (or this one
      after a restart) resumes it at once, without repeating finished trials;
    * lease lost (renewal refused, or none succeeded for ``lease_seconds``, so another
      worker may claim it) -> the run stops at once and the study is left alone;
    * the engine raised -> ``failed`` with the error; otherwise ``completed``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from labcore.errors import ConflictError, LabError, NotFoundError, StoreError
from studies.store import Store
from studies.store.records import StudyRecord, StudyStatus

logger = logging.getLogger(__name__)

ExecutorFactory = Callable[[Any], Any]
"""Builds the executor for a validated ``StudySpec``."""


def default_worker_id() -> str:
    """Return ``host:pid:random``, unique per worker."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


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


@dataclass(frozen=True)
class StudyRun:
    """What a worker did with one claimed study."""

    study_id: str
    status: StudyStatus | None
    error: str | None = None


class Worker:
    """Claims queued (or abandoned) studies and runs them with the engine, one at a time.

    Args:
        store: The shared store.
        worker_id: Unique id written to claimed studies (default: host:pid:random).
        lease_seconds: How long a claim lasts without a heartbeat.
        heartbeat_seconds: How often the lease is renewed and cancellation is checked.
        poll_seconds: How long to wait when nothing is queued.
        ray_address: Ray cluster for studies using the ``ray`` executor.
        executor_factory: Builds the executor for a spec (default:
            :func:`executor_for_spec`).
    """

    def __init__(
        self,
        store: Store,
        *,
        worker_id: str | None = None,
        lease_seconds: float = 30.0,
        heartbeat_seconds: float = 2.0,
        poll_seconds: float = 2.0,
        ray_address: str | None = None,
        executor_factory: ExecutorFactory | None = None,
    ) -> None:
        if heartbeat_seconds >= lease_seconds:
            raise ValueError("heartbeat_seconds must be below lease_seconds")
        self.store = store
        self.worker_id = worker_id or default_worker_id()
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.poll_seconds = poll_seconds
        self.ray_address = ray_address
        self._executor_factory = executor_factory
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lease: Lease | None = None
        self.runs: deque[StudyRun] = deque(maxlen=1000)  # the latest studies this worker ran

    # ---------------------------------------------------------------- control
    def stop(self) -> None:
        """Ask the loop to end; a running study is handed back to the queue."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    def should_stop(self) -> bool:
        """The engine's stop hook: shutting down, cancel requested, or lease lost."""
        lease = self._lease
        return self._stop.is_set() or (
            lease is not None and (lease.cancel_requested.is_set() or lease.is_lost())
        )

    def start(self, *, max_studies: int | None = None, exit_when_idle: bool = False) -> None:
        """Run :meth:`run` in a long-lived background thread."""
        self._thread = threading.Thread(
            target=self.run,
            kwargs={"max_studies": max_studies, "exit_when_idle": exit_when_idle},
            name=f"worker-{self.worker_id}",
            daemon=True,
        )
        self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the background thread; return whether it ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ------------------------------------------------------------------- loop
    def run(self, *, max_studies: int | None = None, exit_when_idle: bool = False) -> int:
        """Claim and run studies until stopped; return how many were run.

        Args:
            max_studies: End after this many studies.
            exit_when_idle: End when nothing is claimable instead of polling.
        """
        n = 0
        logger.info("worker %s started", self.worker_id)
        while not self._stop.is_set() and (max_studies is None or n < max_studies):
            try:
                record = self.store.claim_study(self.worker_id, self.lease_seconds)
            except StoreError as e:
                logger.warning("worker %s cannot claim: %s", self.worker_id, e)
                record = None
            if record is None:
                if exit_when_idle:
                    break
                self._stop.wait(self.poll_seconds)
                continue
            self.runs.append(self.process(record))
            n += 1
        logger.info("worker %s stopped after %d studies", self.worker_id, n)
        return n

    def process(self, record: StudyRecord) -> StudyRun:
        """Run one claimed study to its end and release it with its final status."""
        logger.info("worker %s runs study %s (%s)", self.worker_id, record.id, record.name)
        if record.cancel_requested:  # cancelled while its previous worker was gone
            return self._release(record.id, StudyStatus.CANCELLED, None)
        error: str | None = None
        requeue = False
        engine_status: StudyStatus | None = None
        lease = Lease(
            self.store,
            record.id,
            self.worker_id,
            self.lease_seconds,
            self.heartbeat_seconds,
            valid_for=_seconds_left(record),
        )
        self._lease = lease
        try:
            with lease:
                try:
                    engine_status = self._run_engine(record)
                except StoreError as e:  # the study stays resumable: hand it back
                    logger.warning("study %s: database error, requeueing: %s", record.id, e)
                    requeue = True
                except LabError as e:
                    error = str(e)
                except Exception as e:
                    logger.exception("study %s failed", record.id)
                    error = f"{type(e).__name__}: {e}"
        finally:
            self._lease = None
        if lease.is_lost():  # another worker may hold it now: leave its status alone
            return StudyRun(record.id, None, "lease lost")
        if requeue:
            return self._release(record.id, StudyStatus.QUEUED, None)
        return self._release(
            record.id, self._final_status(record.id, lease, error, engine_status), error
        )

    def _release(self, study_id: str, status: StudyStatus, error: str | None) -> StudyRun:
        try:
            self.store.release_study(study_id, self.worker_id, status, error)
        except (ConflictError, NotFoundError, StoreError) as e:
            logger.warning("cannot release study %s: %s", study_id, e)
            return StudyRun(study_id, None, str(e))
        logger.info("study %s -> %s", study_id, status)
        return StudyRun(study_id, status, error)

    def _final_status(
        self, study_id: str, lease: Lease, error: str | None, engine_status: StudyStatus | None
    ) -> StudyStatus:
        """Decide how a study ends once the engine returned.

        Cancelled if a user asked; failed on an error; completed when the engine finished
        the work; otherwise (this worker is shutting down) back to the queue.
        """
        try:
            cancelled = (
                lease.cancel_requested.is_set() or self.store.get_study(study_id).cancel_requested
            )
        except (StoreError, NotFoundError):
            cancelled = lease.cancel_requested.is_set()
        if cancelled:
            return StudyStatus.CANCELLED
        if error is not None:
            return StudyStatus.FAILED
        if engine_status == StudyStatus.COMPLETED or not self._stop.is_set():
            return StudyStatus.COMPLETED
        return StudyStatus.QUEUED

    def _run_engine(self, record: StudyRecord) -> StudyStatus | None:
        """Run the study; return the final status the engine asked for."""
        from studies.engine import run_study
        from studies.spec import parse_spec

        spec = parse_spec(record.spec)
        factory = self._executor_factory or self._default_executor
        leased = LeasedStore(self.store, record.id)
        with factory(spec) as executor:
            run_study(
                spec,
                leased,  # type: ignore[arg-type]
                executor,
                study_id=record.id,
                should_stop=self.should_stop,
            )
        return leased.requested[0] if leased.requested else None

    def _default_executor(self, spec: Any) -> Any:
        """The executor the spec asks for; this worker's Ray address wins over the spec's."""
        from workers.executors import executor_for_spec

        return executor_for_spec(spec, ray_address=self.ray_address)


def _seconds_left(record: StudyRecord) -> float | None:
    """Seconds until a just-claimed study's lease expires (``None`` if it has none).

    The store stamps leases with this host's UTC clock, so the difference is local.
    """
    if record.lease_expires_at is None:
        return None
    return (record.lease_expires_at - datetime.now(UTC)).total_seconds()


class LeasedStore:
    """The store as the engine sees it while a worker holds a study's lease.

    Everything is delegated, except status changes of the leased study: the worker owns
    them and applies the final one with :meth:`Store.release_study`, which checks that
    the lease is still its own. (A worker that lost its lease must not mark a study that
    another worker now runs.)
    """

    def __init__(self, store: Store, study_id: str) -> None:
        self._store = store
        self._study_id = study_id
        self.requested: tuple[StudyStatus, str | None] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def set_status(
        self, study_id: str, status: StudyStatus | str, error: str | None = None
    ) -> StudyRecord:
        """Record the engine's wish for the leased study; pass others through."""
        if study_id != self._study_id:
            return self._store.set_status(study_id, status, error)
        self.requested = (StudyStatus(status), error)
        return self._store.get_study(study_id)


def run_worker_process(worker: Worker, *, exit_when_idle: bool = False) -> int:
    """Run ``worker`` in a thread while the main thread handles SIGTERM/SIGINT.

    The first signal stops the worker gracefully (its running study goes back to the
    queue); a second one restores the default handlers, so it kills the process.

    Returns:
        How many studies the worker ran.
    """

    def handle(signum: int, frame: FrameType | None) -> None:
        logger.info("signal %d: stopping worker %s", signum, worker.worker_id)
        worker.stop()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        worker.start(exit_when_idle=exit_when_idle)
        while not worker.join(0.5):
            pass
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return len(worker.runs)
