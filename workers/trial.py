"""``run_trial``: train one (task, optimizer, hyperparameters, seed) and report how it went.

It knows nothing of Optuna, Ray or the store; both executors call it. The loop:

1. Seed Python, NumPy and torch (all devices) with ``seed``; build the task, the model
   (``task.build_model(seed)``, moved to the device) and the optimizer
   (:func:`workers.optimizers.registry.build_optimizer`).
2. **Epoch 0**: evaluate ``val`` and ``test`` at initialisation; ``train_loss`` at
   epoch 0 is the loss of the first training batch at initialisation (the forward pass
   of step 1, so it costs nothing extra and has no side effect). It is also the
   reference for divergence. The reporter sees epoch 0 before any update.
3. Epochs ``1..budget.epochs``: ``train_batches(seed, epoch)`` (at most
   ``budget.steps_per_epoch`` of them), one optimizer step per batch, then evaluate and
   report. ``train_loss`` of an epoch is the mean loss of its steps.

Outcomes:

* ``diverged``: a step's loss is non-finite or above ``loss_factor`` × the initial loss
  (the ratio rule applies only when the initial loss is positive), or an evaluation
  returns a non-finite metric (attributed to the epoch's last step). The run stops;
  ``diverged_at_step`` is the step whose loss broke the rule (1-based; that step's
  update is not applied on CPU), and the result's ``metrics`` are the last finite
  evaluation. An exception raised after a divergence that the check had not yet seen
  (e.g. sampling from NaN probabilities) is still a divergence.
* ``pruned``: the reporter returned True (pruning or cancellation), or ``should_stop``
  did (a cancellation inside an epoch: it is polled every ``STOP_POLL_S`` seconds of
  wall time in the batch loop, so a long epoch stops within about a second).
* ``failed``: any exception (a bad configuration included): ``error`` holds the
  exception's type and message (no traceback: it names server paths); the traceback is logged.
* ``complete``: otherwise.

Host synchronisation: reading a loss value forces the host to wait for the device. On
CPU that costs nothing, so every step's loss is checked at once. On an accelerator the
losses (and VRAdam's η_t/lr) stay on the device and are read in one transfer every
``CHECK_EVERY`` steps and at every epoch end; the divergence is still attributed to its
exact step, and the at most ``CHECK_EVERY - 1`` steps run past it are discarded.

VRAdam's effective learning rate: after every step, ``group["effective_lr"] / group["lr"]``
(averaged over the groups that have it) is recorded; each epoch reports its mean
(``EpochMetrics.effective_lr_ratio``) and the result holds ``mean``/``min``/``max``/
``final`` over all steps. Other optimizers leave both empty.

Threads are left alone (``torch.set_num_threads`` is the caller's choice).
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from labcore.budget import Budget
from labcore.errors import SpecError, TrialError
from labcore.outcomes import Outcome
from labcore.results import EpochMetrics, Reporter, TrialResult
from labcore.schedule import Schedule
from workers.tasks.base import Task

if TYPE_CHECKING:
    import torch

__all__ = ["CHECK_EVERY", "STOP_POLL_S", "run_trial"]

logger = logging.getLogger(__name__)

CHECK_EVERY = 16  # steps between loss reads on an accelerator (every step on CPU)
_ERROR_LIMIT = 2000  # characters of the exception's message kept in TrialResult.error
STOP_POLL_S = 0.5  # wall-clock seconds between two polls of ``should_stop`` in an epoch


class _Diverged(Exception):
    """Control flow: a step broke the divergence rule."""

    def __init__(self, step: int) -> None:
        super().__init__(f"diverged at step {step}")
        self.step = step


class _Pruned(Exception):
    """Control flow: the reporter asked to stop."""


class _StepLog:
    """Per-step losses and effective-LR ratios, checked for divergence.

    On CPU (``window == 1``) values are read at once; otherwise they are kept as device
    tensors and read in one transfer per ``window`` steps (:meth:`flush`).
    """

    def __init__(self, window: int, loss_factor: float) -> None:
        self.window = window
        self.loss_factor = loss_factor
        self.limit = math.inf
        self.losses: list[float] = []  # this epoch's checked losses
        self.ratios: list[float] = []  # this epoch's checked effective-LR ratios
        self.all_ratios: list[float] = []
        self._pending_losses: list[torch.Tensor] = []
        self._pending_ratios: list[tuple[int, torch.Tensor]] = []  # (step, ratio)
        self.step = 0  # the last step whose loss was recorded

    def set_initial(self, initial_loss: float) -> None:
        if initial_loss > 0:
            self.limit = self.loss_factor * initial_loss

    def _broke(self, value: float) -> bool:
        return not math.isfinite(value) or value > self.limit

    def add_loss(self, loss: torch.Tensor) -> None:
        """Record the loss of the next step; raise :class:`_Diverged` if it broke the rule."""
        self.step += 1
        if self.window == 1:
            value = loss.item()
            if self._broke(value):
                raise _Diverged(self.step)
            self.losses.append(value)
        else:
            self._pending_losses.append(loss.detach())
            if len(self._pending_losses) >= self.window:
                self.flush()

    def add_ratio(self, ratio: torch.Tensor | float) -> None:
        """Record the effective-LR ratio of the step whose loss was recorded last."""
        if isinstance(ratio, float):
            self.ratios.append(ratio)
        else:
            self._pending_ratios.append((self.step, ratio))

    def flush(self) -> None:
        """Read pending values (one host transfer); raise :class:`_Diverged` if one broke."""
        if not self._pending_losses and not self._pending_ratios:
            return
        import torch

        first = self.step - len(self._pending_losses) + 1
        losses, self._pending_losses = self._pending_losses, []
        ratios, self._pending_ratios = self._pending_ratios, []
        values = torch.stack(losses).double().cpu().tolist() if losses else []
        ratio_values = torch.stack([r for _, r in ratios]).cpu().tolist() if ratios else []
        bad = next((first + i for i, v in enumerate(values) if self._broke(v)), None)
        self.losses.extend(values if bad is None else values[: bad - first])
        self.ratios.extend(
            v for (s, _), v in zip(ratios, ratio_values, strict=True) if bad is None or s < bad
        )
        if bad is not None:
            raise _Diverged(bad)

    def end_epoch(self) -> tuple[float, float | None]:
        """Return this epoch's mean loss and mean ratio, and start the next epoch."""
        self.flush()
        if not self.losses:
            raise TrialError("the task yielded no training batch in an epoch")
        mean_loss = math.fsum(self.losses) / len(self.losses)
        mean_ratio = math.fsum(self.ratios) / len(self.ratios) if self.ratios else None
        self.all_ratios.extend(self.ratios)
        self.losses, self.ratios = [], []
        return mean_loss, mean_ratio

    def ratio_stats(self) -> dict[str, float]:
        r = self.all_ratios + self.ratios
        if not r:
            return {}
        return {"mean": math.fsum(r) / len(r), "min": min(r), "max": max(r), "final": r[-1]}


