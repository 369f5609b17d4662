"""Steps per second of every registered task, and the overhead of ``run_trial``.

    .venv/bin/python benchmarks/tasks.py [--tasks quadratic digits_cnn ...] [--repeats 7]
        [--threads N] [--device cpu|cuda] [--seconds 1.5]

1. Throughput: for each task (default options; tasks that read files get tiny generated
   files in the real formats from ``tests/workers/datafiles.py``), a plain
   AdamW loop is timed for about ``--seconds`` after two warm-up steps.
2. Overhead: ``run_trial`` against a hand-written loop doing the same work (same task
   object, model, AdamW over the same parameter groups, the same evaluations at
   initialisation and after each epoch, the loss read every step as a typical loop's
   ``loss.item()`` does). The two alternate, ``--repeats`` times each; the median of the
   per-pair ratios and the ratio of the fastest runs are printed (target <= 1.05).

Timings on a shared machine are noisy: compare medians, run again when in doubt.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labcore.budget import Budget
from workers.optimizers.groups import param_groups
from workers.tasks.base import Task
from workers.tasks.registry import create_task, list_tasks
from workers.trial import run_trial

# Files for the tasks that need data, and options that match the tiny files.
WRITERS = {
    "cifar10_cnn": ("write_cifar10", {}),
    "wikitext2_lm": ("write_wikitext2", {}),
    "gpt_pretrain": ("write_token_shards", {"vocab_size": 64}),
}
# Budgets for the overhead comparison: a few seconds per run on 2 CPU cores.
OVERHEAD_BUDGET = {
    "quadratic": Budget(epochs=10),
    "digits_cnn": Budget(epochs=3),
    "digits_diffusion": Budget(epochs=2),
    "hypergrid_gflownet": Budget(epochs=2),
    "stdlib_char_lm": Budget(epochs=2, steps_per_epoch=15),
}
LR = 1e-3


def make_task(name: str, tmp: Path) -> Task | None:
    info = next(t for t in list_tasks() if t.name == name)
    options: dict[str, Any] = {}
    data_dir = None
    if info.needs_data:
        datafiles = importlib.import_module("tests.workers.datafiles")
        writer, options = WRITERS[name]
        data_dir = str(getattr(datafiles, writer)(tmp / name))
    return create_task(name, data_dir, **options)


def steps_per_second(task: Task, device: torch.device, seconds: float) -> tuple[float, int]:
    model = task.build_model(0).to(device)
    opt = torch.optim.AdamW(param_groups(model, 0.01), lr=LR)
    batches = (b for epoch in itertools.count(1) for b in task.train_batches(0, epoch))
    model.train()

    def step() -> None:
        loss = task.loss(model, task.to_device(next(batches), device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        n += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start), sum(p.numel() for p in model.parameters())


def hand_loop(task: Task, budget: Budget, device: torch.device) -> float:
    """What a user would write: the reference for run_trial's overhead."""
    start = time.perf_counter()
    torch.manual_seed(0)
    model = task.build_model(0).to(device)
    opt = torch.optim.AdamW(param_groups(model, 0.01), lr=LR)

    def evaluate() -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            out = {
                f"{s}_{k}": v for s in ("val", "test") for k, v in task.evaluate(model, s).items()
            }
        model.train()
        return out

    history = [evaluate()]
    model.train()
    for epoch in range(1, budget.epochs + 1):
        total, n = 0.0, 0
        for i, batch in enumerate(task.train_batches(0, epoch)):
            if budget.steps_per_epoch is not None and i >= budget.steps_per_epoch:
                break
            loss = task.loss(model, task.to_device(batch, device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
            n += 1
        history.append({"train_loss": total / n, **evaluate()})
    return time.perf_counter() - start


def trial_loop(task: Task, budget: Budget, device: torch.device) -> float:
    start = time.perf_counter()
    result = run_trial(task, "adamw", {"lr": LR}, seed=0, budget=budget, device=device.type)
    assert result.outcome == "complete", result.error
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="*", default=[t.name for t in list_tasks()])
    parser.add_argument("--overhead-tasks", nargs="*", default=list(OVERHEAD_BUDGET))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads")

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tasks = {name: make_task(name, tmp) for name in args.tasks}
        print(f"\n{'task':<20} {'params':>10} {'steps/s':>9} {'ms/step':>9}")
        for name, task in tasks.items():
            if task is None:
                continue
            rate, n_params = steps_per_second(task, device, args.seconds)
            print(f"{name:<20} {n_params:>10,} {rate:>9.1f} {1000 / rate:>9.2f}")

        print(f"\nrun_trial vs a hand-written loop ({args.repeats} alternating runs, median)")
        print("(ratio: median of per-pair ratios; min ratio: fastest run_trial / fastest loop)")
        header = ("task", "budget", "hand s", "trial s", "ratio", "min ratio")
        print("{:<20} {:<10} {:>8} {:>8} {:>7} {:>9}".format(*header))
        for name in args.overhead_tasks:
            task = tasks.get(name) or make_task(name, tmp)
            if task is None:
                continue
            budget = OVERHEAD_BUDGET.get(name, task.default_budget)
            trial_loop(task, budget, device)  # warm-up (imports, caches)
            hand_loop(task, budget, device)
            hand, trial, ratios = [], [], []
            for _ in range(args.repeats):
                h, t = hand_loop(task, budget, device), trial_loop(task, budget, device)
                hand.append(h)
                trial.append(t)
                ratios.append(t / h)
            shape = f"{budget.epochs}x{budget.steps_per_epoch or 'all'}"
            print(
                f"{name:<20} {shape:<10} {statistics.median(hand):>8.3f} "
                f"{statistics.median(trial):>8.3f} {statistics.median(ratios):>7.3f} "
                f"{min(trial) / min(hand):>9.3f}"
            )


if __name__ == "__main__":
    main()
