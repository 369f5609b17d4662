"""A small CNN on scikit-learn's bundled 8x8 handwritten digits (offline, real data).

Data: the 1,797 images of ``sklearn.datasets.load_digits``, scaled to [0, 1] and split
once, stratified by class with a fixed random state, into 1,077 training, 360 validation
and 360 test images. The split does not depend on the trial's seed; the seed fixes the
initial weights and the order of the training batches (reshuffled every epoch from
``(seed, epoch)``).

Model: two 3x3 convolutions (``width`` and ``2·width`` channels, ReLU), 2x2 max-pooling,
then a 64-unit hidden layer and 10 logits: about 38k parameters at the default width.
Metrics: cross-entropy ``loss`` and accuracy ``acc`` on each split.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from labcore.budget import Budget
from workers.tasks._data import (
    SALT_ORDER,
    check_positive_int,
    classification_metrics,
    resolve_options,
    seeded_init,
    torch_generator,
)
from workers.tasks.base import Task
from workers.tasks.registry import TASKS

__all__ = ["DigitsCNN", "DigitsCNNTask", "digits_splits"]

_SPLIT_SEED = 0  # the one fixed split, whatever the trial's seed
_VAL_FRACTION = 0.2
_TEST_FRACTION = 0.2


@functools.cache
def digits_splits() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Return ``{"train"|"val"|"test": (images, labels)}`` of the bundled digits.

    Images are float32 of shape (N, 1, 8, 8) in [0, 1]; labels int64 in 0..9. The
    split is stratified and fixed (``random_state=0``); the tensors are cached, so
    treat them as read-only.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(data.target, dtype=torch.int64)
    index = list(range(len(labels)))
    rest, test = train_test_split(
        index, test_size=_TEST_FRACTION, random_state=_SPLIT_SEED, stratify=data.target
    )
    train, val = train_test_split(
        rest,
        test_size=_VAL_FRACTION / (1.0 - _TEST_FRACTION),
        random_state=_SPLIT_SEED,
        stratify=data.target[rest],
    )
    out = {}
    for name, idx in (("train", train), ("val", val), ("test", test)):
        ids = torch.tensor(sorted(idx))
        out[name] = (images[ids], labels[ids])
    return out


class DigitsCNN(nn.Module):
    """Conv(1→w) → ReLU → Conv(w→2w) → ReLU → MaxPool(2) → FC(32w→64) → ReLU → FC(64→10)."""

    def __init__(self, width: int = 16, hidden: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.fc1 = nn.Linear(2 * width * 4 * 4, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits of shape (N, 10) for images of shape (N, 1, 8, 8)."""
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class DigitsCNNTask(Task):
    """Classify 8x8 digits with a small CNN (see the module docstring).

    Options (defaults in :attr:`DEFAULT_OPTIONS`):
        batch_size: Training images per step (the last batch of an epoch may be smaller).
        width: Channels of the first convolution.

    Raises:
        SpecError: For unknown or invalid options.
    """

    name: ClassVar[str] = "digits_cnn"
    metrics: ClassVar[tuple[str, ...]] = (
        "train_loss",
        "val_loss",
        "val_acc",
        "test_loss",
        "test_acc",
    )
    default_budget: ClassVar[Budget] = TASKS["digits_cnn"].default_budget
    DEFAULT_OPTIONS: ClassVar[Mapping[str, Any]] = TASKS["digits_cnn"].options

    def __init__(self, data_dir: str | None = None, **options: Any) -> None:
        super().__init__(data_dir, **options)
        self.opts = resolve_options(self.name, self.DEFAULT_OPTIONS, options)
        check_positive_int(self.opts, "batch_size", "width")
        self.splits = digits_splits()

    def build_model(self, seed: int) -> DigitsCNN:
        """Return a CNN initialised from ``seed`` (PyTorch's default initialisation)."""
        with seeded_init(seed):
            return DigitsCNN(self.opts["width"])

    def train_batches(self, seed: int, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (images, labels) batches of the training split in a ``(seed, epoch)`` order."""
        images, labels = self.splits["train"]
        order = torch.randperm(len(labels), generator=torch_generator(seed, epoch, SALT_ORDER))
        size = self.opts["batch_size"]
        for start in range(0, len(order), size):
            idx = order[start : start + size]
            yield images[idx], labels[idx]

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Mean cross-entropy of ``model`` on ``batch``."""
        images, labels = batch
        return F.cross_entropy(model(images), labels)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        """Return ``{"loss", "acc"}`` on the whole ``split`` (``val`` or ``test``).

        Raises:
            ValueError: For a split other than ``val`` or ``test``.
        """
        if split not in ("val", "test"):
            raise ValueError(f"unknown split {split!r}; expected 'val' or 'test'")
        images, labels = self.splits[split]
        return classification_metrics(model, images, labels, batch_size=len(images))