def _effective_lr_ratio(optimizer: torch.optim.Optimizer, on_host: bool) -> Any:
    """Mean of ``effective_lr / lr`` over the groups that record η_t, or ``None``.

    On the host this reads η_t (free on CPU); otherwise it returns a 0-dim device tensor.
    """
    import torch

    # A zero lr has no ratio; a tensor lr is not read (that would be a host sync).
    groups = [
        g
        for g in optimizer.param_groups
        if "effective_lr" in g and (isinstance(g["lr"], torch.Tensor) or g["lr"] != 0)
    ]
    if not groups:
        return None
    if on_host:
        return math.fsum(float(g["effective_lr"]) / float(g["lr"]) for g in groups) / len(groups)

    ratios = [torch.as_tensor(g["effective_lr"]).reshape(()).double() / g["lr"] for g in groups]
    return torch.stack(ratios).mean() if len(ratios) > 1 else ratios[0]


def _check_window(device: torch.device) -> int:
    """Steps between loss reads: 1 on CPU (reads are free), ``CHECK_EVERY`` elsewhere."""
    return 1 if device.type == "cpu" else CHECK_EVERY


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _evaluate(task: Task, model: torch.nn.Module) -> dict[str, float]:
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return {
                f"{split}_{name}": float(value)
                for split in ("val", "test")
                for name, value in task.evaluate(model, split).items()
            }
    finally:
        model.train(was_training)


def _check_budget(budget: Budget, loss_factor: float) -> None:
    errors = []
    if isinstance(budget.epochs, bool) or not isinstance(budget.epochs, int) or budget.epochs < 1:
        errors.append(("budget.epochs", f"must be a positive integer, got {budget.epochs!r}"))
    spe = budget.steps_per_epoch
    if spe is not None and (isinstance(spe, bool) or not isinstance(spe, int) or spe < 1):
        errors.append(("budget.steps_per_epoch", f"must be a positive integer, got {spe!r}"))
    if not loss_factor > 0:  # also rejects NaN
        errors.append(("divergence.loss_factor", f"must be > 0, got {loss_factor!r}"))
    if errors:
        raise SpecError(errors)


