"""VRAdam kernels: the for-loop (single-tensor) ground truth, the foreach (multi-tensor) twin.

The fused kernel (a norm pass plus ``torch._fused_adamw_``) is in :mod:`vradam._fused`.

A VRAdam step is two phases, because the effective learning rate η_t depends on a norm over
*every* parameter after its first moment has absorbed this step's gradient:

1. ``_moments``: advance the step counters and both moments, and return this tensor set's
   contribution Σ|x|^power to the penalty (x = first moment, or the raw gradient).
2. ``_update``: with η_t known (a 0-dim tensor, never read on the host), apply decoupled
   weight decay and the bias-corrected Adam update scaled by η_t.

:class:`~vradam.VRAdam` runs phase 1 over all parameter groups, combines the contributions
(globally or per group) and then runs phase 2; :func:`vradam` is the one-call functional
form for one flat set of tensors that share one set of hyperparameters.

How η_t enters without a host sync and without an extra pass over memory: AdamW scales its
update with a Python float (``addcdiv_(..., value=-step_size)``), which a tensor cannot be.
So we fold the scalar into the denominator, ``denom = sqrt(v)/a + b`` with the 0-dim tensors
``a = sqrt(1-β2^t)·s`` and ``b = ε/s`` where ``s = -η_t/(1-β1^t)``; then
``p.addcdiv_(m, denom)`` is exactly ``p - η_t·m̂/(sqrt(v̂)+ε)`` with AdamW's op count. Only
float16 takes a slower, overflow-safe path (``sqrt(v)/|s|`` can exceed float16's range).
When ``a`` is 0 (η_t = 0, e.g. a warm-up from lr 0) both become -inf, so the update is exactly
zero instead of 0/0 (see ``_scalars``).
"""

import math
from typing import Any, cast

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer, _get_value

from vradam._dispatch import _resolve_kernel
from vradam._fused import _fused_penalty, _fused_update
from vradam._moments import (
    PENALIZE_OPTIONS,
    _effective_lr,
    _multi_tensor_moments,
    _needs_norm,
    _single_tensor_moments,
)

__all__ = ["vradam"]


def _scalars(
    step: float | Tensor, eta: Tensor, *, beta1: float, beta2: float, eps: float
) -> tuple[Tensor, Tensor, Tensor, float | Tensor]:
    """(a, b, s, sqrt(1-β2^t)) with s = -η/(1-β1^t), a = sqrt(1-β2^t)·s, b = ε/s.

    When a is zero (η_t = 0: lr 0, a warm-up from 0; or η_t so small that a underflows),
    ``sqrt(v)/a + b`` would be 0/0 = NaN wherever v = 0 (and b = ε/0 is ±inf or NaN), so
    a and b become -inf instead: every denominator is then -inf and the update is exactly
    ±0, as AdamW's ``value=-0.0`` gives (with equal zero signs). Where a is non-zero they are
    untouched, bit for bit; the test is on 0-dim tensors, never read on the host.
    """
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    neg_step = -eta / bias_correction1
    a = bias_correction2_sqrt * neg_step
    b = eps / neg_step
    vanished = a == 0
    a = torch.where(vanished, -math.inf, a)
    b = torch.where(vanished, -math.inf, b)
    return a, b, neg_step, bias_correction2_sqrt


def _for_bucket(x: Any, device: torch.device | None, dtype: torch.dtype | None) -> Any:
    """A 0-dim scalar operand in the dtype of the tensors it scales, on accelerators.

    CUDA's fused ``_foreach_*_(tensors, scalar_tensor)`` kernels need the scalar in the
    tensors' dtype and otherwise fall back to one kernel launch per tensor. The CPU has no
    fused path and reads a 0-dim operand at full precision, so it is left alone there, as is
    float16 (its range and subnormals would distort η_t; it takes the per-tensor path).
    """
    if (
        isinstance(x, Tensor)
        and device is not None
        and device.type != "cpu"
        and dtype not in (None, torch.float16, x.dtype)
    ):
        return x.to(dtype)
    return x


