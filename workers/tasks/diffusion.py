r"""A small DDPM (Ho et al. 2020) on the 8x8 digits.

Data: the training split of :func:`workers.tasks.digits.digits_splits` (1,077 images),
scaled to [-1, 1]; the same fixed validation and test splits as ``digits_cnn``.

Diffusion: ``timesteps`` steps with a linear β schedule from ``1e-4·(1000/T)`` to
``0.02·(1000/T)`` (Ho et al.'s schedule rescaled to T steps); the forward process
:math:`x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon`.

Model: an MLP noise predictor :math:`\varepsilon_\theta(x_t, t)` on the 64 flattened
pixels, with a sinusoidal time embedding added to each of its residual blocks (SiLU).

Loss and metrics: the simple DDPM loss, the mean squared error between the true and the
predicted noise at a uniformly drawn timestep. A training batch carries its images,
timesteps and noise, all drawn from ``(seed, epoch)``. The validation and test
``loss`` is the same MSE over every image of the split repeated ``eval_repeats`` times,
with timesteps and noise drawn once from a fixed per-split seed, so the metric is
deterministic and the same for every trial.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from labcore.budget import Budget
from labcore.errors import SpecError
from workers.tasks._data import (
    SALT_ORDER,
    check_positive_int,
    model_device,
    resolve_options,
    seeded_init,
    torch_generator,
)
from workers.tasks.base import Task
from workers.tasks.digits import digits_splits
from workers.tasks.registry import TASKS

__all__ = ["DigitsDiffusionTask", "NoisePredictor"]

_EVAL_SEEDS = {"val": 1001, "test": 1002}  # fixed noise/timesteps per split
_PIXELS = 64

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (x0, t, noise)


def _time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps ``t`` (shape (N,)) → (N, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class _Block(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, hidden)
        self.fc2 = nn.Linear(hidden, hidden)

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        return h + self.fc2(F.silu(self.fc1(self.norm(h) + temb)))


class NoisePredictor(nn.Module):
    """MLP ε-predictor with a time embedding; holds the noise schedule as buffers.

    Args:
        timesteps: T, the number of diffusion steps.
        hidden: Width of the residual blocks.
        depth: Number of residual blocks.
        temb_dim: Size of the sinusoidal time embedding.
    """

    def __init__(self, timesteps: int, hidden: int = 256, depth: int = 3, temb_dim: int = 64):
        super().__init__()
        scale = 1000.0 / timesteps
        betas = torch.linspace(1e-4 * scale, min(0.02 * scale, 0.999), timesteps)
        self.register_buffer("alpha_bar", torch.cumprod(1.0 - betas, dim=0))
        self.temb_dim = temb_dim
        self.time_mlp = nn.Sequential(
            nn.Linear(temb_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden)
        )
        self.inp = nn.Linear(_PIXELS, hidden)
        self.blocks = nn.ModuleList(_Block(hidden) for _ in range(depth))
        self.out_norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, _PIXELS)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predict the noise in ``x_t`` (shape (N, 64)) at timesteps ``t`` (shape (N,))."""
        temb = self.time_mlp(_time_embedding(t, self.temb_dim))
        h = self.inp(x_t)
        for block in self.blocks:
            h = block(h, temb)
        return self.out(F.silu(self.out_norm(h)))

    def noisy(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Return ``x_t = sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·noise``."""
        a = self.alpha_bar[t][:, None]
        return a.sqrt() * x0 + (1.0 - a).sqrt() * noise

    def denoising_loss(self, batch: Batch) -> torch.Tensor:
        """Return the mean squared error of the predicted noise on ``(x0, t, noise)``."""
        x0, t, noise = batch
        return F.mse_loss(self(self.noisy(x0, t, noise), t), noise)


class DigitsDiffusionTask(Task):
    """Train a DDPM noise predictor on 8x8 digits (see the module docstring).

    Options (defaults in :attr:`DEFAULT_OPTIONS`):
        batch_size: Training images per step.
        timesteps: Diffusion steps T.
        hidden, depth: The noise predictor's width and number of residual blocks.
        eval_repeats: (timestep, noise) draws per validation/test image.

    Raises:
        SpecError: For unknown or invalid options.
    """

    name: ClassVar[str] = "digits_diffusion"
    metrics: ClassVar[tuple[str, ...]] = ("train_loss", "val_loss", "test_loss")
    default_budget: ClassVar[Budget] = TASKS["digits_diffusion"].default_budget
    DEFAULT_OPTIONS: ClassVar[Mapping[str, Any]] = TASKS["digits_diffusion"].options

    def __init__(self, data_dir: str | None = None, **options: Any) -> None:
        super().__init__(data_dir, **options)
        self.opts = resolve_options(self.name, self.DEFAULT_OPTIONS, options)
        check_positive_int(self.opts, "batch_size", "timesteps", "hidden", "depth", "eval_repeats")
        if self.opts["timesteps"] < 2:
            raise SpecError("must be >= 2", field="options.timesteps")
        splits = digits_splits()
        self.images = {k: v[0].flatten(1) * 2.0 - 1.0 for k, v in splits.items()}
        self._eval: dict[str, Batch] = {}

    def build_model(self, seed: int) -> NoisePredictor:
        """Return a noise predictor initialised from ``seed``."""
        with seeded_init(seed):
            return NoisePredictor(self.opts["timesteps"], self.opts["hidden"], self.opts["depth"])

    def _draw(self, x0: torch.Tensor, gen: torch.Generator) -> Batch:
        t = torch.randint(0, self.opts["timesteps"], (len(x0),), generator=gen)
        return x0, t, torch.randn(x0.shape, generator=gen)

    def train_batches(self, seed: int, epoch: int) -> Iterator[Batch]:
        """Yield ``(x0, t, noise)`` batches; order, timesteps and noise fixed by the seed."""
        x = self.images["train"]
        gen = torch_generator(seed, epoch, SALT_ORDER)
        order = torch.randperm(len(x), generator=gen)
        size = self.opts["batch_size"]
        for start in range(0, len(order), size):
            yield self._draw(x[order[start : start + size]], gen)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The DDPM simple loss on ``batch``."""
        return model.denoising_loss(batch)

    def eval_batch(self, split: str) -> Batch:
        """Return the fixed ``(x0, t, noise)`` evaluation set of ``split``.

        Raises:
            ValueError: For a split other than ``val`` or ``test``.
        """
        if split not in _EVAL_SEEDS:
            raise ValueError(f"unknown split {split!r}; expected 'val' or 'test'")
        if split not in self._eval:
            x0 = self.images[split].repeat(self.opts["eval_repeats"], 1)
            gen = torch.Generator().manual_seed(_EVAL_SEEDS[split])
            self._eval[split] = self._draw(x0, gen)
        return self._eval[split]

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        """Return ``{"loss": denoising MSE}`` on the fixed evaluation set of ``split``.

        Raises:
            ValueError: For a split other than ``val`` or ``test``.
        """
        batch = self.to_device(self.eval_batch(split), model_device(model))
        was_training = model.training
        model.eval()
        try:
            loss = model.denoising_loss(batch)
        finally:
            model.train(was_training)
        return {"loss": float(loss)}