def _scheduler(
    opt: torch.optim.Optimizer, schedule: Schedule | Mapping[str, Any] | None, budget: Budget
) -> Callable[[int], None] | None:
    """A function that sets every group's lr for a step (1-based), or ``None`` if constant.

    The groups' learning rates at construction are the peaks the schedule multiplies.

    Raises:
        SpecError: The schedule is invalid, or the budget has no ``steps_per_epoch``.
    """
    if isinstance(schedule, Mapping):  # e.g. a schedule read from JSON
        try:
            schedule = Schedule(**schedule)
        except (TypeError, ValueError) as e:
            raise SpecError(str(e), field="schedule") from None
    if schedule is None or schedule.constant:
        return None
    if budget.steps_per_epoch is None:
        raise SpecError(
            f"a {schedule.name} schedule needs the total number of steps: set it",
            field="budget.steps_per_epoch",
        )
    total = budget.epochs * budget.steps_per_epoch
    peaks = [float(g["lr"]) for g in opt.param_groups]

    def set_lr(step: int) -> None:
        f = schedule.factor(step, total)
        for g, peak in zip(opt.param_groups, peaks, strict=True):
            if hasattr(g["lr"], "fill_"):  # a tensor lr (capturable): update in place
                g["lr"].fill_(peak * f)
            else:
                g["lr"] = peak * f

    return set_lr


class _Run:
    """The state of one trial, so a failure can still report what happened before it."""

    def __init__(self) -> None:
        self.epochs: list[EpochMetrics] = []
        self.log: _StepLog | None = None
        self.device = "cpu"

    def train(
        self,
        task: str | Task,
        optimizer: str,
        hparams: Mapping[str, Any],
        seed: int,
        budget: Budget | None,
        report: Reporter | None,
        loss_factor: float,
        device: str | None,
        data_dir: str | None,
        task_options: Mapping[str, Any] | None,
        should_stop: Callable[[], bool] | None = None,
        schedule: Schedule | None = None,
    ) -> None:
        import torch

        from workers.optimizers.registry import build_optimizer
        from workers.tasks.registry import create_task

        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.device = dev.type
        _seed_everything(seed)
        task_obj = (
            task if isinstance(task, Task) else create_task(task, data_dir, **(task_options or {}))
        )
        if isinstance(budget, Mapping):  # e.g. a budget read from JSON
            budget = Budget(**budget)
        budget = budget or task_obj.default_budget
        _check_budget(budget, loss_factor)
        model = task_obj.build_model(seed).to(dev)
        opt = build_optimizer(optimizer, model, hparams)
        set_lr = _scheduler(opt, schedule, budget)
        window = _check_window(dev)
        on_host = window == 1
        self.log = log = _StepLog(window, loss_factor)

        initial = _evaluate(task_obj, model)
        if not all(math.isfinite(v) for v in initial.values()):
            raise TrialError(f"non-finite metrics at initialisation: {initial}")
        track_lr: bool | None = None  # decided after the first step
        next_poll = -math.inf
        model.train()
        for epoch in range(1, budget.epochs + 1):
            batches = itertools.islice(task_obj.train_batches(seed, epoch), budget.steps_per_epoch)
            for batch in batches:
                loss = task_obj.loss(model, task_obj.to_device(batch, dev))
                if not self.epochs:  # the first forward pass: the loss at initialisation
                    self._start(loss.item(), initial, report)
                if should_stop is not None and (now := time.monotonic()) >= next_poll:
                    next_poll = now + STOP_POLL_S
                    if should_stop():
                        raise _Pruned
                log.add_loss(loss)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if set_lr is not None:
                    set_lr(log.step)
                opt.step()
                if track_lr is None:
                    track_lr = any("effective_lr" in g for g in opt.param_groups)
                if track_lr and (ratio := _effective_lr_ratio(opt, on_host)) is not None:
                    log.add_ratio(ratio)
            train_loss, ratio = log.end_epoch()
            metrics = {"train_loss": train_loss, **_evaluate(task_obj, model)}
            if not all(math.isfinite(v) for v in metrics.values()):
                raise _Diverged(log.step)
            self._report(EpochMetrics(epoch, log.step, metrics, ratio), report)

    def _start(
        self, initial_loss: float, initial: dict[str, float], report: Reporter | None
    ) -> None:
        if not math.isfinite(initial_loss):
            raise TrialError(f"the loss at initialisation is not finite ({initial_loss})")
        assert self.log is not None
        self.log.set_initial(initial_loss)
        self._report(EpochMetrics(0, 0, {"train_loss": initial_loss, **initial}), report)

    def _report(self, metrics: EpochMetrics, report: Reporter | None) -> None:
        self.epochs.append(metrics)
        logger.debug("epoch %d step %d: %s", metrics.epoch, metrics.step, metrics.metrics)
        if report is not None and report(metrics):
            raise _Pruned


