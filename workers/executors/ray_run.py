"""The driver-side state of one Ray Tune run, and the Tune hooks that feed it.

:class:`TuneRun` holds a run's requests, per-trial epochs and the queue of outcomes that
:meth:`~workers.executors.ray_executor.RayExecutor.run` yields from. Tune calls
:class:`TuneStopper` after every reported epoch (pruning, cancellation) and
:class:`TuneCollector` on trial events (start, final result, completion, error); both
find their run in :data:`RUNS` by id.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Sequence
from typing import Any

from ray import tune

from labcore.outcomes import Outcome
from labcore.results import EpochMetrics, TrialResult
from workers.executors.base import (
    EpochFn,
    PruneFn,
    StartFn,
    StopFn,
    TrialOutcome,
    TrialRequest,
    failed_result,
    notify,
)


class TuneRun:
    """Driver-side state of one Tune run (shared by the stopper and the callback)."""

    def __init__(
        self,
        requests: Sequence[TrialRequest],
        should_stop: StopFn,
        should_prune: PruneFn | None,
        on_start: StartFn | None = None,
        on_epoch: EpochFn | None = None,
    ) -> None:
        self.requests = list(requests)
        self.should_stop = should_stop
        self.should_prune = should_prune
        self.on_start = on_start
        self.on_epoch_hook = on_epoch
        self.out: queue.Queue[TrialOutcome] = queue.Queue()
        self.epochs: dict[int, list[EpochMetrics]] = {}
        self.stopped: dict[int, str] = {}  # index -> "prune" | "cancel"
        self.done: set[int] = set()
        self.started: set[int] = set()
        self.lock = threading.Lock()
        self.closing = False  # the caller stopped iterating: stop everything

    def stopping(self) -> bool:
        """Whether the run must stop: the caller left, or ``should_stop`` says so."""
        return self.closing or self.should_stop()

    def emit(self, index: int, result: TrialResult, cancelled: bool = False) -> None:
        """Queue the outcome of request ``index`` (once: a second outcome is dropped)."""
        with self.lock:
            if index in self.done:
                return
            self.done.add(index)
        self.out.put(TrialOutcome(self.requests[index], result, cancelled))

    def on_epoch(self, index: int, result: dict[str, Any]) -> bool:
        """Record an epoch Tune reported; whether to stop the trial (cancel or prune)."""
        epoch = EpochMetrics(
            epoch=int(result["epoch"]),
            step=int(result["step"]),
            metrics=json.loads(result["metrics_json"]),
            effective_lr_ratio=result.get("elr"),
        )
        self.epochs.setdefault(index, []).append(epoch)
        notify(self.on_epoch_hook, self.requests[index], epoch)
        if self.stopping():
            self.stopped[index] = "cancel"
            return True
        prune = self.should_prune
        if prune is not None and epoch.epoch > 0 and prune(self.requests[index], epoch):
            self.stopped[index] = "prune"
            return True
        return False

    def finish(self) -> None:
        """After the Tune run: account for started trials Tune stopped silently.

        ``stop_all`` ends running trials without a completion event; they are cancelled
        (or, without a stop request, failed: they ended without a result).
        """
        for index in sorted(self.started - self.done):
            self.ended(index, None)

    def ended(self, index: int, error: str | None) -> None:
        """A trial ended without a final report: stopped by us, or lost."""
        reason = self.stopped.get(index)
        epochs = tuple(self.epochs.get(index, ()))
        if reason == "cancel" or (error is None and reason is None and self.stopping()):
            self.emit(index, failed_result("cancelled"), cancelled=True)
        elif reason == "prune":
            last = epochs[-1].metrics if epochs else {}
            initial = epochs[0].metrics if epochs else {}
            self.emit(index, TrialResult(Outcome.PRUNED, dict(last), dict(initial), epochs))
        else:
            self.emit(index, failed_result(error or "the trial ended without a result"))


# Tune pickles its stopper and callbacks into the experiment state; they hold only a run
# id and find the driver-side state (queues, locks) here. A run id missing from here
# means its caller is gone: the stopper then stops everything, the callbacks do nothing.
RUNS: dict[str, TuneRun] = {}


class TuneStopper(tune.Stopper):
    """Pruning and cancellation, evaluated on the driver after every epoch."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        """Whether to stop this trial after the result it just reported."""
        run = RUNS.get(self.run_id)
        if run is None:
            return True
        if result.get("kind") != "epoch":
            return False
        return run.on_epoch(int(result["i"]), result)

    def stop_all(self) -> bool:
        """Whether to stop the whole run (its caller left, or asked to stop)."""
        run = RUNS.get(self.run_id)
        return run is None or run.stopping()


class TuneCollector(tune.Callback):
    """Turns Tune's trial events into outcomes on the run's queue."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        """Queue a trial's final result."""
        run = RUNS.get(self.run_id)
        if run is not None and result.get("kind") == "final":
            data = json.loads(result["result_json"])
            run.emit(int(result["i"]), TrialResult.from_dict(data))

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """Note a started trial (once) and call the executor's ``on_start`` hook."""
        run = RUNS.get(self.run_id)
        if run is not None:
            index = int(trial.config["i"])
            if index not in run.started:
                run.started.add(index)
                notify(run.on_start, run.requests[index])

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """A trial ended: one without a final report is cancelled, pruned or failed."""
        run = RUNS.get(self.run_id)
        if run is not None:
            run.ended(int(trial.config["i"]), None)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """A trial's worker died or its trainable raised: the trial fails, saying so."""
        run = RUNS.get(self.run_id)
        if run is None:
            return
        error = trial.get_error()
        text = f"{type(error).__name__}: {error}" if error else "the trial's worker died"
        run.ended(int(trial.config["i"]), f"worker lost or trainable raised: {text}")
