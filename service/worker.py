"""The worker loop: claim a queued study, run it through the study runner, repeat.

One :class:`Worker` runs one study at a time in one long-lived thread (Ray, when a
study uses the ``ray`` executor, is initialised from that thread, never from a web
server's main thread, whose SIGTERM handler ``ray.init`` would replace). The study's
definition is parsed once, at the claim; :class:`studies.runner.StudyRunner` then holds
the lease, runs the engine and decides the final status (see its module docstring). A
worker that is shutting down hands its running study back to the queue, so another
worker (or this one after a restart) resumes it at once without repeating finished
trials.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import FrameType

from labcore.errors import ConflictError, NotFoundError, SpecError, StoreError
from studies.spec import StudySpec
from studies.store import Store
from studies.store.records import StudyRecord, StudyStatus
from studies.trust import Trust
from workers.executors.base import Executor

logger = logging.getLogger(__name__)

ExecutorFactory = Callable[[StudySpec], AbstractContextManager[Executor]]
"""Builds the executor for a validated ``StudySpec``."""


def default_worker_id() -> str:
    """Return ``host:pid:random``, unique per worker."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


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
            :func:`studies.executors.build_executor` with ``ray_address``).
        trust: What claimed studies may ask of this worker (default: registered
            optimizers only, data folders under the working directory).

    Raises:
        ValueError: ``heartbeat_seconds`` is not below ``lease_seconds``.
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
        trust: Trust | None = None,
    ) -> None:
        self.store = store
        self.worker_id = worker_id or default_worker_id()
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.poll_seconds = poll_seconds
        self.ray_address = ray_address
        self._executor_factory = executor_factory
        self.trust = trust or Trust()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if heartbeat_seconds >= lease_seconds:
            raise ValueError("heartbeat_seconds must be below lease_seconds")
        self.runs: deque[StudyRun] = deque(maxlen=1000)  # the latest studies this worker ran

    # ---------------------------------------------------------------- control
    def stop(self) -> None:
        """Ask the loop to end; a running study is handed back to the queue."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

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
            try:
                self.runs.append(self.process(record))
            except Exception as e:  # the loop outlives any study: log it and go on
                logger.exception("worker %s: study %s broke the runner", self.worker_id, record.id)
                self.runs.append(StudyRun(record.id, None, f"{type(e).__name__}: {e}"))
            n += 1
        logger.info("worker %s stopped after %d studies", self.worker_id, n)
        return n

    def process(self, record: StudyRecord) -> StudyRun:
        """Run one claimed study to its end through the runner; never raises for the study."""
        logger.info("worker %s runs study %s (%s)", self.worker_id, record.id, record.name)
        from studies.runner import StudyRunner  # imports the engine (optuna): not at start-up
        from studies.spec import parse_spec

        try:
            spec = self.trust.resolve(parse_spec(record.spec, trust=self.trust))
        except SpecError as e:  # the one parse of a claimed study, at this worker's boundary
            return self._release_unrunnable(record.id, f"invalid definition: {e}")
        runner = StudyRunner(
            self.store,
            self.worker_id,
            lease_seconds=self.lease_seconds,
            heartbeat_seconds=self.heartbeat_seconds,
            on_stop=StudyStatus.QUEUED,
        )

        def make_executor(spec: StudySpec) -> AbstractContextManager[Executor]:
            if self._executor_factory is not None:
                return self._executor_factory(spec)
            return self._default_executor(spec, record.id)

        report = runner.run(
            record,
            spec,
            make_executor,
            should_stop=self._stop.is_set,
        )
        return StudyRun(report.study_id, report.status, report.error)

    def _release_unrunnable(self, study_id: str, error: str) -> StudyRun:
        try:
            self.store.release_study(study_id, self.worker_id, StudyStatus.FAILED, error)
        except (ConflictError, NotFoundError, StoreError) as e:
            logger.warning("cannot release study %s: %s", study_id, e)
            return StudyRun(study_id, None, str(e))
        return StudyRun(study_id, StudyStatus.FAILED, error)

    def _default_executor(self, spec: StudySpec, study_id: str) -> Executor:
        """The executor the spec asks for, on this worker's Ray cluster.

        What a run waits for (a node with the trial's resources) becomes the study's
        ``note``, shown by ``status`` until the run goes on.
        """
        from studies.executors import build_executor

        def on_wait(note: str | None) -> None:
            try:
                self.store.set_note(study_id, self.worker_id, note)
            except StoreError as e:
                logger.warning("cannot note study %s: %s", study_id, e)

        return build_executor(spec.executor, ray_address=self.ray_address, on_wait=on_wait)


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
