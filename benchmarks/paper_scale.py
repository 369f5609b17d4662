"""Per-step time, FLOPs and a GPU-hour estimate of each paper-scale study definition.

    .venv/bin/python benchmarks/paper_scale.py [definitions ...] [--device cpu|cuda]
        [--steps 3] [--max-seconds 30] [--gpu-tflops 50] [--gpu-floor-ms 5]

For each definition (default: the four under ``studies/definitions/`` named in
``DEFINITIONS``), the task is built with the definition's own options on generated data
files in the real formats and the real sizes that matter for cost (CIFAR-10 images, a
WikiText-2 vocabulary of 33,278 words, GPT-2 token ids below 50,257), then:

1. the FLOPs of one training step (forward + backward) are counted with
   ``torch.utils.flop_counter.FlopCounterMode``, on the ``meta`` device (no compute) where
   the task allows it;
2. ``--steps`` AdamW steps are timed on ``--device`` after one warm-up step;
3. steps per trial (epochs x steps per epoch on the real dataset's size) and trials per
   study (every cell's planned trials plus confirmation runs) give the study's steps, and
   with the measured step time its ``device-h`` (training steps on ``--device``, in series).

The GPU-hour column is an estimate, not a measurement: per step, the larger of FLOPs /
``--gpu-tflops`` (sustained throughput, an assumption) and ``--gpu-floor-ms`` (kernel
launches bound small models), times the study's steps. Training steps only: evaluation
passes add a few percent. On a machine with CUDA, ``--device cuda`` measures instead.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studies.confirmation import n_confirmation
from studies.plan import n_planned
from studies.spec import StudySpec, load_spec
from tests.workers import datafiles
from workers.optimizers.groups import param_groups
from workers.tasks.base import Task
from workers.tasks.registry import create_task

ROOT = Path(__file__).resolve().parents[1]
DEFINITIONS = ["cifar10", "wikitext2", "hypergrid", "gpt2"]
CIFAR_TRAIN = 50_000  # the real training split (before the validation hold-out)
WIKITEXT2_TRAIN_TOKENS = 2_088_628  # wiki.train.tokens of wikitext-2-v1, <eos> included
WIKITEXT2_VOCAB = 33_278
GPT2_VOCAB = 50_257


@dataclass
class Row:
    """One definition's measurements and estimate."""

    name: str
    task: str
    params: int
    step_ms: float
    gflop_per_step: float
    steps_per_trial: int
    trials: int
    device_hours: float
    gpu_hours: float


def write_wikitext2(folder: Path, n_tokens: int = 120_000, seed: int = 0) -> Path:
    """WikiText-2 files whose training split has the real vocabulary size."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(WIKITEXT2_VOCAB - 2)]  # + <eos>, <unk>
    words = vocab + [rng.choice(vocab) for _ in range(n_tokens - len(vocab))]
    rng.shuffle(words)
    lines = [" ".join(words[i : i + 100]) for i in range(0, len(words), 100)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wiki.train.tokens").write_text("\n".join(lines) + "\n")
    for split in ("valid", "test"):
        (folder / f"wiki.{split}.tokens").write_text("\n".join(lines[:20]) + "\n")
    return folder


def make_task(spec: StudySpec, tmp: Path) -> tuple[Task, int]:
    """The definition's first task on generated files, and its steps per epoch at real size."""
    task_spec = spec.tasks[0]
    name, options = task_spec.name, dict(task_spec.options)
    data_dir: str | None = None
    if name == "cifar10_cnn":
        data_dir = str(datafiles.write_cifar10(tmp / name, n_per_batch=300))
        options["eval_size"] = 100
    elif name == "wikitext2_lm":
        data_dir = str(write_wikitext2(tmp / name))
        options["eval_tokens"] = 1024
    elif name == "gpt_pretrain":
        tokens = int(options.get("block_size", 1024)) * int(options.get("batch_size", 8)) * 4
        data_dir = str(
            datafiles.write_token_shards(tmp / name, tokens_per_shard=tokens, vocab_size=GPT2_VOCAB)
        )
        options["eval_tokens"] = int(options.get("block_size", 1024)) * 2
    task = create_task(name, data_dir, **options)
    opts: dict[str, Any] = getattr(task, "opts", options)
    per_epoch = task_spec.budget.steps_per_epoch
    if per_epoch is None:
        if name == "cifar10_cnn":
            n_train = CIFAR_TRAIN - round(float(opts["val_fraction"]) * CIFAR_TRAIN)
            per_epoch = n_train // int(opts["batch_size"])
        elif name == "wikitext2_lm":
            windows = (WIKITEXT2_TRAIN_TOKENS - 1) // int(opts["block_size"])
            per_epoch = windows // int(opts["batch_size"])
        elif name == "gpt_pretrain":
            per_epoch = int(opts["steps_per_epoch"])
        else:
            per_epoch = sum(1 for _ in task.train_batches(0, 1))
    return task, int(per_epoch)


