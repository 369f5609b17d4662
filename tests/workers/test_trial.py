"""run_trial: outcomes, determinism, divergence, pruning, VRAdam's effective LR."""

from __future__ import annotations

import itertools
import json
import math
import time
from typing import ClassVar

import pytest
import torch
from torch import nn

import workers.trial as trial_module
from labcore.budget import Budget
from labcore.outcomes import Outcome
from labcore.results import EpochMetrics, TrialResult
from workers.tasks.digits import DigitsCNN, DigitsCNNTask
from workers.tasks.quadratic import QuadraticTask
from workers.trial import run_trial

Q = Budget(epochs=2, steps_per_epoch=10)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class DropoutDigits(DigitsCNNTask):
    """Digits with input dropout: the global RNG matters, so seeding is tested."""

    def build_model(self, seed: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return nn.Sequential(nn.Dropout(0.3), DigitsCNN(8))


class ExplodingQuadratic(QuadraticTask):
    """Raises from ``loss`` once the point is no longer finite (a task that crashes on NaN)."""

    def loss(self, model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        if not torch.isfinite(model.x).all():
            raise RuntimeError("cannot sample from a non-finite model")
        return super().loss(model, batch)


class FailingQuadratic(QuadraticTask):
    """Raises at the given call of ``loss``."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.calls, self.fail_at = 0, fail_at

    def loss(self, model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.fail_at:
            raise ValueError("boom in loss")
        return super().loss(model, batch)


class NaNEvalQuadratic(QuadraticTask):
    """Evaluation turns NaN from the given call on (e.g. broken batch-norm statistics)."""

    def __init__(self, nan_from: int) -> None:
        super().__init__()
        self.calls, self.nan_from = 0, nan_from

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        self.calls += 1
        return {"loss": math.nan} if self.calls >= self.nan_from else super().evaluate(model, split)


def test_same_seed_same_metrics_different_seed_different() -> None:
    task = DropoutDigits()
    budget = Budget(epochs=2, steps_per_epoch=5)
    a = run_trial(task, "adamw", {"lr": 3e-3}, seed=3, budget=budget)
    b = run_trial(task, "adamw", {"lr": 3e-3}, seed=3, budget=budget)
    c = run_trial(task, "adamw", {"lr": 3e-3}, seed=4, budget=budget)
    assert a.outcome == b.outcome == c.outcome == Outcome.COMPLETE
    assert a.epochs == b.epochs and a.metrics == b.metrics
    assert a.metrics != c.metrics and a.initial_metrics != c.initial_metrics


def test_result_shape_and_json_round_trip() -> None:
    seen: list[EpochMetrics] = []
    result = run_trial("quadratic", "adamw", {"lr": 0.1}, seed=0, budget=Q, report=seen.append)
    assert result.outcome == "complete" and result.error is None and result.device == "cpu"
    assert [e.epoch for e in result.epochs] == [0, 1, 2]
    assert [e.step for e in result.epochs] == [0, 10, 20]
    assert list(seen) == list(result.epochs)
    assert result.metrics == result.epochs[-1].metrics
    assert result.initial_metrics == result.epochs[0].metrics
    assert set(result.metrics) == {"train_loss", "val_loss", "test_loss"}
    assert result.metrics["val_loss"] < result.initial_metrics["val_loss"]
    assert result.diverged_at_step is None and result.effective_lr == {}
    assert 0 < result.wall_time_s < 30
    assert TrialResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_epoch_zero_train_loss_is_the_first_batch_loss_at_init() -> None:
    task = QuadraticTask()
    result = run_trial(task, "adamw", {"lr": 0.1}, seed=5, budget=Q)
    first = next(iter(task.train_batches(5, 1)))
    expected = float(task.loss(task.build_model(5), first).detach())
    assert result.epochs[0].metrics["train_loss"] == expected


def test_sgd_at_lr_100_diverges_at_step_2_on_the_quadratic() -> None:
    # Step 1 multiplies the top-curvature error by |1 - 1.9 * 100|: step 2's loss explodes.
    result = run_trial("quadratic", "sgd", {"lr": 100.0}, seed=0, budget=Q)
    assert result.outcome == Outcome.DIVERGED and result.diverged_at_step == 2
    assert [e.epoch for e in result.epochs] == [0]
    assert result.metrics == result.initial_metrics  # the last finite evaluation
    assert result.error is None


def test_sgd_at_lr_100_diverges_quickly_on_digits() -> None:
    result = run_trial("digits_cnn", "sgd", {"lr": 100.0}, seed=0, budget=Budget(3))
    assert result.outcome == Outcome.DIVERGED
    assert result.diverged_at_step is not None and result.diverged_at_step <= 5
    assert result.wall_time_s < 10


def test_loss_factor_rule_stops_at_the_exact_step() -> None:
    """SGD just above the stability limit (lr 2.5 > 2 / λ_max): the loss grows ~2.25x a step."""
    task = QuadraticTask(noise=0.0)
    hparams = {"lr": 2.5, "momentum": 0.0, "nesterov": False}
    result = run_trial(task, "sgd", hparams, seed=0, budget=Q, loss_factor=10.0)
    # hand-written reference: the first step whose loss exceeds 10 x the first loss
    model = task.build_model(0)
    opt = torch.optim.SGD(model.parameters(), lr=2.5)
    expected, initial = None, None
    for step, batch in enumerate(
        (b for epoch in (1, 2) for b in list(task.train_batches(0, epoch))[:10]), start=1
    ):
        loss = task.loss(model, batch)
        initial = initial if initial is not None else float(loss.detach())
        if float(loss.detach()) > 10 * initial:
            expected = step
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert expected is not None and 2 < expected <= 20
    assert result.outcome == Outcome.DIVERGED and result.diverged_at_step == expected
    no_limit = run_trial(task, "sgd", hparams, seed=0, budget=Q, loss_factor=math.inf)
    assert no_limit.outcome == Outcome.COMPLETE
    assert no_limit.metrics["val_loss"] > 10 * no_limit.initial_metrics["val_loss"]


def test_windowed_checks_attribute_the_exact_step(monkeypatch) -> None:
    """The accelerator path (loss reads every N steps), exercised on CPU."""
    monkeypatch.setattr(trial_module, "_check_window", lambda device: 4)
    result = run_trial("quadratic", "sgd", {"lr": 100.0}, seed=0, budget=Q)
    assert result.outcome == Outcome.DIVERGED and result.diverged_at_step == 2
    assert result.metrics == result.initial_metrics
    ok = run_trial("quadratic", "vradam", {"lr": 0.1}, seed=0, budget=Budget(2, 10))
    assert ok.outcome == Outcome.COMPLETE and ok.effective_lr
    monkeypatch.undo()
    ref = run_trial("quadratic", "vradam", {"lr": 0.1}, seed=0, budget=Budget(2, 10))
    assert ok.metrics == ref.metrics and ok.epochs == ref.epochs
    for key in ("mean", "min", "max", "final"):
        assert ok.effective_lr[key] == pytest.approx(ref.effective_lr[key], rel=1e-6)


def test_exception_after_an_unseen_divergence_is_a_divergence(monkeypatch) -> None:
    monkeypatch.setattr(trial_module, "_check_window", lambda device: 8)
    hparams = {"lr": 1e30, "momentum": 0.0, "nesterov": False}
    result = run_trial(ExplodingQuadratic(), "sgd", hparams, seed=0, budget=Q)
    assert result.outcome == Outcome.DIVERGED and result.diverged_at_step == 2
    assert result.error is None


def test_non_finite_evaluation_is_a_divergence_at_the_epoch_end() -> None:
    # calls: epoch 0 val+test (1, 2), epoch 1 (3, 4), epoch 2 (5, ...) -> NaN at epoch 2
    result = run_trial(NaNEvalQuadratic(nan_from=5), "adamw", {"lr": 0.1}, seed=0, budget=Q)
    assert result.outcome == Outcome.DIVERGED and result.diverged_at_step == 20
    assert [e.epoch for e in result.epochs] == [0, 1]
    assert result.metrics == result.epochs[1].metrics


def test_exception_becomes_failed_with_error_text(caplog) -> None:
    result = run_trial(FailingQuadratic(fail_at=4), "adamw", {"lr": 0.1}, seed=0, budget=Q)
    assert result.outcome == Outcome.FAILED
    assert result.error.startswith("ValueError: boom in loss")
    # type and message only: the traceback (with this machine's paths) goes to the log
    assert result.error == "ValueError: boom in loss" and "Traceback" not in result.error
    assert [e.epoch for e in result.epochs] == [0]
    assert result.metrics == result.initial_metrics and result.diverged_at_step is None
    assert "trial failed" in caplog.text and "Traceback" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"optimizer": "nope"}, "NotFoundError: unknown optimizer 'nope'"),
        ({"task": "nope"}, "NotFoundError: unknown task 'nope'"),
        ({"hparams": {"lr": -1.0}}, "SpecError: hparams.lr"),
        ({"budget": Budget(epochs=0)}, "SpecError: budget.epochs"),
        ({"task_options": {"dim": "x"}}, "SpecError: options.dim"),
    ],
)
def test_bad_configuration_fails_without_raising(kwargs: dict, message: str) -> None:
    args = {"task": "quadratic", "optimizer": "adamw", "hparams": {"lr": 0.1}, **kwargs}
    result = run_trial(args.pop("task"), args.pop("optimizer"), args.pop("hparams"), 0, **args)
    assert result.outcome == Outcome.FAILED and result.error.startswith(message)
    assert result.epochs == () and result.metrics == {}


def test_non_finite_initial_loss_fails() -> None:
    class NaNStart(QuadraticTask):
        def build_model(self, seed: int) -> nn.Module:
            model = super().build_model(seed)
            with torch.no_grad():
                model.curvature[0] = math.inf
            return model

    result = run_trial(NaNStart(), "adamw", {"lr": 0.1}, seed=0, budget=Q)
    assert result.outcome == Outcome.FAILED and "initialisation" in result.error


def test_reporter_true_prunes_and_can_cancel_before_training() -> None:
    seen: list[int] = []

    def prune_after_first(epoch: EpochMetrics) -> bool:
        seen.append(epoch.epoch)
        return epoch.epoch == 1

    result = run_trial(
        "quadratic", "adamw", {"lr": 0.1}, seed=0, budget=Q, report=prune_after_first
    )
    assert result.outcome == Outcome.PRUNED and seen == [0, 1]
    assert result.metrics == result.epochs[1].metrics

    task = FailingQuadratic(fail_at=2)  # a second loss call would fail: none may happen
    cancelled = run_trial(task, "adamw", {"lr": 0.1}, seed=0, budget=Q, report=lambda e: True)
    assert cancelled.outcome == Outcome.PRUNED and [e.epoch for e in cancelled.epochs] == [0]
    assert task.calls == 1


class SlowQuadratic(QuadraticTask):
    """10 ms per training step: with thousands of steps, one epoch takes minutes."""

    def loss(self, model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        time.sleep(0.01)
        return super().loss(model, batch)


def test_should_stop_is_polled_inside_an_epoch() -> None:
    task = SlowQuadratic(steps_per_epoch=6000)  # a 60 s epoch
    polls: list[float] = []

    def should_stop() -> bool:  # turns True 0.6 s after training started
        polls.append(time.monotonic())
        return polls[-1] >= polls[0] + 0.6

    result = run_trial(
        task, "adamw", {"lr": 0.1}, seed=0, budget=Budget(epochs=2), should_stop=should_stop
    )
    late = time.monotonic() - (polls[0] + 0.6)
    assert result.outcome == Outcome.PRUNED and [e.epoch for e in result.epochs] == [0]
    assert late < 1.0  # stopped mid-epoch, within about a second (timing: 2 shared cores)
    assert 2 <= len(polls) <= 5  # polled about every 0.5 s, not every step
    assert all(b - a >= 0.45 for a, b in itertools.pairwise(polls))


def test_reporter_exception_fails_the_trial() -> None:
    def broken(epoch: EpochMetrics) -> bool:
        raise KeyError("reporter lost its store")

    result = run_trial("quadratic", "adamw", {"lr": 0.1}, seed=0, budget=Q, report=broken)
    assert result.outcome == Outcome.FAILED and "reporter lost its store" in result.error


def test_vradam_effective_lr_statistics() -> None:
    hp = {"lr": 0.1, "beta3": 1.0, "alpha1": 4.0}
    result = run_trial("quadratic", "vradam", hp, seed=0, budget=Q)
    stats = result.effective_lr
    assert set(stats) == {"mean", "min", "max", "final"}
    assert 1 / (1 + 4.0) - 1e-6 <= stats["min"] <= stats["mean"] <= stats["max"] <= 1.0 + 1e-6
    assert stats["min"] < stats["max"]  # the gate moved
    ratios = [e.effective_lr_ratio for e in result.epochs]
    assert ratios[0] is None and all(0 < r <= 1 for r in ratios[1:])
    # equal steps per epoch: the mean of the epoch means is the overall mean
    assert sum(ratios[1:]) / 2 == pytest.approx(stats["mean"])
    # beta3 = 0 is AdamW: the gate stays open, and the trajectory equals AdamW's
    plain = run_trial("quadratic", "vradam", {"lr": 0.1, "beta3": 0.0}, seed=0, budget=Q)
    assert plain.effective_lr == pytest.approx({"mean": 1, "min": 1, "max": 1, "final": 1})
    adamw = run_trial("quadratic", "adamw", {"lr": 0.1}, seed=0, budget=Q)
    assert plain.metrics["val_loss"] == pytest.approx(adamw.metrics["val_loss"], rel=1e-5)
    assert adamw.effective_lr == {} and all(e.effective_lr_ratio is None for e in adamw.epochs)


def test_user_optimizer_by_import_string_matches_the_registered_one() -> None:
    user = run_trial("quadratic", "torch.optim:SGD", {"lr": 0.1}, seed=0, budget=Q)
    registered = run_trial(
        "quadratic", "sgd", {"lr": 0.1, "momentum": 0.0, "nesterov": False}, seed=0, budget=Q
    )
    assert user.outcome == Outcome.COMPLETE and user.metrics == registered.metrics


def test_lion_runs_through_run_trial() -> None:
    result = run_trial("quadratic", "lion", {"lr": 0.03, "weight_decay": 0.1}, seed=0, budget=Q)
    assert result.outcome == Outcome.COMPLETE
    assert result.metrics["val_loss"] < result.initial_metrics["val_loss"]


def test_step_log_window_reads_in_batches() -> None:
    log = trial_module._StepLog(window=4, loss_factor=10.0)
    log.set_initial(1.0)
    for value in (1.0, 2.0, 3.0):
        log.add_loss(torch.tensor(value))
    assert log.losses == []  # nothing read yet
    with pytest.raises(trial_module._Diverged) as stop:
        log.add_loss(torch.tensor(11.0))  # the 4th value triggers the read
    assert stop.value.step == 4 and log.losses == [1.0, 2.0, 3.0]


class RecordingSGD(torch.optim.SGD):
    """SGD that records each step's learning rate (for the schedule test)."""

    seen: ClassVar[list[float]] = []

    def step(self, closure=None):  # type: ignore[no-untyped-def]
        RecordingSGD.seen.append(self.param_groups[0]["lr"])
        return super().step(closure)


def test_a_schedule_sets_every_steps_learning_rate() -> None:
    from labcore.schedule import Schedule

    RecordingSGD.seen = []
    schedule = Schedule("warmup_cosine", warmup_fraction=0.25, final_factor=0.0)
    result = run_trial(
        "quadratic",
        f"{__name__}:RecordingSGD",
        {"lr": 0.01},
        0,
        Budget(epochs=2, steps_per_epoch=4),
        schedule=schedule.to_dict(),  # as a request read from JSON carries it
    )
    assert result.outcome == Outcome.COMPLETE, result.error
    expected = [0.01 * schedule.factor(k, 8) for k in range(1, 9)]
    assert RecordingSGD.seen == pytest.approx(expected)
    assert RecordingSGD.seen[1] == pytest.approx(0.01) and RecordingSGD.seen[-1] == 0.0


def test_a_schedule_without_a_step_count_fails_naming_the_field() -> None:
    result = run_trial(
        "quadratic", "adamw", {"lr": 0.01}, 0, Budget(epochs=1), schedule={"name": "warmup_cosine"}
    )
    assert result.outcome == Outcome.FAILED and "budget.steps_per_epoch" in (result.error or "")
