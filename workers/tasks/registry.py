"""The task registry: names → import strings and what a study needs to know.

Torch-free (records hold import strings), so the service and study validation can list
tasks, their metrics, budgets and options without importing a model. ``create_task``
imports the class on demand.

Each record's ``options`` and ``default_budget`` are the one source of a task's defaults:
the task classes read their ``DEFAULT_OPTIONS`` and ``default_budget`` from here. They are
sized for a quick CPU run; paper-scale settings are chosen in study definitions.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from labcore.budget import Budget
from labcore.errors import NotFoundError
from workers.tasks.base import TaskInfo

if TYPE_CHECKING:
    from workers.tasks.base import Task

__all__ = ["TASKS", "create_task", "get_task_info", "list_tasks"]

_LOSS = ("train_loss", "val_loss", "test_loss")
_ACC = ("train_loss", "val_loss", "val_acc", "test_loss", "test_acc")
_PPL = ("train_loss", "val_loss", "val_ppl", "test_loss", "test_ppl")


def _info(
    name: str,
    import_path: str,
    description: str,
    metrics: tuple[str, ...],
    budget: Budget,
    options: dict[str, Any],
    *,
    needs_data: bool = False,
    target_metric: str = "val_loss",
) -> TaskInfo:
    return TaskInfo(
        name=name,
        import_path=import_path,
        description=description,
        target_metric=target_metric,
        direction="minimize",
        metrics=metrics,
        default_budget=budget,
        needs_data=needs_data,
        options=options,
    )


TASKS: dict[str, TaskInfo] = {
    info.name: info
    for info in (
        _info(
            "quadratic",
            "workers.tasks.quadratic:QuadraticTask",
            "Ill-conditioned noisy quadratic with a known optimum (milliseconds; "
            "val/test loss = f(x) - f(x*))",
            _LOSS,
            Budget(epochs=10),
            {
                "dim": 50,
                "condition_number": 100.0,
                "noise": 0.1,
                "batch_size": 1,
                "steps_per_epoch": 20,
            },
        ),
        _info(
            "digits_cnn",
            "workers.tasks.digits:DigitsCNNTask",
            "Small CNN on scikit-learn's bundled 8x8 handwritten digits (1,077 train images)",
            _ACC,
            Budget(epochs=8),
            {"batch_size": 64, "width": 16},
        ),
        _info(
            "digits_diffusion",
            "workers.tasks.diffusion:DigitsDiffusionTask",
            "Small DDPM (MLP noise predictor) on the 8x8 digits; metric: denoising MSE",
            _LOSS,
            Budget(epochs=8),
            {"batch_size": 64, "timesteps": 200, "hidden": 256, "depth": 3, "eval_repeats": 4},
        ),
        _info(
            "hypergrid_gflownet",
            "workers.tasks.gflownet:HyperGridTask",
            "GFlowNet with trajectory balance on a HyperGrid (D=2, H=8); objective: the exact "
            "L1 distance of the policy's terminal distribution to the reward distribution "
            "(by dynamic programming); the trajectory-balance loss is a secondary metric",
            ("train_loss", "val_loss", "val_l1", "test_loss", "test_l1"),
            Budget(epochs=10),
            {
                "ndim": 2,
                "height": 8,
                "r0": 0.1,
                "r1": 0.5,
                "r2": 2.0,
                "hidden": 64,
                "batch_size": 64,
                "steps_per_epoch": 25,
                "eval_trajectories": 512,
            },
            target_metric="val_l1",
        ),
        _info(
            "cifar10_cnn",
            "workers.tasks.cifar10:Cifar10CNNTask",
            "The paper's CIFAR-10 CNN (conv blocks 64/128/256 with batch norm, 4096-512-10) "
            "with random-crop and flip augmentation; reads the CIFAR-10 python batches",
            _ACC,
            Budget(epochs=2, steps_per_epoch=5),
            {
                "batch_size": 64,
                "val_fraction": 0.2,
                "n_train": None,
                "eval_size": 256,
                "eval_batch_size": 256,
                "augment": True,
                "width": 1.0,
            },
            needs_data=True,
        ),
        _info(
            "wikitext2_lm",
            "workers.tasks.wikitext2:WikiText2LMTask",
            "Word-level WikiText-2 with a causal Transformer LM of the paper's size "
            "(4 layers, d_model 128, 8 heads, FFN 256, dropout 0.2)",
            _PPL,
            Budget(epochs=2, steps_per_epoch=5),
            {
                "batch_size": 32,
                "block_size": 64,
                "n_layer": 4,
                "n_head": 8,
                "n_embd": 128,
                "d_ff": 256,
                "dropout": 0.2,
                "bias": True,
                "max_train_tokens": None,
                "eval_tokens": 2048,
                "eval_batch_size": 64,
            },
            needs_data=True,
        ),
        _info(
            "stdlib_char_lm",
            "workers.tasks.stdlib_text:StdlibCharLMTask",
            "Byte-level GPT on the Python standard library's own source files "
            "(offline real corpus; fixed file list and split)",
            _PPL,
            Budget(epochs=3, steps_per_epoch=30),
            {
                "source_dir": None,
                "max_chars": 400_000,
                "batch_size": 32,
                "block_size": 64,
                "n_layer": 2,
                "n_head": 4,
                "n_embd": 64,
                "d_ff": 256,
                "dropout": 0.0,
                "bias": True,
                "eval_tokens": 8192,
                "eval_batch_size": 64,
            },
        ),
        _info(
            "gpt_pretrain",
            "workers.tasks.gpt_pretrain:GPTPretrainTask",
            "GPT-2-style pre-training (configurable up to 124M parameters) on pre-tokenised "
            "uint16 token shards; tiny by default, GPT-2 small in paper-scale studies",
            _PPL,
            Budget(epochs=2, steps_per_epoch=10),
            {
                "size": "tiny",
                "vocab_size": 50304,
                "block_size": None,
                "n_layer": None,
                "n_head": None,
                "n_embd": None,
                "d_ff": None,
                "dropout": 0.0,
                "bias": True,
                "batch_size": 8,
                "steps_per_epoch": 50,
                "eval_tokens": 2048,
                "eval_batch_size": 8,
                "test_fraction": 0.5,
                "format": "auto",
            },
            needs_data=True,
        ),
    )
}


def list_tasks() -> list[TaskInfo]:
    """Return every registered task, in registration order."""
    return list(TASKS.values())


def get_task_info(name: str) -> TaskInfo:
    """Return the record of task ``name``.

    Raises:
        NotFoundError: For an unknown name, listing the registered tasks.
    """
    try:
        return TASKS[name]
    except KeyError:
        known = ", ".join(TASKS)
        raise NotFoundError(f"unknown task {name!r}; registered: {known}") from None


def create_task(name: str, data_dir: str | None = None, **options: Any) -> Task:
    """Import and instantiate task ``name``.

    Args:
        name: A registered task name.
        data_dir: Folder holding the task's data files (tasks with ``needs_data``).
        **options: Task options overriding the defaults (the record's ``options``).

    Returns:
        The task.

    Raises:
        NotFoundError: For an unknown task, or (from the task) missing data files.
        SpecError: From the task, for unknown or invalid options.
    """
    info = get_task_info(name)
    module_name, _, attr = info.import_path.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    return cls(data_dir=data_dir, **options)