def _foreach_scalars(
    steps: list[Tensor], eta: Tensor, *, beta1: float, beta2: float, eps: float, capturable: bool
) -> tuple[Any, Any, Any, Any]:
    """`_scalars` for a tensor list: one shared set when all steps agree (the norm), else lists."""
    if capturable or torch.compiler.is_compiling():
        per_tensor = [_scalars(t, eta, beta1=beta1, beta2=beta2, eps=eps) for t in steps]
    else:
        values = [_get_value(t) for t in steps]
        cache = {v: _scalars(v, eta, beta1=beta1, beta2=beta2, eps=eps) for v in set(values)}
        if len(cache) == 1:
            return cache[values[0]]
        per_tensor = [cache[v] for v in values]
    return tuple(list(column) for column in zip(*per_tensor, strict=True))  # type: ignore[return-value]


def _single_tensor_update(
    params: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    state_steps: list[Tensor],
    *,
    eta: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    capturable: bool,
    differentiable: bool,
    amsgrad: bool = False,
    max_exp_avg_sqs: list[Tensor] | None = None,
) -> None:
    per_device: dict[Any, tuple[Tensor, Tensor | None]] = {}
    per_step: dict[Any, tuple[Tensor, Tensor, Tensor, float | Tensor]] = {}
    for i, param in enumerate(params):
        exp_avg = exp_avgs[i]
        exp_avg_sq = exp_avg_sqs[i]
        if amsgrad:
            max_sq = cast(list[Tensor], max_exp_avg_sqs)[i]
            if differentiable:
                max_sq.copy_(torch.maximum(max_sq, exp_avg_sq))
            else:
                torch.maximum(max_sq, exp_avg_sq, out=max_sq)
            exp_avg_sq = max_sq

        if param.device not in per_device:
            eta_d = eta if eta.device == param.device else eta.to(param.device, non_blocking=True)
            decay = 1 - eta_d * weight_decay if weight_decay != 0 else None
            per_device[param.device] = (eta_d, decay)
        eta_d, decay = per_device[param.device]

        if decay is not None:
            param.mul_(decay)

        step = state_steps[i] if capturable or differentiable else _get_value(state_steps[i])
        if isinstance(step, Tensor):
            a, b, neg_step, bc2_sqrt = _scalars(step, eta_d, beta1=beta1, beta2=beta2, eps=eps)
        else:
            key = (param.device, step)
            if key not in per_step:
                per_step[key] = _scalars(step, eta_d, beta1=beta1, beta2=beta2, eps=eps)
            a, b, neg_step, bc2_sqrt = per_step[key]

        if param.dtype == torch.float16:
            # sqrt(v)/a can overflow float16; scale the quotient instead.
            denom = (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
            param.add_(exp_avg.div(denom).mul_(neg_step))
        else:
            denom = (exp_avg_sq.sqrt() / a).add_(b)
            param.addcdiv_(exp_avg.clone() if differentiable else exp_avg, denom)


def _multi_tensor_update(
    params: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    state_steps: list[Tensor],
    *,
    eta: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    capturable: bool,
    differentiable: bool,
    amsgrad: bool = False,
    max_exp_avg_sqs: list[Tensor] | None = None,
) -> None:
    if differentiable:
        raise RuntimeError("VRAdam's foreach kernel does not support differentiable=True")
    maxs = max_exp_avg_sqs if amsgrad and max_exp_avg_sqs is not None else []
    grouped = Optimizer._group_tensors_by_device_and_dtype(
        [params, exp_avgs, exp_avg_sqs, state_steps, maxs]  # type: ignore[list-item]
    )
    for (device, dtype), (
        (device_params_, device_exp_avgs_, device_exp_avg_sqs_, device_steps_, device_maxs_),
        _,
    ) in grouped.items():
        device_params = cast(list[Tensor], device_params_)
        device_exp_avgs = cast(list[Tensor], device_exp_avgs_)
        device_exp_avg_sqs = cast(list[Tensor], device_exp_avg_sqs_)
        device_steps = cast(list[Tensor], device_steps_)

        eta_d = eta
        if device is not None and eta.device != device:
            eta_d = eta.to(device, non_blocking=True)

        if weight_decay != 0:
            torch._foreach_mul_(device_params, _for_bucket(1 - eta_d * weight_decay, device, dtype))

        a_, b_, s_, c_ = _foreach_scalars(
            device_steps, eta_d, beta1=beta1, beta2=beta2, eps=eps, capturable=capturable
        )
        a_, b_ = _for_bucket(a_, device, dtype), _for_bucket(b_, device, dtype)
        if amsgrad:
            device_maxs = cast(list[Tensor], device_maxs_)
            torch._foreach_maximum_(device_maxs, device_exp_avg_sqs)
            device_exp_avg_sqs = device_maxs
        denom = torch._foreach_sqrt(device_exp_avg_sqs)
        if dtype == torch.float16 or (
            dtype is None and any(p.dtype == torch.float16 for p in device_params)
        ):
            # Overflow-safe path: sqrt(v)/a can exceed float16's range.
            torch._foreach_div_(denom, c_)  # type: ignore[arg-type]
            torch._foreach_add_(denom, eps)
            update = torch._foreach_div(device_exp_avgs, denom)
            torch._foreach_mul_(update, s_)
            torch._foreach_add_(device_params, update)
        else:
            torch._foreach_div_(denom, a_)
            torch._foreach_add_(denom, b_)
            torch._foreach_addcdiv_(device_params, device_exp_avgs, denom)


# --------------------------------------------------------------------------------------------
# Dispatch and the functional API.
# --------------------------------------------------------------------------------------------


def _moments(*lists: list[Tensor], foreach: bool, **options: Any) -> Tensor | None:
    """Phase 1 with the chosen kernel; returns Σ|x|^power or None (see the kernels)."""
    return (_multi_tensor_moments if foreach else _single_tensor_moments)(*lists, **options)


def _update(*lists: list[Tensor], foreach: bool, **options: Any) -> None:
    """Phase 2 with the chosen kernel (see the kernels)."""
    (_multi_tensor_update if foreach else _single_tensor_update)(*lists, **options)


def vradam(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    state_steps: list[Tensor],
    foreach: bool | None = None,
    capturable: bool = False,
    differentiable: bool = False,
    fused: bool | None = None,
    grad_scale: Tensor | None = None,
    found_inf: Tensor | None = None,
    *,
    beta1: float,
    beta2: float,
    beta3: float,
    alpha1: float,
    lr: float | Tensor,
    weight_decay: float,
    eps: float,
    maximize: bool,
    power: float = 2.0,
    penalize: str = "velocity",
    amsgrad: bool = False,
    max_exp_avg_sqs: list[Tensor] | None = None,
    compile_norm: bool | None = None,
) -> Tensor:
    r"""Functional API that performs one VRAdam step in place on one flat set of tensors.

    The penalty norm is taken over all tensors passed (global for this call). For several
    parameter groups with their own hyperparameters, use :class:`~vradam.VRAdam`, which
    computes the norm across groups. See :class:`~vradam.VRAdam` for the algorithm.

    Args:
        params: parameters, updated in place.
        grads: their gradients.
        exp_avgs: first moments (the velocity), updated in place.
        exp_avg_sqs: second moments, updated in place.
        state_steps: per-parameter step counters (tensors), incremented in place.
        foreach: multi-tensor kernel; None picks PyTorch's default for these tensors.
        capturable: keep bias corrections on device (step counters on the params' device).
        differentiable: let autograd record the step (for-loop kernel only).
        fused: the fused kernel (step counters on the params' devices); None picks it as
            :class:`~vradam.VRAdam` does, where the step counters are on those devices.
        grad_scale: GradScaler's scale, divided out of the gradients (fused kernel only).
        found_inf: non-zero to skip the step (fused kernel only).
        beta1: first-moment coefficient β1.
        beta2: second-moment coefficient β2.
        beta3: velocity penalty coefficient β3.
        alpha1: cap α1 on the penalty; η_t ≥ lr/(1+α1).
        lr: maximal learning rate α0.
        weight_decay: decoupled weight decay λ, scaled by η_t.
        eps: term added to the denominator.
        maximize: maximise the objective instead.
        power: exponent p of the penalty Σ|x|^p (2: squared L2 norm).
        penalize: ``"velocity"`` (the first moment, the paper) or ``"gradient"``.
        amsgrad: use the running maximum of the second moment (AMSGrad).
        max_exp_avg_sqs: those maxima, updated in place (needed when ``amsgrad``).
        compile_norm: for the fused kernel, compile its norm pass (None: for large sets).

    Returns:
        η_t, the effective learning rate of this step, as a 0-dim tensor.

    Raises:
        RuntimeError: on sparse or complex gradients, for the foreach kernel with
            ``differentiable=True``, for ``grad_scale``/``found_inf`` without the fused kernel,
            or for ``fused=True`` with what it cannot do (see ``VRAdam``).
        ValueError: for an unknown ``penalize`` value, a list-length mismatch, or
            ``amsgrad`` without ``max_exp_avg_sqs``.
    """
    if penalize not in PENALIZE_OPTIONS:
        raise ValueError(
            f"Invalid penalize value: {penalize!r} (expected one of {PENALIZE_OPTIONS})"
        )
    if not len(params) == len(grads) == len(exp_avgs) == len(exp_avg_sqs) == len(state_steps):
        raise ValueError("params, grads, exp_avgs, exp_avg_sqs and state_steps differ in length")
    if amsgrad and (max_exp_avg_sqs is None or len(max_exp_avg_sqs) != len(params)):
        raise ValueError("amsgrad=True needs max_exp_avg_sqs, one per parameter")
    if not params:
        raise ValueError("vradam() got no tensors")
    for i, grad in enumerate(grads):
        if grad.is_sparse or grad.is_complex():
            kind = "sparse" if grad.is_sparse else "complex"
            raise RuntimeError(f"VRAdam does not support {kind} gradients (tensor {i})")
    on_device = all(s.device == p.device for s, p in zip(state_steps, params, strict=True))
    kernel = _resolve_kernel(
        fused if fused or on_device else False,
        foreach,
        params,
        differentiable=differentiable,
        eps=eps,
    )
    if kernel != "fused" and (grad_scale is not None or found_inf is not None):
        raise RuntimeError("VRAdam: grad_scale and found_inf need the fused kernel (fused=True)")
    needs = _needs_norm(beta3, alpha1)
    maxs = max_exp_avg_sqs if amsgrad else None
    if kernel == "fused":
        penalty_sum = None
        if needs:
            penalty_sum = _fused_penalty(
                grads,
                exp_avgs,
                beta1=beta1,
                power=power,
                penalize=penalize,
                maximize=maximize,
                grad_scale=grad_scale,
                compile_norm=compile_norm,
            )
        eta = _effective_lr(penalty_sum, lr=lr, beta3=beta3, alpha1=alpha1, like=params[0])
        _fused_update(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            cast(list[Tensor], maxs or []),
            state_steps,
            eta=eta,
            beta1=beta1,
            beta2=beta2,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            grad_scale=grad_scale,
            found_inf=found_inf,
        )
        return eta
    use_foreach = kernel == "foreach"
    penalty_sum = _moments(
        grads,
        exp_avgs,
        exp_avg_sqs,
        state_steps,
        foreach=use_foreach,
        beta1=beta1,
        beta2=beta2,
        power=power if needs else None,
        penalize=penalize,
        maximize=maximize,
        differentiable=differentiable,
    )
    eta = _effective_lr(penalty_sum, lr=lr, beta3=beta3, alpha1=alpha1, like=params[0])
    _update(
        params,
        exp_avgs,
        exp_avg_sqs,
        state_steps,
        foreach=use_foreach,
        eta=eta,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        weight_decay=weight_decay,
        capturable=capturable,
        differentiable=differentiable,
        amsgrad=amsgrad,
        max_exp_avg_sqs=maxs,
    )
    return eta
