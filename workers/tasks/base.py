"""The Task interface every benchmark task implements (after AlgoPerf's Workload).

A task owns a model family, a dataset (with a seed-independent validation/test split)
and its metrics. ``run_trial`` (``workers/trial.py``) drives it; the task knows nothing
of optimizers, Optuna or Ray.

Contract:
    * ``build_model(seed)`` is deterministic in ``seed`` (same seed, same weights).
    * ``train_batches(seed, epoch)`` yields the training batches of one epoch in an
      order (and augmentation) fixed by ``(seed, epoch)``.
    * ``loss(model, batch)`` returns a scalar tensor with grad.
    * ``evaluate(model, split)`` returns metrics named without the split prefix
      (``{"loss": ..., "acc": ...}``); ``run_trial`` prefixes ``val_``/``test_``.
    * The model is moved to ``device`` by ``run_trial``; batches are moved by
      ``to_device``.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from labcore.budget import Budget

if TYPE_CHECKING:  # torch stays out of import paths that only list tasks
    import torch
    from torch import nn


class Task(abc.ABC):
    """A benchmark training task.

    Class attributes:
        name: Registry name.
        target_metric: The metric selection uses by default (e.g. ``val_loss``).
        direction: ``"minimize"`` or ``"maximize"`` for ``target_metric``.
        metrics: Every metric name ``run_trial`` reports for this task, split-prefixed.
        default_budget: A budget sized for a quick CPU run.
    """

    name: ClassVar[str]
    target_metric: ClassVar[str] = "val_loss"
    direction: ClassVar[str] = "minimize"
    metrics: ClassVar[tuple[str, ...]] = ("train_loss", "val_loss", "test_loss")
    default_budget: ClassVar[Budget] = Budget(epochs=1)

    def __init__(self, data_dir: str | None = None, **options: Any) -> None:
        self.data_dir = data_dir
        self.options: dict[str, Any] = dict(options)

    @abc.abstractmethod
    def build_model(self, seed: int) -> nn.Module:
        """Return a freshly initialised model, deterministic in ``seed``."""

    @abc.abstractmethod
    def train_batches(self, seed: int, epoch: int) -> Iterator[Any]:
        """Yield one epoch of training batches, ordered and augmented by ``(seed, epoch)``."""

    @abc.abstractmethod
    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """Return the scalar training loss of ``model`` on ``batch``."""

    @abc.abstractmethod
    def evaluate(self, model: nn.Module, split: str) -> Mapping[str, float]:
        """Return metrics on ``split`` (``"val"`` or ``"test"``), names without prefix."""

    def to_device(self, batch: Any, device: torch.device) -> Any:
        """Move a batch to ``device`` (tensors, or tuples/lists/dicts of tensors)."""
        if hasattr(batch, "to"):
            return batch.to(device)
        if isinstance(batch, tuple | list):
            return type(batch)(self.to_device(b, device) for b in batch)
        if isinstance(batch, dict):
            return {k: self.to_device(v, device) for k, v in batch.items()}
        return batch


@dataclass(frozen=True)
class TaskInfo:
    """A registry record: everything known about a task without importing torch.

    Attributes:
        name: Registry name.
        import_path: ``"package.module:Class"`` of the :class:`Task` subclass.
        description: One line for catalogs.
        target_metric: Default selection metric.
        direction: ``"minimize"`` or ``"maximize"``.
        metrics: Metric names the task reports (split-prefixed).
        default_budget: Quick CPU budget.
        needs_data: Whether it reads files from a data directory.
        options: Task options a study may set, with defaults.
    """

    name: str
    import_path: str
    description: str
    target_metric: str
    direction: str
    metrics: tuple[str, ...]
    default_budget: Budget
    needs_data: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
