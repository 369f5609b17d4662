"""Every registered optimizer trains ``quadratic`` and ``digits_cnn`` through ``run_trial``.

Parametrised over the registry, so a new entry is tested for free (at its default
learning rate unless a sensible one is listed here).
"""

from __future__ import annotations

import pytest
import torch

from labcore.budget import Budget
from workers.optimizers.registry import list_optimizers
from workers.trial import run_trial

OPTIMIZERS = list_optimizers()

# Sensible learning rates per (task, optimizer); sign-based Lion wants a smaller one.
# RAdam's first steps are un-adapted momentum SGD (its warm-up), hence its larger rate.
LR = {
    "quadratic": {"sgd": 0.5, "adagrad": 0.5, "rmsprop": 0.01, "lion": 0.03, "radam": 0.3},
    "digits_cnn": {"sgd": 0.1, "adagrad": 0.05, "rmsprop": 1e-3, "lion": 1e-3, "radam": 0.03},
}
DEFAULT_LR = {"quadratic": 0.1, "digits_cnn": 3e-3}
BUDGET = {"quadratic": Budget(epochs=2, steps_per_epoch=10), "digits_cnn": Budget(2, 12)}
# Required improvement of val_loss over its initial value (final <= factor * initial).
FACTOR = {"quadratic": 0.5, "digits_cnn": 0.9}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("task", ["quadratic", "digits_cnn"])
@pytest.mark.parametrize("opt", OPTIMIZERS, ids=lambda o: o.name)
def test_optimizer_trains_task(task: str, opt) -> None:
    lr = LR[task].get(opt.name, DEFAULT_LR[task])
    result = run_trial(task, opt.name, {"lr": lr}, seed=0, budget=BUDGET[task], device="cpu")
    assert result.outcome == "complete", result.error
    start, end = result.initial_metrics["val_loss"], result.metrics["val_loss"]
    assert end <= FACTOR[task] * start, (opt.name, start, end)
    if opt.name == "vradam":
        assert result.effective_lr and 0 < result.effective_lr["min"] <= 1.0
    else:
        assert result.effective_lr == {}
