"""The executor contract: run a batch of trials, yield results as they complete.

Cut like Optuna's ``storages/_base.py``: one ABC whose docstring is the contract and one
conformance suite (``tests/workers/test_executors.py``) run over every implementation.
Torch- and Ray-free at import: the engine receives an executor object.
"""

from __future__ import annotations

import abc
import functools
import importlib
import inspect
import logging
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any

from labcore.budget import Budget
from labcore.outcomes import Outcome
from labcore.results import EpochMetrics, TrialResult
from labcore.schedule import Schedule

logger = logging.getLogger(__name__)

DEFAULT_TRIAL_FN = "workers.trial:run_trial"


@dataclass(frozen=True)
class TrialRequest:
    """Everything a worker needs to run one trial (JSON-able for transport).

    Attributes:
        task: Task registry name.
        optimizer: Optimizer registry name (or import string).
        hparams: Hyperparameters for the optimizer.
        seed: Seed of model init, data order and augmentation.
        budget: Trial budget (``None``: the task's default).
        loss_factor: Divergence threshold as a multiple of the initial loss.
        data_dir: Where the task reads its files.
        task_options: Task constructor options.
        key: Canonical ``(hparams, seed)`` key, unique within the cell.
        cell_id: The cell this trial belongs to.
        schedule: The learning-rate schedule (``None``: constant).
    """

    task: str
    optimizer: str
    hparams: Mapping[str, Any]
    seed: int
    budget: Budget | None = None
    loss_factor: float = 10.0
    data_dir: str | None = None
    task_options: Mapping[str, Any] = field(default_factory=dict)
    key: str = ""
    cell_id: int = 0
    schedule: Schedule | None = None

    @property
    def ident(self) -> tuple[int, str]:
        """``(cell_id, key)``: unique within a batch."""
        return (self.cell_id, self.key)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        d = asdict(self)
        d["hparams"] = dict(self.hparams)
        d["task_options"] = dict(self.task_options)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrialRequest:
        """Inverse of :meth:`to_dict`."""
        budget, schedule = d.get("budget"), d.get("schedule")
        return cls(
            **{
                **d,
                "budget": Budget(**budget) if budget else None,
                "schedule": Schedule(**schedule) if schedule else None,
            }
        )


@dataclass(frozen=True)
class TrialOutcome:
    """What an executor yields for a request.

    Attributes:
        request: The request.
        result: Its result (``FAILED`` with ``error`` for exceptions and lost workers).
        cancelled: True when the trial was stopped because ``should_stop`` asked so: it is
            not a result (the engine records nothing, and a resume runs it again).
    """

    request: TrialRequest
    result: TrialResult
    cancelled: bool = False


StopFn = Callable[[], bool]
PruneFn = Callable[[TrialRequest, EpochMetrics], bool]
StartFn = Callable[[TrialRequest], None]
EpochFn = Callable[[TrialRequest, EpochMetrics], None]
TrialFn = Callable[..., TrialResult]


def load_trial_fn(path: str) -> TrialFn:
    """Import ``"package.module:function"`` (the function with ``run_trial``'s signature).

    Raises:
        ImportError: The module or function does not exist.
    """
    module, _, name = path.partition(":")
    fn = getattr(importlib.import_module(module), name, None)
    if fn is None:
        raise ImportError(f"{module!r} has no attribute {name!r}")
    return fn  # type: ignore[no-any-return]


@functools.cache
def _takes_should_stop(fn: TrialFn) -> bool:
    """Whether ``fn`` accepts ``should_stop`` (trial functions written before it do not)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "should_stop" or p.kind == p.VAR_KEYWORD for p in params)


def call_trial(
    fn: TrialFn,
    request: TrialRequest,
    report: Any,
    device: str | None,
    should_stop: StopFn | None = None,
    *,
    contain_exit: bool = True,
) -> TrialResult:
    """Run ``request`` through ``fn``; any exception becomes a ``FAILED`` result.

    ``should_stop`` is passed on (polled inside epochs) when ``fn`` accepts it. With
    ``contain_exit`` (in-process executors) a ``SystemExit`` raised by the trial is a
    failure too, so it cannot end the worker; a Ray actor passes False, because Ray
    stops a trial by raising ``SystemExit`` from ``tune.report`` and the actor's own
    process already contains the trial.
    """
    extra: dict[str, Any] = {}
    if should_stop is not None and _takes_should_stop(fn):
        extra["should_stop"] = should_stop
    if request.schedule is not None:  # passed only when set: older trial functions lack it
        extra["schedule"] = request.schedule
    try:
        return fn(
            request.task,
            request.optimizer,
            dict(request.hparams),
            request.seed,
            request.budget,
            report,
            loss_factor=request.loss_factor,
            device=device,
            data_dir=request.data_dir,
            task_options=dict(request.task_options),
            **extra,
        )
    except KeyboardInterrupt:
        raise
    except SystemExit:
        if not contain_exit:
            raise
        logger.error("trial %s raised SystemExit", request.key)
        return failed_result(f"SystemExit: {sys.exc_info()[1]}")
    except BaseException as e:  # a trial that raises SystemExit must not end the worker
        logger.error("trial %s raised out of its trial function", request.key, exc_info=e)
        return failed_result(f"{type(e).__name__}: {e}")


def notify(hook: Callable[..., None] | None, *args: Any) -> None:
    """Call a progress hook; its exceptions are logged, never raised into the trial."""
    if hook is None:
        return
    try:
        hook(*args)
    except Exception:
        logger.warning("a progress hook failed", exc_info=True)


def failed_result(error: str) -> TrialResult:
    """A ``FAILED`` result with ``error``."""
    return TrialResult(outcome=Outcome.FAILED, metrics={}, error=error)


class Executor(abc.ABC):
    """Runs trials, at most ``max_concurrent`` at a time, all through ``run_trial``.

    Contract:
        * :meth:`run` takes a batch of requests with distinct ``(cell_id, key)`` and yields
          one :class:`TrialOutcome` per request that started, in completion order, as
          each completes. Trials really run concurrently up to ``max_concurrent``.
        * Training failures, exceptions and lost workers are ``FAILED`` results, never
          exceptions out of :meth:`run`; the executor does not retry (the engine does).
        * ``should_prune(request, epoch_metrics)`` is consulted after every epoch (epoch
          0 excluded); True stops the trial as ``PRUNED``.
        * ``should_stop()`` is polled between trials and after every epoch (and, where
          the executor passes it to ``run_trial``, inside epochs). Once it is True, no
          new trial starts, running trials are stopped within seconds and yielded with
          ``cancelled=True``; requests never started are either not yielded or yielded
          with ``cancelled=True``.
        * ``on_start(request)`` is called when a trial starts running, and
          ``on_epoch(request, epoch_metrics)`` after every epoch (epoch 0, the initial
          evaluation, included) before ``should_prune``: live progress. Their exceptions
          are logged and never fail the trial.
        * Every hook runs in the process that called :meth:`run` (any thread).
        * :meth:`close` releases resources (threads, a Ray cluster the executor started).
    """

    name: str = "executor"

    def __init__(self, max_concurrent: int = 1) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {max_concurrent}")
        self.max_concurrent = max_concurrent

    @abc.abstractmethod
    def run(
        self,
        requests: Sequence[TrialRequest],
        *,
        should_stop: StopFn | None = None,
        should_prune: PruneFn | None = None,
        on_start: StartFn | None = None,
        on_epoch: EpochFn | None = None,
    ) -> Iterator[TrialOutcome]:
        """Run ``requests``; yield each outcome as it completes (see the contract)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