def step_flops(task: Task) -> int:
    """FLOPs of one forward + backward pass: on the meta device (no compute) where the task
    allows it, else on the CPU (tasks with data-dependent control flow, e.g. GFlowNet
    sampling that stops when every trajectory has ended)."""
    batch = next(iter(task.train_batches(0, 1)))
    for device in (torch.device("meta"), torch.device("cpu")):
        model = task.build_model(0).to(device)
        model.train()
        counter = FlopCounterMode(display=False)
        try:
            with counter:
                task.loss(model, task.to_device(batch, device)).backward()
        except (RuntimeError, NotImplementedError):
            if device.type == "meta":
                continue
            raise
        return int(counter.get_total_flops())
    raise AssertionError("unreachable")


def step_seconds(
    task: Task, device: torch.device, steps: int, max_seconds: float
) -> tuple[float, int]:
    """Median seconds of one AdamW step after a warm-up step; the parameter count.

    Times ``steps`` steps, or fewer (at least one) once ``max_seconds`` have been spent.
    """
    model = task.build_model(0).to(device)
    model.train()
    opt = torch.optim.AdamW(param_groups(model, 1e-4), lr=1e-4)
    batches = iter(task.train_batches(0, 1))
    times: list[float] = []
    for i in range(steps + 1):
        if len(times) >= 1 and sum(times) > max_seconds:
            break
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(task.train_batches(0, i + 2))
            batch = next(batches)
        start = time.perf_counter()
        loss = task.loss(model, task.to_device(batch, device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - start)
    return float(np.median(times)), sum(p.numel() for p in model.parameters())


def study_trials(spec: StudySpec) -> int:
    """Planned trials of every cell plus the confirmation runs (one per cell and seed)."""
    planned = sum(n_planned(spec, opt.key) for opt in spec.optimizers) * len(spec.tasks)
    return planned + n_confirmation(spec, len(spec.tasks) * len(spec.optimizers))


def measure(
    path: Path, device: torch.device, steps: int, max_seconds: float, tflops: float, floor_ms: float
) -> Row:
    """Build, count, time and estimate one definition."""
    spec = load_spec(path)
    with tempfile.TemporaryDirectory() as tmp:
        task, per_epoch = make_task(spec, Path(tmp))
        flops = step_flops(task)
        seconds, params = step_seconds(task, device, steps, max_seconds)
    steps_per_trial = spec.tasks[0].budget.epochs * per_epoch
    trials = study_trials(spec)
    gpu_step_s = max(flops / (tflops * 1e12), floor_ms / 1e3)
    return Row(
        path.stem,
        spec.tasks[0].name,
        params,
        seconds * 1e3,
        flops / 1e9,
        steps_per_trial,
        trials,
        seconds * steps_per_trial * trials / 3600,
        gpu_step_s * steps_per_trial * trials / 3600,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("definitions", nargs="*", help="definition files (default: the four)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="timing budget each")
    parser.add_argument("--gpu-tflops", type=float, default=50.0)
    parser.add_argument("--gpu-floor-ms", type=float, default=5.0)
    args = parser.parse_args()
    if not math.isfinite(args.gpu_tflops) or args.gpu_tflops <= 0:
        parser.error("--gpu-tflops must be a positive number")
    paths = [Path(p) for p in args.definitions] or [
        ROOT / "studies" / "definitions" / f"{n}.yaml" for n in DEFINITIONS
    ]
    device = torch.device(args.device)
    print(
        f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads; "
        f"GPU estimate at {args.gpu_tflops:g} TFLOP/s sustained, floor {args.gpu_floor_ms:g} ms"
    )
    print(
        f"{'definition':<10} {'task':<19} {'params':>11} {'ms/step':>9} {'GFLOP/step':>11} "
        f"{'steps/trial':>11} {'trials':>6} {'device-h':>9} {'est. GPU-h':>10}"
    )
    for path in paths:
        r = measure(path, device, args.steps, args.max_seconds, args.gpu_tflops, args.gpu_floor_ms)
        print(
            f"{r.name:<10} {r.task:<19} {r.params:>11,} {r.step_ms:>9.1f} "
            f"{r.gflop_per_step:>11.2f} {r.steps_per_trial:>11,} {r.trials:>6} "
            f"{r.device_hours:>9.1f} {r.gpu_hours:>10.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
