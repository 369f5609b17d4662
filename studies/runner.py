"""The study runner: lease → run → heartbeat → release; it alone decides the final status.

Whoever runs a study goes through :class:`StudyRunner`: the service worker (for studies
it claimed from the queue) and ``vradam-hpo run`` (for the study it created or resumes),
and :func:`run_study` for Python callers and tests. The engine
(:func:`studies.engine.execute`) only runs trials and records their results; it never
writes the study's status. The runner holds the lease while the engine runs and then
releases the study with exactly one final status:

============================================  =========================================
what happened                                 the study ends
============================================  =========================================
a user asked to cancel                        ``cancelled``
a second Ctrl-C (``KeyboardInterrupt``)       ``cancelled`` ("interrupted"), re-raised
the database failed (``StoreError``)          handed back: ``queued`` once it answers
the lease was lost                            handed back if still ours, else untouched
the engine raised anything else               ``failed`` with ``Type: message``
the runner was asked to stop (shutdown,       ``on_stop`` (``queued`` for a worker, so
Ctrl-C) before the work was done              another resumes it; ``cancelled`` for the CLI)
every trial ran, none has a final result      ``failed``: "no trial succeeded ..."
every trial ran                               ``completed`` (failed trials are named in
                                              the study's ``error``)
============================================  =========================================

"Handed back" means: as soon as the database answers again, the runner checks that the
study still runs under its worker id (a renewal) and releases it to ``queued``, so the
next claim resumes it at once instead of waiting for the lease to expire. If another
worker took the study meanwhile, the runner leaves it alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from labcore.errors import ConflictError, LabError, NotFoundError, StoreError
from labcore.outcomes import Outcome
from studies.engine import ProgressEvent, StudySummary, execute, summarize
from studies.lease import Lease, seconds_left
from studies.spec import StudySpec, parse_spec
from studies.store import Store, StudyRecord, StudyStatus
from studies.trust import LOCAL
from workers.executors.base import Executor

logger = logging.getLogger(__name__)

ExecutorFactory = Callable[[StudySpec], AbstractContextManager[Executor]]
"""Builds the executor for a validated spec (entered as a context manager)."""


@dataclass(frozen=True)
class RunReport:
    """What a runner did with one study.

    Attributes:
        study_id: The study.
        status: The status it was released with; ``None`` when it was left alone (the
            lease was lost to another worker, or the database never answered).
        error: Why it failed, or a note on failed trials, or why it was left alone.
        summary: Per-cell counts and best configurations (``None`` if unreadable).
        exception: What the engine raised, if anything (:func:`run_study` re-raises it).
    """

    study_id: str
    status: StudyStatus | None
    error: str | None = None
    summary: StudySummary | None = None
    exception: BaseException | None = None


class StudyRunner:
    """Runs studies that this worker id holds, with a heartbeat, and releases them.

    Args:
        store: The shared store.
        worker_id: The id leases are held under.
        lease_seconds: How long each renewal extends the lease.
        heartbeat_seconds: Seconds between renewals (and cancel checks).
        on_stop: The status a study gets when ``should_stop`` ended the run early.
        handback_seconds: How long to keep trying to hand a study back while the
            database does not answer (default ``lease_seconds``; after that the lease
            expires on its own and any worker may claim the study).

    Raises:
        ValueError: ``heartbeat_seconds`` is not below ``lease_seconds``.
    """

    def __init__(
        self,
        store: Store,
        worker_id: str,
        *,
        lease_seconds: float = 30.0,
        heartbeat_seconds: float = 2.0,
        on_stop: StudyStatus = StudyStatus.QUEUED,
        handback_seconds: float | None = None,
    ) -> None:
        if heartbeat_seconds >= lease_seconds:
            raise ValueError("heartbeat_seconds must be below lease_seconds")
        self.store, self.worker_id = store, worker_id
        self.lease_seconds, self.heartbeat_seconds = lease_seconds, heartbeat_seconds
        self.on_stop = on_stop
        self.handback_seconds = lease_seconds if handback_seconds is None else handback_seconds
        self.lease: Lease | None = None  # the lease of the study running now

    def acquire(self, study_id: str) -> StudyRecord:
        """Take ``study_id`` under this runner's worker id.

        Raises:
            ConflictError: Another worker holds it under a live lease.
            NotFoundError: No such study.
        """
        return self.store.acquire_study(study_id, self.worker_id, self.lease_seconds)

    def run(
        self,
        record: StudyRecord,
        spec: StudySpec,
        make_executor: ExecutorFactory,
        *,
        progress: Callable[[ProgressEvent], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> RunReport:
        """Run a study this worker id holds (claimed or acquired) and release it.

        Args:
            record: The held study (from ``claim_study`` or :meth:`acquire`).
            spec: Its validated definition.
            make_executor: Builds the executor (its errors fail the study).
            progress: Passed to the engine.
            should_stop: External stop (shutdown, Ctrl-C); ends the study ``on_stop``.

        Returns:
            What happened; never raises for the study's own errors (see
            :attr:`RunReport.exception`). ``KeyboardInterrupt`` is re-raised after release.
        """
        if record.cancel_requested:  # cancelled while it waited or its holder was gone
            return self._release(record.id, StudyStatus.CANCELLED, None)
        lease = Lease(
            self.store,
            record.id,
            self.worker_id,
            self.lease_seconds,
            self.heartbeat_seconds,
            valid_for=seconds_left(record),
        )
        external = should_stop or (lambda: False)

        def stop() -> bool:
            return external() or lease.cancel_requested.is_set() or lease.is_lost()

        t0 = time.monotonic()
        failure: BaseException | None = None
        n_run, stopped = 0, False
        self.lease = lease
        try:
            with lease:
                try:
                    with make_executor(spec) as executor:
                        n_run, stopped = execute(
                            spec, self.store, executor, record.id, progress=progress,
                            should_stop=stop,
                        )  # fmt: skip
                except BaseException as e:  # decided below, once the heartbeat has stopped
                    failure = e
        finally:
            self.lease = None
        report = self._finish(record.id, spec, lease, failure, stopped, external)
        if report.status is not None or report.summary is None:
            report = self._with_summary(report, spec, n_run, time.monotonic() - t0)
        if isinstance(failure, KeyboardInterrupt):
            raise failure
        return report

    # ------------------------------------------------------------ decisions
    def _finish(
        self,
        study_id: str,
        spec: StudySpec,
        lease: Lease,
        failure: BaseException | None,
        stopped: bool,
        external: Callable[[], bool],
    ) -> RunReport:
        if isinstance(failure, StoreError) or lease.is_lost():
            why = f"database error: {failure}" if failure is not None else "lease lost"
            logger.warning("study %s: %s; handing it back", study_id, why)
            return self._hand_back(study_id, why, failure)
        if isinstance(failure, KeyboardInterrupt):
            return self._release(study_id, StudyStatus.CANCELLED, "interrupted", failure)
        if self._cancel_requested(study_id, lease):
            return self._release(study_id, StudyStatus.CANCELLED, None, failure)
        if failure is not None:
            if not isinstance(failure, LabError):
                logger.error("study %s failed", study_id, exc_info=failure)
            message = f"{type(failure).__name__}: {failure}"
            return self._release(study_id, StudyStatus.FAILED, message, failure)
        if stopped and external():
            return self._release(study_id, self.on_stop, None)
        status, note = self._judge_trials(study_id, spec)
        return self._release(study_id, status, note)

    def _cancel_requested(self, study_id: str, lease: Lease) -> bool:
        if lease.cancel_requested.is_set():
            return True
        try:
            return self.store.get_study(study_id).cancel_requested
        except (StoreError, NotFoundError):
            return False

    def _judge_trials(self, study_id: str, spec: StudySpec) -> tuple[StudyStatus, str | None]:
        """``completed`` unless no trial has a final result; failed trials are named."""
        counts: dict[str, int] = {}
        for per_cell in self.store.outcome_counts(study_id).values():
            for outcome, n in per_cell.items():
                counts[outcome] = counts.get(outcome, 0) + n
        n_failed = counts.get(Outcome.FAILED, 0)
        n_final = sum(n for o, n in counts.items() if Outcome(o).final)
        if n_failed == 0:
            return StudyStatus.COMPLETED, None
        sample, _ = self.store.list_trials(study_id, outcome=Outcome.FAILED, limit=1)
        cause = sample[0].error if sample and sample[0].error else "unknown error"
        tried = f"{n_failed} of {n_failed + n_final} trials failed after "
        tried += f"{1 + spec.max_retries} attempts each (first error: {cause})"
        if n_final == 0:
            return StudyStatus.FAILED, f"no trial succeeded: {tried}"
        return StudyStatus.COMPLETED, tried

    # -------------------------------------------------------------- release
    def _release(
        self,
        study_id: str,
        status: StudyStatus,
        error: str | None,
        exception: BaseException | None = None,
    ) -> RunReport:
        try:
            self.store.release_study(study_id, self.worker_id, status, error)
        except (ConflictError, NotFoundError) as e:
            logger.warning("cannot release study %s: %s", study_id, e)
            return RunReport(study_id, None, str(e), exception=exception)
        except StoreError as e:
            return self._hand_back(study_id, f"release failed: {e}", exception)
        logger.info("study %s -> %s", study_id, status)
        return RunReport(study_id, status, error, exception=exception)

    def _hand_back(self, study_id: str, why: str, exception: BaseException | None) -> RunReport:
        """Release to ``queued`` as soon as the database answers, if the study is still ours.

        A successful renewal proves the study still runs under this worker id (and makes
        it unclaimable for a lease period), so the release that follows cannot overwrite
        another worker's study.
        """
        deadline = time.monotonic() + self.handback_seconds
        while True:
            try:
                if not self.store.renew_lease(study_id, self.worker_id, self.lease_seconds):
                    return RunReport(study_id, None, f"{why}; the study is no longer ours")
                self.store.release_study(study_id, self.worker_id, StudyStatus.QUEUED, None)
                logger.info("study %s handed back to the queue (%s)", study_id, why)
                return RunReport(study_id, StudyStatus.QUEUED, None, exception=exception)
            except (ConflictError, NotFoundError) as e:
                return RunReport(study_id, None, f"{why}; {e}", exception=exception)
            except StoreError as e:
                if time.monotonic() >= deadline:
                    logger.warning(
                        "study %s: database still down (%s); left to expire", study_id, e
                    )
                    return RunReport(study_id, None, why, exception=exception)
            time.sleep(min(self.heartbeat_seconds, 1.0))

    def _with_summary(
        self, report: RunReport, spec: StudySpec, n_run: int, elapsed_s: float
    ) -> RunReport:
        try:
            summary = summarize(spec, self.store, report.study_id, n_run=n_run, elapsed_s=elapsed_s)
        except (StoreError, NotFoundError) as e:
            logger.warning("cannot summarise study %s: %s", report.study_id, e)
            return report
        return RunReport(report.study_id, report.status, report.error, summary, report.exception)


def run_study(
    spec: StudySpec | dict[str, Any] | str,
    store: Store,
    executor: Executor,
    study_id: str | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    worker_id: str = "local",
) -> StudySummary:
    """Create (or resume) a study and run it here with ``executor``, under a lease.

    For Python callers and tests, on their own definitions (:data:`studies.trust.LOCAL`:
    import strings and any paths allowed); the service worker and the CLI use
    :class:`StudyRunner` directly. ``should_stop`` ends the study ``cancelled``.

    Args:
        spec: A validated :class:`StudySpec`, or a definition to parse (mapping, path, text).
        store: Where everything is recorded; its schema must exist.
        executor: Where trials run (entered and closed here).
        study_id: Resume this study; ``None`` creates a new one.
        progress: Called with a :class:`ProgressEvent` at the start and after each trial.
        should_stop: Polled between trials and after every epoch.
        worker_id: The lease holder's id.

    Returns:
        The summary, with the final status.

    Raises:
        SpecError: The definition is invalid.
        NotFoundError: ``study_id`` does not exist.
        ConflictError: Another worker holds the study under a live lease.
        Exception: Whatever the engine raised (the study is released ``failed`` first).
    """
    if not isinstance(spec, StudySpec):
        spec = parse_spec(spec, trust=LOCAL)  # a caller's own definition: its code, its paths
    if study_id is None:
        study_id = store.create_study(spec.name, spec.to_dict()).id
    spec = LOCAL.resolve(spec)
    runner = StudyRunner(store, worker_id, on_stop=StudyStatus.CANCELLED)
    report = runner.run(
        runner.acquire(study_id),
        spec,
        lambda _spec: nullcontext(executor),
        progress=progress,
        should_stop=should_stop,
    )
    if report.exception is not None:
        raise report.exception
    assert report.summary is not None, report.error
    return report.summary
