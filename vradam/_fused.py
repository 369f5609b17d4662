"""VRAdam's fused kernel: one read-only norm pass, then PyTorch's fused AdamW kernel.

VRAdam is AdamW whose learning rate is η_t, weight decay included; η_t needs
V = Σ|x|^p of the *updated* first moment x = β1·m + (1-β1)·g (or of the gradient) before any
parameter moves. That sum can be taken without writing m, so a step is:

1. ``_fused_penalty``: V from m and g (read once each; m is not written);
2. η_t = lr / (1 + min(β3·V, α1)) as a 0-dim tensor (:func:`vradam._moments._effective_lr`);
3. ``_fused_update``: advance the step counters and call ``torch._fused_adamw_`` with the
   tensor learning rate η_t; it updates both moments and applies ``p·(1-η_t·λ)`` and the
   bias-corrected step, exactly as VRAdam's for-loop kernel does.

That is 9 words of memory traffic per parameter against fused AdamW's 7 (a floor of 9/7).
The norm pass has two implementations: an eager one (a cache-sized scratch block per chunk of a
large tensor, foreach ops over the small ones; on accelerators foreach ops over all) and a
compiled one (``torch.compile``) that fuses the linear combination into the reduction. The compiled
one is used where it pays (see ``_use_compiled``) and the eager one wherever compilation is
unavailable or fails (with one warning).
"""

import logging
from typing import Any, cast

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer

from vradam._moments import _acc_dtype

__all__: list[str] = []

logger = logging.getLogger(__name__)

# Tensors up to SMALL elements go through foreach ops; larger ones are cut into BLOCK-element
# chunks whose scratch copy stays in the CPU's cache (so m and g are read once from memory).
SMALL = 1 << 16
BLOCK = 1 << 18
# compile_norm=None compiles the norm pass from this many elements per (device, dtype) bucket:
# below it, compile time (seconds) outweighs what it saves per step.
COMPILE_MIN_NUMEL = 1 << 20

_compile_failed: set[str] = set()


def _penalty_body(
    exp_avgs: list[Tensor],
    grads: list[Tensor],
    coeff: Tensor,
    beta1: float,
    power: float,
    velocity: bool,
) -> Tensor:
    """Σ|x|^power with x = β1·m + coeff·g (velocity) or coeff·g, in float32 (float64 for float64).

    Written for ``torch.compile`` (one fused read of m and g per tensor); also correct eagerly.
    """
    acc = _acc_dtype(grads[0].dtype)
    total = torch.zeros((), dtype=acc, device=grads[0].device)
    c = coeff.to(acc)
    for m, g in zip(exp_avgs, grads, strict=True):
        x = g.to(acc) * c
        if velocity:
            x = x + beta1 * m.to(acc)
        total = total + (x * x if power == 2 else x.abs().pow(power)).sum()
    return total


_compiled_penalty = torch.compile(_penalty_body, dynamic=False)


def _use_compiled(compile_norm: bool | None, tensors: list[Tensor]) -> bool:
    device = tensors[0].device.type
    if compile_norm is False or device in _compile_failed or torch.compiler.is_compiling():
        return False
    if not torch._dynamo.is_dynamo_supported():
        return False
    if compile_norm is None:
        return sum(t.numel() for t in tensors) >= COMPILE_MIN_NUMEL
    return True


def _eager_cpu_velocity(
    exp_avgs: list[Tensor], grads: list[Tensor], weight: float, scale: Tensor | None, power: float
) -> list[Tensor]:
    """Per-chunk Σ|β1·m + (1-β1)·s·g|^p on the CPU; the scratch block stays in cache."""
    acc = _acc_dtype(grads[0].dtype)
    parts: list[Tensor] = []
    small = [(m, g) for m, g in zip(exp_avgs, grads, strict=True) if m.numel() <= SMALL]
    if small:
        ms, gs = [m for m, _ in small], [g for _, g in small]
        if scale is None:
            xs = torch._foreach_lerp(ms, gs, weight)
        else:
            xs = torch._foreach_mul(gs, scale)
            torch._foreach_lerp_(xs, ms, 1 - weight)
        norms = torch._foreach_norm(xs, power, dtype=acc)
        parts.append(torch.stack(torch._foreach_pow(norms, power)).sum())
    large = [(m, g) for m, g in zip(exp_avgs, grads, strict=True) if m.numel() > SMALL]
    if not large:
        return parts
    scratch = torch.empty(BLOCK, dtype=grads[0].dtype)
    dot = power == 2 and acc == grads[0].dtype
    for m, g in large:
        for m_block, g_block in zip(
            m.reshape(-1).split(BLOCK), g.reshape(-1).split(BLOCK), strict=True
        ):
            x = scratch[: m_block.numel()]
            if scale is None:
                torch.lerp(m_block, g_block, weight, out=x)
            else:
                torch.mul(g_block, scale, out=x)
                x.lerp_(m_block, 1 - weight)
            if dot:
                parts.append(torch.dot(x, x))
            else:
                parts.append(torch.linalg.vector_norm(x, power, dtype=acc).pow(power))
    return parts


