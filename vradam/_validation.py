"""Hyperparameter validation for VRAdam: ValueErrors that name the argument and the value."""

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor
from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

from vradam._moments import NORM_SCOPES, PENALIZE_OPTIONS


def _check_range(name: str, value: Any, ok: bool, requirement: str) -> None:
    if not ok:
        raise ValueError(f"Invalid {name} value: {value!r} ({requirement})")


def _is_real(value: Any) -> bool:
    """A real number: int, float, numpy's scalars, ...; not bool, not complex."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_real(name: str, value: Any, number: Any, ok: Callable[[Any], bool], need: str) -> None:
    """First that ``number`` (``value`` or its float) is a real number, then that ``ok(number)``."""
    _check_range(name, value, _is_real(number), "must be a real number")
    _check_range(name, value, ok(number), need)


def validate_hyperparameters(hparams: Mapping[str, Any]) -> None:
    """Check VRAdam's hyperparameters (a constructor's arguments or a merged param group).

    Numbers may be any :class:`numbers.Real` but bool (``numpy.float32(1e-8)`` is fine;
    :class:`VRAdam` stores them as Python floats).

    Args:
        hparams: mapping with the keys lr, betas, eps, weight_decay, beta3, alpha1,
            norm_scope, penalize and power.

    Raises:
        ValueError: naming the first invalid argument and its value, with "must be a real
            number" when its type is wrong and the required range when its value is.
    """
    lr = hparams["lr"]
    if isinstance(lr, Tensor):
        # PyTorch's shared message, which its generic optimizer tests look for.
        _check_range("lr", lr, lr.numel() == 1, "Tensor lr must be 1-element")
        _check_range("lr", lr, not lr.is_complex(), "must be a real number")
        lr_value = float(lr.detach().reshape(()).cpu())
    else:
        lr_value = lr
    _check_real("lr", lr, lr_value, lambda v: v >= 0, "must be >= 0")
    betas = hparams["betas"]
    _check_range(
        "betas", betas, isinstance(betas, tuple | list) and len(betas) == 2, "must be two floats"
    )
    for i, beta in enumerate(betas):
        _check_real(f"betas[{i}]", beta, beta, lambda v: 0 <= v < 1, "must be a float in [0, 1)")
    for name in ("eps", "weight_decay", "beta3", "alpha1"):
        value = hparams[name]
        _check_real(name, value, value, lambda v: v >= 0, "must be >= 0")
    power = hparams["power"]
    _check_real(
        "power", power, power, lambda v: v > 0 and math.isfinite(v), "must be a finite number > 0"
    )
    _check_range(
        "norm_scope",
        hparams["norm_scope"],
        hparams["norm_scope"] in NORM_SCOPES,
        f"one of {NORM_SCOPES}",
    )
    _check_range(
        "penalize",
        hparams["penalize"],
        hparams["penalize"] in PENALIZE_OPTIONS,
        f"one of {PENALIZE_OPTIONS}",
    )


def check_kernel_options(hparams: Mapping[str, Any], params: Any = None) -> None:
    """Check amsgrad, fused and compile_norm, and what the fused kernel cannot combine with.

    Args:
        hparams: a merged parameter group (or the constructor's arguments).
        params: the group's parameters (a tensor or a list of them), or None.

    Raises:
        ValueError: when amsgrad is not a bool, or fused or compile_norm is not None or a bool.
        RuntimeError: for ``fused=True`` with ``differentiable=True`` or ``foreach=True``, or
            with a parameter that is not floating point on a device with fused kernels.
    """
    for name, optional in (("amsgrad", False), ("fused", True), ("compile_norm", True)):
        value = hparams.get(name)
        ok = isinstance(value, bool) or (optional and value is None)
        _check_range(name, value, ok, "must be None, True or False" if optional else "a bool")
    if not hparams.get("fused"):
        return
    if hparams.get("differentiable"):
        raise RuntimeError("VRAdam: fused=True does not support differentiable=True")
    if hparams.get("foreach"):
        raise RuntimeError("VRAdam: fused=True and foreach=True cannot both be set")
    tensors = [params] if isinstance(params, Tensor) else list(params or [])
    devices = _get_fused_kernels_supported_devices()
    for i, p in enumerate(tensors):
        if not isinstance(p, Tensor):
            continue
        if p.device.type not in devices or not p.is_floating_point():
            raise RuntimeError(
                f"VRAdam: fused=True needs floating-point parameters on a device in {devices}; "
                f"parameter {i} is {p.dtype} on {p.device.type} (pass fused=False or None)"
            )


_FLOAT_KEYS = ("lr", "eps", "weight_decay", "beta3", "alpha1", "power")


def _as_floats(hparams: dict[str, Any]) -> None:
    """Store validated numbers as Python floats, in place (``numpy.float32``, ``Fraction``...).

    The kernels pass them to ``torch._foreach_*`` ops, which take Python numbers only.
    """
    for key in _FLOAT_KEYS:
        if key in hparams and not isinstance(hparams[key], Tensor):
            hparams[key] = float(hparams[key])
    if "betas" in hparams:
        hparams["betas"] = tuple(float(beta) for beta in hparams["betas"])
