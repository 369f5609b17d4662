"""``cifar10_cnn``: the paper's CIFAR-10 CNN, data read from the standard python batches.

Data: ``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` of the "CIFAR-10 python
version" (pickled dicts with ``b"data"``, uint8 N x 3072 in channel-major order, and
``b"labels"``), in ``data_dir`` or ``data_dir/cifar-10-batches-py``. Nothing is
downloaded unless :func:`download_cifar10` (from :mod:`workers.tasks.download`) is
called.
The pickles are read with an unpickler that only admits NumPy arrays, so a tampered
file cannot run code.

Split (fixed, seed-independent, as in the paper): a fixed permutation of the 50,000
training images puts ``val_fraction`` (20%: 10,000) in validation and the rest
(40,000) in training; ``test_batch`` is the test split. ``n_train`` keeps a fixed
subset of the training split; ``eval_size`` caps the validation/test images scored
(a fixed prefix), both for quick CPU runs.

Augmentation (training only, fixed by ``(seed, epoch)``): random crop 32 with zero
padding 4, then a horizontal flip with probability 1/2, in torch ops on uint8 images.
Normalisation (mean/std of CIFAR-10) is the model's first layer, so batches stay uint8
until they reach the device.

Model (PAPER.md 3.2 a): three blocks of [conv3x3 -> BN -> ReLU] x 2 -> maxpool with
64/128/256 channels, then 4096 -> 512 -> ReLU -> 10 (3.25M parameters). ``width``
scales the channel counts for quick CPU runs.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from labcore.budget import Budget
from labcore.errors import SpecError
from workers.tasks._data import (
    SALT_AUGMENT,
    SALT_ORDER,
    DataFormatError,
    check_positive_int,
    classification_metrics,
    find_data_dir,
    resolve_options,
    seeded_init,
    torch_generator,
)
from workers.tasks.base import Task
from workers.tasks.download import CIFAR10_FILES, CIFAR10_SUBDIR, download_cifar10
from workers.tasks.registry import TASKS

__all__ = ["Cifar10CNNTask", "cifar_cnn", "download_cifar10", "random_crop_flip", "read_batch"]

TRAIN_FILES, TEST_FILE = CIFAR10_FILES[:5], CIFAR10_FILES[5]
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.247, 0.243, 0.261)
SPLIT_SEED = 0  # the train/val permutation; never the trial seed


class _ArrayUnpickler(pickle.Unpickler):
    """Admits only what CIFAR-10's pickles contain: dicts, lists, bytes, NumPy arrays.

    ``_codecs.encode`` is how Python 3 writes bytes at pickle protocol 2 (re-saved copies).
    """

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("_codecs", "encode"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch.

    Returns:
        Images as uint8 (N, 3, 32, 32) and labels as int64 (N,).

    Raises:
        DataFormatError: If the file is not a CIFAR-10 batch.
    """
    try:
        with path.open("rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as exc:
        raise DataFormatError(f"{path}: not a CIFAR-10 python batch ({exc})") from exc
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataFormatError(f"{path}: expected data N x 3072 and N labels, got {data.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataFormatError(f"{path}: labels outside 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def random_crop_flip(images: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Randomly crop (zero padding ``pad``) and horizontally flip a batch of images.

    Args:
        images: (B, C, H, W) tensor (any dtype).
        gen: The generator that fixes the crops and flips.
        pad: Padding on every side before cropping back to (H, W).

    Returns:
        A new (B, C, H, W) tensor of the same dtype.
    """
    b, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    flip = torch.rand(b, generator=gen) < 0.5
    cols = torch.arange(w)
    cols = torch.where(flip[:, None], w - 1 - cols, cols) + dx[:, None]  # (B, W)
    rows = torch.arange(h) + dy[:, None]  # (B, H)
    batch = torch.arange(b)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


class Normalize(nn.Module):
    """Map uint8 images to float, normalised per channel."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", 255.0 * torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", 255.0 * torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``(x - mean) / std`` in float32."""
        return (x.float() - self.mean) / self.std


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c in (c_in, c_out):
        layers += [nn.Conv2d(c, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.MaxPool2d(2))


def cifar_cnn(width: float = 1.0) -> nn.Sequential:
    """The paper's DeeperCNN (channels 64/128/256 times ``width``), uint8 input."""
    c1, c2, c3 = (max(1, round(c * width)) for c in (64, 128, 256))
    return nn.Sequential(
        Normalize(MEAN, STD),
        _conv_block(3, c1),
        _conv_block(c1, c2),
        _conv_block(c2, c3),
        nn.Flatten(),
        nn.Linear(c3 * 4 * 4, 512),
        nn.ReLU(inplace=True),
        nn.Linear(512, 10),
    )


class Cifar10CNNTask(Task):
    """CIFAR-10 classification with the paper's CNN.

    Options (defaults in :attr:`DEFAULT_OPTIONS`):
        batch_size: Training images per step (paper: 1024).
        val_fraction: Share of the 50,000 training images held out for validation.
        n_train: Keep only this many training images (``None``: all 40,000).
        eval_size: Validation/test images scored (``None``: all 10,000 each).
        eval_batch_size: Images per evaluation forward pass.
        augment: Random crop and flip during training.
        width: Channel multiplier (1.0: the paper's 64/128/256).
    """

    name: ClassVar[str] = "cifar10_cnn"
    metrics: ClassVar[tuple[str, ...]] = (
        "train_loss",
        "val_loss",
        "val_acc",
        "test_loss",
        "test_acc",
    )
    default_budget: ClassVar[Budget] = TASKS["cifar10_cnn"].default_budget
    DEFAULT_OPTIONS: ClassVar[Mapping[str, Any]] = TASKS["cifar10_cnn"].options
    # The paper-scale setting (budget: Budget(epochs=100)).
    PAPER_OPTIONS: ClassVar[Mapping[str, Any]] = {"batch_size": 1024, "eval_size": None}

    def __init__(self, data_dir: str | None = None, **options: Any) -> None:
        super().__init__(data_dir, **options)
        self.opts = resolve_options(self.name, self.DEFAULT_OPTIONS, options)
        check_positive_int(self.opts, "batch_size", "eval_batch_size")
        check_positive_int(self.opts, "n_train", "eval_size", allow_none=True)
        if not 0.0 < self.opts["val_fraction"] < 1.0:
            raise SpecError("must be in (0, 1)", field="options.val_fraction")
        if not isinstance(self.opts["width"], int | float) or self.opts["width"] <= 0:
            raise SpecError("must be a positive number", field="options.width")
        self.folder = find_data_dir(data_dir, self.name, list(CIFAR10_FILES), [CIFAR10_SUBDIR])
        self._splits: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None

    def splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Images (uint8, N x 3 x 32 x 32) and labels of ``train``/``val``/``test``, cached.

        Raises:
            DataFormatError: If a batch file is malformed or the split leaves no images.
        """
        if self._splits is None:
            parts = [read_batch(self.folder / name) for name in TRAIN_FILES]
            images = np.concatenate([p[0] for p in parts])
            labels = np.concatenate([p[1] for p in parts])
            perm = np.random.default_rng(SPLIT_SEED).permutation(len(images))
            n_val = round(self.opts["val_fraction"] * len(images))
            val_idx, train_idx = perm[:n_val], perm[n_val:]
            if self.opts["n_train"] is not None:
                train_idx = train_idx[: self.opts["n_train"]]
            if len(train_idx) == 0 or len(val_idx) == 0:
                raise DataFormatError(f"{self.folder}: too few images for a train/val split")
            test_images, test_labels = read_batch(self.folder / TEST_FILE)
            self._splits = {
                "train": (images[train_idx], labels[train_idx]),
                "val": (images[val_idx], labels[val_idx]),
                "test": (test_images, test_labels),
            }
            self._splits = {
                k: (torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y))
                for k, (x, y) in self._splits.items()
            }
        return self._splits

    def build_model(self, seed: int) -> nn.Module:
        """The paper's CNN, initialised deterministically from ``seed``."""
        with seeded_init(seed):
            return cifar_cnn(self.opts["width"])

    def train_batches(self, seed: int, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (uint8 images, int64 labels), shuffled and augmented by ``(seed, epoch)``.

        An incomplete last batch is dropped unless it is the only one.
        """
        images, labels = self.splits()["train"]
        batch = self.opts["batch_size"]
        order = torch.randperm(len(images), generator=torch_generator(seed, epoch, SALT_ORDER))
        aug = torch_generator(seed, epoch, SALT_AUGMENT)
        n_batches = max(1, len(images) // batch)
        for i in range(n_batches):
            idx = order[i * batch : (i + 1) * batch]
            x = images[idx]
            if self.opts["augment"]:
                x = random_crop_flip(x, aug)
            yield x, labels[idx]

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Mean cross-entropy on ``batch``."""
        images, labels = batch
        return F.cross_entropy(model(images), labels)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        """``{"loss", "acc"}`` on the first ``eval_size`` images of ``split``.

        Raises:
            ValueError: For a split other than ``val`` or ``test``.
        """
        if split not in ("val", "test"):
            raise ValueError(f"unknown split {split!r}; expected 'val' or 'test'")
        images, labels = self.splits()[split]
        if self.opts["eval_size"] is not None:
            images, labels = images[: self.opts["eval_size"]], labels[: self.opts["eval_size"]]
        return classification_metrics(model, images, labels, self.opts["eval_batch_size"])
