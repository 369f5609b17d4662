"""One conformance suite run over every registered task (a new entry is tested for free).

Tasks that read data files get tiny files in the real formats, written by
``tests/workers/datafiles.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from labcore.budget import Budget
from tests.workers import datafiles
from workers.tasks.base import Task, TaskInfo
from workers.tasks.registry import create_task, list_tasks
from workers.trial import run_trial

TASK_NAMES = [t.name for t in list_tasks()]


@dataclass(frozen=True)
class Smoke:
    """How a task is smoke-tested: AdamW's lr, a budget, options for speed, data."""

    lr: float = 3e-3
    budget: Budget = field(default_factory=lambda: Budget(epochs=2, steps_per_epoch=5))
    options: dict[str, Any] = field(default_factory=dict)
    writer: str | None = None  # datafiles function writing the task's files


SMOKE = {
    "quadratic": Smoke(lr=0.1, budget=Budget(epochs=2, steps_per_epoch=10)),
    "digits_cnn": Smoke(budget=Budget(epochs=2, steps_per_epoch=8)),
    "digits_diffusion": Smoke(lr=1e-3, options={"hidden": 64, "depth": 2}),
    # log Z starts at 0 (true value ~3.1) and shares the one lr: it needs a large one.
    "hypergrid_gflownet": Smoke(
        lr=0.1,
        budget=Budget(epochs=2, steps_per_epoch=10),
        options={"eval_trajectories": 128},
    ),
    "cifar10_cnn": Smoke(
        lr=1e-3,
        budget=Budget(epochs=2, steps_per_epoch=3),
        options={"batch_size": 16, "width": 0.25, "eval_size": 32},
        writer="write_cifar10",
    ),
    "wikitext2_lm": Smoke(
        options={"batch_size": 8, "n_layer": 2, "n_embd": 32, "n_head": 2, "d_ff": 64},
        writer="write_wikitext2",
    ),
    "stdlib_char_lm": Smoke(options={"max_chars": 50_000, "batch_size": 8, "eval_tokens": 2048}),
    "gpt_pretrain": Smoke(options={"vocab_size": 64}, writer="write_token_shards"),
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The machine is shared: one intra-op thread keeps these tests fast and steady."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {}


@pytest.fixture(params=TASK_NAMES)
def case(request, data_dirs, tmp_path_factory) -> tuple[TaskInfo, Smoke, str | None]:
    info = next(t for t in list_tasks() if t.name == request.param)
    smoke = SMOKE.get(info.name, Smoke())
    data_dir = None
    if info.needs_data:
        if smoke.writer is None:
            pytest.fail(f"{info.name} needs data: add its datafiles writer to SMOKE")
        if info.name not in data_dirs:
            folder = tmp_path_factory.mktemp(info.name)
            data_dirs[info.name] = str(getattr(datafiles, smoke.writer)(Path(folder)))
        data_dir = data_dirs[info.name]
    return info, smoke, data_dir


@pytest.fixture
def task(case) -> Task:
    info, smoke, data_dir = case
    return create_task(info.name, data_dir, **smoke.options)


def _tensors(batch: Any) -> list[torch.Tensor]:
    if isinstance(batch, torch.Tensor):
        return [batch]
    if isinstance(batch, dict):
        return [t for k in sorted(batch) for t in _tensors(batch[k])]
    return [t for b in batch for t in _tensors(b)]


def _same(a: Any, b: Any) -> bool:
    ta, tb = _tensors(a), _tensors(b)
    return len(ta) == len(tb) and all(
        x.shape == y.shape and torch.equal(x, y) for x, y in zip(ta, tb, strict=True)
    )


def test_class_matches_its_registry_record(case, task) -> None:
    info, _, _ = case
    cls = type(task)
    assert cls.name == info.name
    assert tuple(cls.metrics) == info.metrics
    assert (cls.target_metric, cls.direction) == (info.target_metric, info.direction)
    assert cls.default_budget == info.default_budget
    defaults = getattr(cls, "DEFAULT_OPTIONS", None)
    if defaults is not None:
        assert dict(defaults) == dict(info.options)


def test_build_model_is_deterministic_in_the_seed(task) -> None:
    a, b, c = task.build_model(0), task.build_model(0), task.build_model(1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys() == sc.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    params = [n for n, p in a.named_parameters() if p.requires_grad]
    assert params, "the model has no trainable parameter"
    assert any(not torch.equal(sa[k], sc[k]) for k in params), "seed does not change init"


def test_train_batches_are_fixed_by_seed_and_epoch(task) -> None:
    first = next(iter(task.train_batches(0, 1)))
    again = next(iter(task.train_batches(0, 1)))
    assert _same(first, again)
    assert not _same(first, next(iter(task.train_batches(0, 2)))), "epochs repeat"
    assert not _same(first, next(iter(task.train_batches(1, 1)))), "seeds repeat"


def test_evaluate_reports_exactly_the_registered_metrics(case, task) -> None:
    info, _, _ = case
    model = task.build_model(0)
    loss = task.loss(model, next(iter(task.train_batches(0, 1))))
    assert loss.ndim == 0 and loss.requires_grad and math.isfinite(float(loss.detach()))
    names = {"train_loss"}
    for split in ("val", "test"):
        metrics = task.evaluate(model, split)
        assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
        assert task.evaluate(model, split) == metrics, "evaluation is not deterministic"
        names |= {f"{split}_{k}" for k in metrics}
    assert names == set(info.metrics)


def test_smoke_budget_trains_and_val_loss_falls(case, task) -> None:
    info, smoke, data_dir = case
    result = run_trial(
        info.name,
        "adamw",
        {"lr": smoke.lr},
        seed=0,
        budget=smoke.budget,
        device="cpu",
        data_dir=data_dir,
        task_options=smoke.options,
    )
    assert result.outcome == "complete", result.error
    assert set(result.metrics) == set(info.metrics)
    assert [e.epoch for e in result.epochs] == list(range(smoke.budget.epochs + 1))
    assert result.metrics["val_loss"] < result.initial_metrics["val_loss"]
