r"""Lion, EvoLved Sign Momentum (Chen et al. 2023, arXiv 2302.06675).

From "Symbolic Discovery of Optimization Algorithms". The update, for each parameter
:math:`\theta` with gradient :math:`g` and momentum :math:`m`:

.. code-block:: text

    c  ← β1·m + (1 − β1)·g                 # interpolation used for the update
    θ  ← θ·(1 − lr·λ) − lr·sign(c)         # decoupled weight decay, sign update
    m  ← β2·m + (1 − β2)·g                 # momentum tracks the gradient with β2

Every coordinate moves by exactly ``lr`` (plus decay), so Lion wants a learning rate
3-10x smaller than AdamW's and a weight decay 3-10x larger (the paper's advice).
Defaults follow the paper: ``betas=(0.9, 0.99)``, ``lr=1e-4``.

Two kernels share one functional entry point :func:`lion`: a for-loop kernel (the
reference) and a multi-tensor ``foreach`` kernel, used by default when every parameter
lives on CUDA (as ``torch.optim`` does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

__all__ = ["Lion", "lion"]


class Lion(Optimizer):
    """Lion optimizer (sign of an interpolated momentum, decoupled weight decay).

    Args:
        params: Parameters or parameter groups.
        lr: Learning rate (the size of every coordinate's step).
        betas: ``(β1, β2)``: β1 interpolates the update direction, β2 the momentum.
        weight_decay: Decoupled weight decay λ (applied as ``θ·(1 − lr·λ)``).
        maximize: Maximise the objective instead of minimising it.
        foreach: Use the multi-tensor kernel; ``None`` picks it when every parameter
            is on CUDA.

    Raises:
        ValueError: For a negative ``lr`` or ``weight_decay``, or betas outside [0, 1).
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        if not lr >= 0.0:
            raise ValueError(f"Invalid learning rate: lr={lr}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: betas[0]={betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: betas[1]={betas[1]}")
        if not weight_decay >= 0.0:
            raise ValueError(f"Invalid weight_decay value: weight_decay={weight_decay}")
        defaults = {
            "lr": lr,
            "betas": betas,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "foreach": foreach,
        }
        super().__init__(params, defaults)

    def _init_group(
        self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], avgs: list[Tensor]
    ) -> None:
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("Lion does not support sparse gradients")
            params.append(p)
            grads.append(p.grad)
            state = self.state[p]
            if len(state) == 0:
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            avgs.append(state["exp_avg"])

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform one optimization step.

        Args:
            closure: Re-evaluates the model and returns the loss (called with grad enabled).

        Returns:
            The closure's loss, or ``None``.

        Raises:
            RuntimeError: For sparse gradients.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params: list[Tensor] = []
            grads: list[Tensor] = []
            avgs: list[Tensor] = []
            self._init_group(group, params, grads, avgs)
            beta1, beta2 = group["betas"]
            lion(
                params,
                grads,
                avgs,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                weight_decay=group["weight_decay"],
                maximize=group["maximize"],
                foreach=group["foreach"],
            )
        return loss


def lion(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    weight_decay: float,
    maximize: bool = False,
    foreach: bool | None = None,
) -> None:
    """Functional Lion: update ``params`` and ``exp_avgs`` in place (see :class:`Lion`)."""
    if not params:
        return
    if foreach is None:
        foreach = all(p.is_cuda for p in params)
    kernel = _multi_tensor_lion if foreach else _single_tensor_lion
    kernel(
        params,
        grads,
        exp_avgs,
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        weight_decay=weight_decay,
        maximize=maximize,
    )


def _single_tensor_lion(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    for param, grad, exp_avg in zip(params, grads, exp_avgs, strict=True):
        g = -grad if maximize else grad
        if weight_decay != 0:
            param.mul_(1 - lr * weight_decay)
        update = exp_avg.lerp(g, 1 - beta1).sign_()
        param.add_(update, alpha=-lr)
        exp_avg.lerp_(g, 1 - beta2)


def _multi_tensor_lion(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    g = torch._foreach_neg(grads) if maximize else grads
    if weight_decay != 0:
        torch._foreach_mul_(params, 1 - lr * weight_decay)
    updates = torch._foreach_lerp(exp_avgs, g, 1 - beta1)
    torch._foreach_sign_(updates)
    torch._foreach_add_(params, updates, alpha=-lr)
    torch._foreach_lerp_(exp_avgs, g, 1 - beta2)
