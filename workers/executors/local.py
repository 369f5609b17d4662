"""The in-process executor: sequential, or a thread pool for concurrency."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Iterator, Sequence

from labcore.results import EpochMetrics
from workers.executors.base import (
    DEFAULT_TRIAL_FN,
    EpochFn,
    Executor,
    PruneFn,
    StartFn,
    StopFn,
    TrialFn,
    TrialOutcome,
    TrialRequest,
    call_trial,
    load_trial_fn,
    notify,
)


class LocalExecutor(Executor):
    """Runs trials in this process (threads when ``max_concurrent > 1``).

    PyTorch releases the GIL in its kernels, so threads overlap; for real parallel
    training on a machine use the Ray executor. ``should_stop`` also reaches
    ``run_trial``, which polls it inside epochs, so a cancel does not wait for a long
    epoch to end.

    Args:
        max_concurrent: Trials at a time.
        device: Passed to ``run_trial`` (``None``: CUDA if available).
        trial_fn: Import string of the trial function (tests inject failures here).

    Raises:
        ValueError: ``max_concurrent`` is below 1.
    """

    name = "local"

    def __init__(
        self, max_concurrent: int = 1, device: str | None = None, trial_fn: str = DEFAULT_TRIAL_FN
    ) -> None:
        super().__init__(max_concurrent)
        self.device = device
        self.trial_fn_path = trial_fn
        self._fn: TrialFn | None = None

    def _trial_fn(self) -> TrialFn:
        if self._fn is None:
            self._fn = load_trial_fn(self.trial_fn_path)
        return self._fn

    def _run_one(
        self,
        request: TrialRequest,
        should_stop: StopFn | None,
        should_prune: PruneFn | None,
        on_start: StartFn | None = None,
        on_epoch: EpochFn | None = None,
    ) -> TrialOutcome:
        stopped = threading.Event()
        notify(on_start, request)

        def report(epoch: EpochMetrics) -> bool:
            notify(on_epoch, request, epoch)
            if should_stop is not None and should_stop():
                stopped.set()
                return True
            return bool(
                epoch.epoch > 0 and should_prune is not None and should_prune(request, epoch)
            )

        def poll() -> bool:  # run_trial polls this inside epochs: long epochs stop too
            if should_stop is not None and should_stop():
                stopped.set()
                return True
            return False

        stop = poll if should_stop is not None else None
        result = call_trial(self._trial_fn(), request, report, self.device, stop)
        return TrialOutcome(request, result, cancelled=stopped.is_set())

    def run(
        self,
        requests: Sequence[TrialRequest],
        *,
        should_stop: StopFn | None = None,
        should_prune: PruneFn | None = None,
        on_start: StartFn | None = None,
        on_epoch: EpochFn | None = None,
    ) -> Iterator[TrialOutcome]:
        """Run ``requests`` in this process; yield outcomes as they complete.

        A caller that stops iterating (closes the generator) stops the running trials.
        """
        closing = threading.Event()

        def stop() -> bool:
            return closing.is_set() or (should_stop is not None and should_stop())

        if self.max_concurrent == 1:
            for request in requests:
                if stop():
                    return
                yield self._run_one(request, stop, should_prune, on_start, on_epoch)
            return
        pending = list(requests)[::-1]
        with cf.ThreadPoolExecutor(self.max_concurrent, thread_name_prefix="trial") as pool:
            running: set[cf.Future[TrialOutcome]] = set()
            try:
                while pending or running:
                    while pending and len(running) < self.max_concurrent and not stop():
                        running.add(
                            pool.submit(
                                self._run_one,
                                pending.pop(),
                                stop,
                                should_prune,
                                on_start,
                                on_epoch,
                            )
                        )
                    if not running:
                        return
                    done, running = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                    for fut in done:
                        yield fut.result()
            finally:
                closing.set()  # no-op after a normal end; else the pool's trials stop soon
