"""Which VRAdam kernel runs: fused, foreach (multi-tensor) or the for-loop ground truth."""

import torch
from torch import Tensor
from torch.optim.optimizer import _default_to_fused_or_foreach, _foreach_supported_types
from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

KERNELS = ("fused", "foreach", "loop")


def _resolve_foreach(foreach: bool | None, params: list[Tensor], differentiable: bool) -> bool:
    """PyTorch's default: foreach where all tensors are on a foreach device (CUDA), else loop."""
    if foreach is None:
        _, foreach = _default_to_fused_or_foreach(params, differentiable, use_fused=False)
    if foreach and torch.jit.is_scripting():
        raise RuntimeError("torch.jit.script not supported with foreach optimizers")
    return bool(foreach)


def _fused_supported(params: list[Tensor]) -> bool:
    """Whether ``torch._fused_adamw_`` takes these tensors (floating point, a fused device)."""
    devices = _get_fused_kernels_supported_devices()
    return all(
        type(p) in _foreach_supported_types
        and p.device.type in devices
        and torch.is_floating_point(p)
        and not torch.is_complex(p)
        for p in params
    )


def _resolve_kernel(
    fused: bool | None,
    foreach: bool | None,
    params: list[Tensor],
    *,
    differentiable: bool,
    eps: float,
) -> str:
    """``"fused"``, ``"foreach"`` or ``"loop"`` for these parameters (see VRAdam's ``fused``).

    ``fused=None`` with ``foreach=None`` picks the fused kernel wherever it is correct: every
    tensor floating point on a fused device, not differentiable, ``eps > 0`` (the fused AdamW
    kernel gives 0·(0/0) = NaN on never-updated coordinates at eps = 0, the other kernels do
    not) and not inside ``torch.jit.script``. Otherwise PyTorch's foreach default.

    Raises:
        RuntimeError: for ``fused=True`` with ``differentiable=True`` or ``foreach=True``, or
            with parameters that the fused kernel cannot take (naming them).
    """
    if fused:
        if differentiable:
            raise RuntimeError("VRAdam: fused=True does not support differentiable=True")
        if foreach:
            raise RuntimeError("VRAdam: fused=True and foreach=True cannot both be set")
        if torch.jit.is_scripting():
            raise RuntimeError("torch.jit.script not supported with fused optimizers")
        for i, p in enumerate(params):
            if not _fused_supported([p]):
                raise RuntimeError(
                    "VRAdam: fused=True needs floating-point parameters on a device in "
                    f"{_get_fused_kernels_supported_devices()}; tensor {i} is {p.dtype} on "
                    f"{p.device.type} (pass fused=False)"
                )
        return "fused"
    if (
        fused is None
        and foreach is None
        and not differentiable
        and eps > 0
        and not torch.jit.is_scripting()
        and _fused_supported(params)
    ):
        return "fused"
    return "foreach" if _resolve_foreach(foreach, params, differentiable) else "loop"