def run_trial(
    task: str | Task,
    optimizer: str,
    hparams: Mapping[str, Any],
    seed: int,
    budget: Budget | None = None,
    report: Reporter | None = None,
    *,
    loss_factor: float = 10.0,
    device: str | None = None,
    data_dir: str | None = None,
    task_options: Mapping[str, Any] | None = None,
    should_stop: Callable[[], bool] | None = None,
    schedule: Schedule | Mapping[str, Any] | None = None,
) -> TrialResult:
    """Train ``task`` with ``optimizer`` at ``hparams`` from ``seed``; never raises.

    See the module docstring for the loop, the outcomes and the divergence rule.

    Args:
        task: A registered task name, or a :class:`Task` instance (then ``data_dir``
            and ``task_options`` are ignored).
        optimizer: A registered optimizer name or a ``"package.module:Class"`` string.
        hparams: Hyperparameters by shared name (missing ones take the defaults).
        seed: Fixes model initialisation, data order, augmentation and dropout.
        budget: Epochs and an optional cap on steps per epoch (``None``: the task's
            default budget).
        report: Called with each epoch's metrics, epoch 0 first; returning True stops
            the run as ``pruned``.
        loss_factor: Divergence when a step's loss exceeds this many times the initial
            loss (``math.inf``: only non-finite losses count).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; ``None``: CUDA when available.
        data_dir: Data folder for tasks that read files.
        task_options: Task options overriding the task's defaults.
        should_stop: Polled in the batch loop at most every ``STOP_POLL_S`` seconds;
            True stops the run as ``pruned`` (a cancellation that need not wait for the
            epoch's end). Keep it cheap.
        schedule: The learning-rate schedule (``None``: constant); ``hparams["lr"]`` is its
            peak. A non-constant schedule needs ``budget.steps_per_epoch``.

    Returns:
        The result. Exceptions (including invalid arguments) become ``failed``.
    """
    start = time.perf_counter()
    run = _Run()
    outcome, error, diverged_at = Outcome.COMPLETE, None, None
    try:
        run.train(
            task,
            optimizer,
            hparams,
            seed,
            budget,
            report,
            loss_factor,
            device,
            data_dir,
            task_options,
            should_stop,
            schedule,
        )
    except _Diverged as stop:
        outcome, diverged_at = Outcome.DIVERGED, stop.step
    except _Pruned:
        outcome = Outcome.PRUNED
    except Exception as exc:
        try:  # a divergence the periodic check had not seen yet explains the failure
            if run.log is not None:
                run.log.flush()
        except _Diverged as stop:
            outcome, diverged_at = Outcome.DIVERGED, stop.step
        except Exception:
            logger.debug("flushing the step log after a failure failed", exc_info=True)
        if outcome is not Outcome.DIVERGED:
            outcome = Outcome.FAILED
            # what is stored and served: the type and message; the traceback (with this
            # machine's paths) goes to the worker's log only
            error = f"{type(exc).__name__}: {exc}"[:_ERROR_LIMIT]
            logger.exception("trial failed: task=%s optimizer=%s seed=%s", task, optimizer, seed)
    last = run.epochs[-1].metrics if run.epochs else {}
    result = TrialResult(
        outcome=outcome,
        metrics=dict(last),
        initial_metrics=dict(run.epochs[0].metrics) if run.epochs else {},
        epochs=tuple(run.epochs),
        diverged_at_step=diverged_at,
        effective_lr=run.log.ratio_stats() if run.log is not None else {},
        wall_time_s=time.perf_counter() - start,
        error=error,
        device=run.device,
    )
    logger.info(
        "trial %s: task=%s optimizer=%s seed=%s steps=%s %.2fs",
        outcome,
        task if isinstance(task, str) else task.name,
        optimizer,
        seed,
        run.log.step if run.log is not None else 0,
        result.wall_time_s,
    )
    return result