def _eager_penalty(
    exp_avgs: list[Tensor],
    grads: list[Tensor],
    *,
    beta1: float,
    power: float,
    velocity: bool,
    sign: float,
    inv_scale: Tensor | None,
) -> Tensor:
    acc = _acc_dtype(grads[0].dtype)
    if not velocity:  # |s·g|^p = |g|^p·|s|^p: no temporary at all
        norms = torch._foreach_norm(grads, power, dtype=acc)
        total = torch.stack(torch._foreach_pow(norms, power)).sum()
        return total if inv_scale is None else total * inv_scale.to(acc).abs().pow(power)
    scale: Tensor | None = None
    if inv_scale is not None:
        scale = inv_scale * sign
    elif sign != 1:
        scale = torch.tensor(sign, dtype=grads[0].dtype, device=grads[0].device)
    if grads[0].device.type == "cpu":
        return torch.stack(_eager_cpu_velocity(exp_avgs, grads, 1 - beta1, scale, power)).sum()
    if scale is None:
        xs = torch._foreach_lerp(exp_avgs, grads, 1 - beta1)
    else:
        xs = torch._foreach_mul(grads, scale.to(grads[0].dtype))
        torch._foreach_lerp_(xs, exp_avgs, beta1)
    norms = torch._foreach_norm(xs, power, dtype=acc)
    return torch.stack(torch._foreach_pow(norms, power)).sum()


def _fused_penalty(
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    *,
    beta1: float,
    power: float,
    penalize: str,
    maximize: bool,
    grad_scale: Tensor | None,
    compile_norm: bool | None,
) -> Tensor:
    """V's contribution of these tensors, before any moment is written (m is only read).

    Args:
        grads: the gradients (scaled by ``grad_scale`` when it is given).
        exp_avgs: the first moments of the previous step.
        beta1: β1.
        power: the exponent p.
        penalize: ``"velocity"`` (x = β1·m + (1-β1)·g) or ``"gradient"`` (x = g).
        maximize: use -g.
        grad_scale: GradScaler's scale (gradients are divided by it), or None.
        compile_norm: True/False forces the compiled/eager pass; None compiles large buckets.

    Returns:
        Σ|x|^p as a 0-dim tensor on the first gradient's device (float32, float64 if any
        bucket is float64).
    """
    velocity = penalize == "velocity"
    sign = -1.0 if maximize else 1.0
    grouped = Optimizer._group_tensors_by_device_and_dtype([grads, exp_avgs])  # type: ignore[list-item]
    parts: list[Tensor] = []
    for (device, _), ((device_grads_, device_exp_avgs_), _) in grouped.items():
        device_grads = cast(list[Tensor], device_grads_)
        device_exp_avgs = cast(list[Tensor], device_exp_avgs_)
        inv_scale = None
        if grad_scale is not None:
            inv_scale = grad_scale.to(device, non_blocking=True).double().reciprocal().float()
        options: dict[str, Any] = {"beta1": beta1, "power": power, "velocity": velocity}
        if _use_compiled(compile_norm, device_grads):
            weight = (1 - beta1) * sign if velocity else sign
            coeff = torch.full((), weight, dtype=torch.float32, device=device_grads[0].device)
            if inv_scale is not None:
                coeff = coeff * inv_scale
            try:
                parts.append(_compiled_penalty(device_exp_avgs, device_grads, coeff, **options))
                continue
            except Exception as error:  # any compiler failure: fall back to eager
                _compile_failed.add(device_grads[0].device.type)
                logger.warning("VRAdam: compiling the fused norm pass failed (%s); eager", error)
        parts.append(
            _eager_penalty(
                device_exp_avgs,
                device_grads,
                sign=sign,
                inv_scale=inv_scale,
                **options,
            )
        )
    first = grads[0].device
    if len(parts) == 1:
        return parts[0]
    dtype = torch.float64 if any(p.dtype == torch.float64 for p in parts) else torch.float32
    return torch.stack([p.to(device=first, dtype=dtype) for p in parts]).sum()


def _fused_update(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    max_exp_avg_sqs: list[Tensor],
    state_steps: list[Tensor],
    *,
    eta: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    maximize: bool,
    grad_scale: Tensor | None,
    found_inf: Tensor | None,
) -> None:
    """Advance the step counters, then one ``torch._fused_adamw_`` per (device, dtype) with lr η_t.

    As ``torch.optim.AdamW(fused=True)``: with ``found_inf`` non-zero the kernel leaves
    parameters and moments alone and the step counters are put back.
    """
    grouped = Optimizer._group_tensors_by_device_and_dtype(
        [params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps]  # type: ignore[list-item]
    )
    per_device: dict[torch.device, tuple[Tensor, Tensor | None, Tensor | None]] = {}
    for (device, _), ((d_params, d_grads, d_avgs, d_sqs, d_maxs, d_steps), _) in grouped.items():
        if device not in per_device:
            per_device[device] = tuple(  # type: ignore[assignment]
                None if t is None else t.to(device, non_blocking=True)
                for t in (eta, grad_scale, found_inf)
            )
        eta_d, scale_d, inf_d = per_device[device]
        steps = cast(list[Tensor], d_steps)
        torch._foreach_add_(steps, 1)
        torch._fused_adamw_(
            cast(list[Tensor], d_params),
            cast(list[Tensor], d_grads),
            cast(list[Tensor], d_avgs),
            cast(list[Tensor], d_sqs),
            cast(list[Tensor], d_maxs) if amsgrad else [],
            steps,
            amsgrad=amsgrad,
            lr=eta_d,
            beta1=beta1,
            beta2=beta2,
            weight_decay=weight_decay,
            eps=eps,
            maximize=maximize,
            grad_scale=scale_d,
            found_inf=inf_d,
        )
        if inf_d is not None:
            torch._foreach_sub_(steps, [inf_d] * len(steps))
