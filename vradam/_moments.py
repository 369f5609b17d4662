"""VRAdam phase 1: moments, the velocity penalty Σ|x|^power, and the effective rate η_t.

For every tensor with a gradient: advance its step counter and both moments, then return the
tensor set's contribution to the penalty (x = the raw first moment after this step's update,
or the raw gradient), accumulated in float32 or better. :func:`_effective_lr` turns the
combined penalty into η_t = lr / (1 + min(β3·V, α1)) as a 0-dim tensor (no host sync).
Phase 2, the parameter update, is in :mod:`vradam._functional`.
"""

from typing import cast

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer

NORM_SCOPES = ("global", "group")
PENALIZE_OPTIONS = ("velocity", "gradient")


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the penalty norm is accumulated in: float64 for float64, else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _needs_norm(beta3: float, alpha1: float) -> bool:
    """False when the penalty is identically zero (β3 = 0 or α1 = 0: plain AdamW)."""
    return beta3 != 0 and alpha1 != 0


def _dot_ok(x: Tensor, power: float) -> bool:
    """Whether Σx² may use BLAS dot (float32/float64 on the CPU).

    There dot is multi-threaded and about twice as fast as the vector-norm kernel on 2 cores.
    """
    return power == 2 and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)


def _power_sum(x: Tensor, power: float, differentiable: bool) -> Tensor:
    """Σ|x|^power of one tensor, accumulated in float32 (float64 for float64), one read."""
    acc = _acc_dtype(x.dtype)
    if differentiable:
        return x.to(acc).abs().pow(power).sum()
    if _dot_ok(x, power) and not torch.compiler.is_compiling():
        flat = x.reshape(-1)
        return torch.dot(flat, flat)
    return torch.linalg.vector_norm(x, power, dtype=acc).pow(power)


def _sum_parts(parts: list[Tensor]) -> Tensor | None:
    """Sum per-tensor contributions (one stack and one sum, on the first one's device)."""
    if not parts:
        return None
    device = parts[0].device
    if any(p.device != device for p in parts):
        parts = [p.to(device) for p in parts]
    if any(p.dtype != parts[0].dtype for p in parts):
        dtype = torch.float64 if any(p.dtype == torch.float64 for p in parts) else torch.float32
        parts = [p.to(dtype) for p in parts]
    return torch.stack(parts).sum()


# --------------------------------------------------------------------------------------------
# Phase 1: moments and the penalty's partial sum.
# --------------------------------------------------------------------------------------------


def _single_tensor_moments(
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    state_steps: list[Tensor],
    *,
    beta1: float,
    beta2: float,
    power: float | None,
    penalize: str,
    maximize: bool,
    differentiable: bool,
) -> Tensor | None:
    parts: list[Tensor] = []
    for i, grad in enumerate(grads):
        grad = grad if not maximize else -grad
        exp_avg = exp_avgs[i]
        exp_avg_sq = exp_avg_sqs[i]
        state_steps[i] += 1

        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)

        if power is not None:
            x = exp_avg if penalize == "velocity" else grad
            parts.append(_power_sum(x, power, differentiable))
    return _sum_parts(parts)


def _multi_tensor_moments(
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    state_steps: list[Tensor],
    *,
    beta1: float,
    beta2: float,
    power: float | None,
    penalize: str,
    maximize: bool,
    differentiable: bool,
) -> Tensor | None:
    if differentiable:
        raise RuntimeError("VRAdam's foreach kernel does not support differentiable=True")
    grouped = Optimizer._group_tensors_by_device_and_dtype(
        [grads, exp_avgs, exp_avg_sqs, state_steps]  # type: ignore[list-item]
    )
    parts: list[Tensor] = []
    for (
        device_grads_,
        device_exp_avgs_,
        device_exp_avg_sqs_,
        device_steps_,
    ), _ in grouped.values():
        device_grads = cast(list[Tensor], device_grads_)
        device_exp_avgs = cast(list[Tensor], device_exp_avgs_)
        device_exp_avg_sqs = cast(list[Tensor], device_exp_avg_sqs_)
        device_steps = cast(list[Tensor], device_steps_)

        if maximize:
            device_grads = torch._foreach_neg(device_grads)  # type: ignore[assignment]

        # CPU step counters: wrap the 1 once, as torch.optim.Adam does, to stay on the fast path.
        if not torch.compiler.is_compiling() and device_steps[0].is_cpu:
            torch._foreach_add_(device_steps, torch.tensor(1.0, device="cpu"), alpha=1.0)
        else:
            torch._foreach_add_(device_steps, 1)

        torch._foreach_lerp_(device_exp_avgs, device_grads, 1 - beta1)
        torch._foreach_mul_(device_exp_avg_sqs, beta2)
        torch._foreach_addcmul_(device_exp_avg_sqs, device_grads, device_grads, 1 - beta2)

        if power is None:
            continue
        x = device_exp_avgs if penalize == "velocity" else device_grads
        if _dot_ok(x[0], power) and not torch.compiler.is_compiling():
            parts.extend(_power_sum(t, power, False) for t in x)
        else:
            # Under torch.compile the lists are not split by dtype, so look at every tensor.
            acc = torch.float64 if any(t.dtype == torch.float64 for t in x) else torch.float32
            # One read per tensor (a fused multi-tensor kernel on CUDA): ‖x‖_p, then ^p.
            norms = torch._foreach_norm(x, power, dtype=acc)
            torch._foreach_pow_(norms, power)
            parts.extend(norms)
    return _sum_parts(parts)


# --------------------------------------------------------------------------------------------
# η_t
# --------------------------------------------------------------------------------------------


def _effective_lr(
    penalty_sum: Tensor | None,
    *,
    lr: float | Tensor,
    beta3: float,
    alpha1: float,
    like: Tensor,
) -> Tensor:
    """η_t = lr / (1 + min(β3·V, α1)) as a 0-dim tensor; no host synchronisation.

    Args:
        penalty_sum: V (Σ|x|^power), or None when the penalty is off (β3 = 0 or α1 = 0).
        lr: the maximal learning rate α0 (float or 1-element tensor).
        beta3: the penalty coefficient β3.
        alpha1: the cap α1 on the penalty.
        like: a parameter; gives the device and the precision when ``penalty_sum`` is None.

    Returns:
        A 0-dim tensor η_t (float32, or float64 when V or the parameters are float64).
    """
    if penalty_sum is None or not _needs_norm(beta3, alpha1):
        dtype = _acc_dtype(like.dtype) if penalty_sum is None else penalty_sum.dtype
        device = like.device if penalty_sum is None else penalty_sum.device
        if isinstance(lr, Tensor):
            # Not detached: with differentiable=True the step's graph reaches a Tensor lr.
            return lr.to(device=device, dtype=dtype).reshape(()).clone()
        return torch.full((), lr, dtype=dtype, device=device)
    penalty = torch.clamp(penalty_sum * beta3, max=alpha1)
    if isinstance(lr, Tensor):
        lr = lr.to(device=penalty.device).reshape(())
    return lr / (1 + penalty)


# --------------------------------------------------------------------------------------------
# Phase 2: the update, η_t as a 0-dim tensor.
# --------------------------------------------------------------------------------------------
