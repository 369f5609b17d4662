r"""An ill-conditioned noisy quadratic with a known optimum (a noisy quadratic model).

The objective on :math:`x \in \mathbb{R}^d` is

.. math::  f(x) = \tfrac12 \sum_i h_i (x_i - x^*_i)^2, \qquad f(x^*) = 0,

with curvatures :math:`h_i` log-spaced from 1 down to ``1 / condition_number`` (so
gradient descent is stable for ``lr < 2``: the classic edge-of-stability threshold
``2 / λ_max``). The optimum :math:`x^*` is fixed (independent of the seed); the start
:math:`x_0 = x^* + z`, :math:`z \sim N(0, I)`, depends on the seed.

A training batch is a noisy target :math:`c = x^* + \varepsilon`, with
:math:`\varepsilon_i \sim N(0, \sigma^2 / (h_i B))` (σ = ``noise``, B = ``batch_size``),
and the batch loss is :math:`\tfrac12 \sum_i h_i (x_i - c_i)^2 \ge 0`. Its gradient
:math:`H(x - x^*) - H\varepsilon` is unbiased with covariance :math:`\sigma^2 H / B`,
the noise model of Zhang et al. 2019 ("Which algorithmic choices matter at which batch
sizes?"). The expected batch loss is :math:`f(x) + d\sigma^2/(2B)`.

Metrics: ``val_loss`` and ``test_loss`` are both the noise-free excess objective
:math:`f(x) - f(x^*) = f(x)` (the quadratic's population risk; the two splits coincide
by construction). ``train_loss`` is the mean batch loss of an epoch. The task has no
finite dataset: an epoch is ``steps_per_epoch`` batches (the option), and a budget's
``steps_per_epoch`` caps that.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from labcore.budget import Budget
from labcore.errors import SpecError
from workers.tasks._data import check_positive_int, resolve_options, torch_generator
from workers.tasks.base import Task
from workers.tasks.registry import TASKS

__all__ = ["QuadraticModel", "QuadraticTask"]

_OPTIMUM_SEED = 20230517  # fixes x* for every trial seed


class QuadraticModel(nn.Module):
    """The "model": one parameter vector ``x`` and the (fixed) problem as buffers.

    Attributes:
        x: The trainable point.
        curvature: The Hessian's diagonal ``h``.
        optimum: ``x*``.
    """

    def __init__(self, x0: torch.Tensor, curvature: torch.Tensor, optimum: torch.Tensor) -> None:
        super().__init__()
        self.x = nn.Parameter(x0.clone())
        self.register_buffer("curvature", curvature.clone())
        self.register_buffer("optimum", optimum.clone())

    def forward(self, target: torch.Tensor) -> torch.Tensor:
        """Return ``½ Σ h_i (x_i − target_i)²``."""
        return 0.5 * (self.curvature * (self.x - target) ** 2).sum()

    def objective(self) -> torch.Tensor:
        """Return the noise-free excess objective ``f(x) − f(x*)``."""
        return self(self.optimum)


class QuadraticTask(Task):
    """Noisy ill-conditioned quadratic (runs in milliseconds; see the module docstring).

    Options (defaults in :attr:`DEFAULT_OPTIONS`):
        dim: Dimension d.
        condition_number: λ_max / λ_min of the Hessian (λ_max = 1).
        noise: Gradient-noise scale σ (0: deterministic full-batch gradients).
        batch_size: B, dividing the noise variance.
        steps_per_epoch: Batches per epoch.

    Raises:
        SpecError: For unknown or invalid options.
    """

    name: ClassVar[str] = "quadratic"
    metrics: ClassVar[tuple[str, ...]] = ("train_loss", "val_loss", "test_loss")
    default_budget: ClassVar[Budget] = TASKS["quadratic"].default_budget
    DEFAULT_OPTIONS: ClassVar[Mapping[str, Any]] = TASKS["quadratic"].options

    def __init__(self, data_dir: str | None = None, **options: Any) -> None:
        super().__init__(data_dir, **options)
        self.opts = resolve_options(self.name, self.DEFAULT_OPTIONS, options)
        check_positive_int(self.opts, "dim", "batch_size", "steps_per_epoch")
        if not float(self.opts["condition_number"]) >= 1.0:
            raise SpecError("must be >= 1", field="options.condition_number")
        if not float(self.opts["noise"]) >= 0.0:
            raise SpecError("must be >= 0", field="options.noise")
        d = self.opts["dim"]
        kappa = float(self.opts["condition_number"])
        self.curvature = torch.logspace(0.0, -math.log10(kappa), d)
        gen = torch.Generator().manual_seed(_OPTIMUM_SEED)
        self.optimum = torch.randn(d, generator=gen)

    def build_model(self, seed: int) -> QuadraticModel:
        """Return the model at ``x0 = x* + z``, ``z ~ N(0, I)`` drawn from ``seed``."""
        gen = torch.Generator().manual_seed(int(seed))
        x0 = self.optimum + torch.randn(self.opts["dim"], generator=gen)
        return QuadraticModel(x0, self.curvature, self.optimum)

    def train_batches(self, seed: int, epoch: int) -> Iterator[torch.Tensor]:
        """Yield ``steps_per_epoch`` noisy targets ``c = x* + ε``, fixed by ``(seed, epoch)``."""
        gen = torch_generator(seed, epoch)
        scale = float(self.opts["noise"]) / torch.sqrt(self.curvature * self.opts["batch_size"])
        noise = torch.randn(self.opts["steps_per_epoch"], self.opts["dim"], generator=gen)
        yield from self.optimum + noise * scale

    def loss(self, model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        """Return the batch loss ``½ Σ h_i (x_i − c_i)²``."""
        return model(batch)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        """Return ``{"loss": f(x) − f(x*)}`` (the same for ``val`` and ``test``).

        Raises:
            ValueError: For a split other than ``val`` or ``test``.
        """
        if split not in ("val", "test"):
            raise ValueError(f"unknown split {split!r}; expected 'val' or 'test'")
        return {"loss": float(model.objective())}
