"""The optimizer registry: names → import strings and declared hyperparameters.

Built like timm's ``_optim_factory``: frozen records, lazy import strings, so listing
optimizers and validating a study never imports torch. ``build_optimizer`` turns the
shared hyperparameter names into constructor arguments:

* ``beta1`` and ``beta2`` become ``betas=(beta1, beta2)``;
* ``weight_decay`` goes to the decayed parameter group only (see
  :mod:`workers.optimizers.groups`, the same rule for every optimizer);
* every other name is passed under its own name (``lr``, ``eps``, ``momentum``,
  ``nesterov``, ``alpha``, ``beta3``, ``alpha1``, ...).

A user's own optimizer is named by import string (``"package.module:Class"``): it gets
an :class:`OptimizerInfo` with ``open_hparams=True``, its hyperparameters pass through
unchecked (``beta1``/``beta2`` still become ``betas``), and it must accept a list of
parameter groups as its first argument, like every ``torch.optim`` optimizer.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from labcore.errors import NotFoundError, SpecError
from workers.optimizers.info import HParam, OptimizerInfo

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "OPTIMIZERS",
    "build_optimizer",
    "get_optimizer_info",
    "list_optimizers",
    "resolve_hparams",
]


def _lr(default: float) -> HParam:
    return HParam("lr", default, low=0.0, log=True, doc="learning rate (VRAdam: the maximal α0)")


def _wd(default: float, doc: str = "decoupled weight decay λ") -> HParam:
    return HParam("weight_decay", default, low=0.0, doc=doc)


def _beta(name: str, default: float, doc: str) -> HParam:
    return HParam(name, default, low=0.0, high=1.0, high_inclusive=False, doc=doc)


def _eps(default: float) -> HParam:
    return HParam("eps", default, low=0.0, log=True, doc="denominator term for stability")


_BETA1 = _beta("beta1", 0.9, "first-moment (momentum) EMA coefficient")
_BETA2 = _beta("beta2", 0.999, "second-moment EMA coefficient")
_L2 = "L2 penalty added to the gradient (coupled weight decay)"


def _entry(
    name: str, import_path: str, description: str, *hparams: HParam, **extra: Any
) -> OptimizerInfo:
    return OptimizerInfo(name, import_path, tuple(hparams), description, dict(extra))


OPTIMIZERS: dict[str, OptimizerInfo] = {
    info.name: info
    for info in (
        _entry(
            "vradam",
            "vradam:VRAdam",
            "Velocity-Regularized Adam (arXiv 2505.13196): AdamW with a global "
            "velocity-dependent learning rate η_t = lr / (1 + min(β3·‖v_t‖², α1))",
            _lr(1e-3),
            _BETA1,
            _BETA2,
            _eps(1e-8),
            _wd(1e-2, "decoupled weight decay λ, scaled by η_t (AdamW's default)"),
            HParam("beta3", 1.0, low=0.0, doc="velocity penalty β3 (0 gives AdamW)"),
            HParam("alpha1", 10.0, low=0.0, doc="penalty cap α1: η_t >= lr / (1 + α1)"),
            HParam(
                "norm_scope",
                "global",
                kind="choice",
                choices=("global", "group"),
                doc="velocity norm over all parameters (paper) or per group (authors' code)",
            ),
            HParam(
                "penalize",
                "velocity",
                kind="choice",
                choices=("velocity", "gradient"),
                doc="penalise ‖v_t‖ (paper) or ‖g_t‖ (authors' older code, normgrad=True)",
            ),
            HParam(
                "power", 2.0, low=0.0, doc="exponent p > 0 of Σ|v|^p (paper's Table 4 ablation)"
            ),
        ),
        _entry(
            "adamw",
            "torch.optim:AdamW",
            "AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay",
            _lr(1e-3),
            _BETA1,
            _BETA2,
            _eps(1e-8),
            _wd(1e-2),
        ),
        _entry(
            "adam",
            "torch.optim:Adam",
            "Adam (Kingma & Ba 2015) with coupled L2 weight decay, as the paper's code used",
            _lr(1e-3),
            _BETA1,
            _BETA2,
            _eps(1e-8),
            _wd(0.0, _L2),
        ),
        _entry(
            "sgd",
            "torch.optim:SGD",
            "SGD with (Nesterov) momentum; the paper's baseline is Nesterov with momentum 0.9",
            _lr(1e-3),
            HParam("momentum", 0.9, low=0.0, high=1.0, high_inclusive=False, doc="momentum"),
            HParam("nesterov", True, kind="bool", doc="Nesterov momentum (needs momentum > 0)"),
            _wd(0.0, _L2),
        ),
        _entry(
            "rmsprop",
            "torch.optim:RMSprop",
            "RMSprop (Hinton 2012), optionally with momentum",
            _lr(1e-2),
            HParam("alpha", 0.99, low=0.0, high=1.0, high_inclusive=False, doc="smoothing"),
            _eps(1e-8),
            HParam("momentum", 0.0, low=0.0, high=1.0, high_inclusive=False, doc="momentum"),
            _wd(0.0, _L2),
        ),
        _entry(
            "radam",
            "torch.optim:RAdam",
            "Rectified Adam (Liu et al. 2020)",
            _lr(1e-3),
            _BETA1,
            _BETA2,
            _eps(1e-8),
            _wd(0.0, "weight decay (coupled L2 unless decoupled_weight_decay)"),
            HParam("decoupled_weight_decay", False, kind="bool", doc="AdamW-style decay"),
        ),
        _entry(
            "nadam",
            "torch.optim:NAdam",
            "Adam with Nesterov momentum (Dozat 2016)",
            _lr(2e-3),
            _BETA1,
            _BETA2,
            _eps(1e-8),
            _wd(0.0, "weight decay (coupled L2 unless decoupled_weight_decay)"),
            HParam("momentum_decay", 4e-3, low=0.0, doc="momentum decay ψ"),
            HParam("decoupled_weight_decay", False, kind="bool", doc="AdamW-style decay"),
        ),
        _entry(
            "adagrad",
            "torch.optim:Adagrad",
            "Adagrad (Duchi et al. 2011)",
            _lr(1e-2),
            _eps(1e-10),
            _wd(0.0, _L2),
        ),
        _entry(
            "lion",
            "workers.optimizers.lion:Lion",
            "Lion (Chen et al. 2023): sign of interpolated momentum, decoupled weight decay; "
            "use a 3-10x smaller lr and larger weight decay than AdamW",
            _lr(1e-4),
            _BETA1,
            _beta("beta2", 0.99, "momentum EMA coefficient"),
            _wd(0.0),
        ),
    )
}


def _check_sgd(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    if values["nesterov"] and values["momentum"] <= 0:
        return [("hparams.nesterov", "Nesterov momentum needs momentum > 0")]
    return []


def _check_vradam(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    if values["power"] <= 0:
        return [("hparams.power", f"must be > 0, got {values['power']!r}")]
    return []


# Constraints between values, or strict bounds HParam cannot express.
_CROSS_CHECKS = {"sgd": _check_sgd, "vradam": _check_vradam}


def list_optimizers() -> list[OptimizerInfo]:
    """Return every registered optimizer, in registration order."""
    return list(OPTIMIZERS.values())


def _is_import_string(name: str) -> bool:
    module, sep, attr = name.partition(":")
    return bool(sep) and attr.isidentifier() and all(p.isidentifier() for p in module.split("."))


def get_optimizer_info(name: str) -> OptimizerInfo:
    """Return the record of a registered optimizer, or one for a user import string.

    Args:
        name: A registered name (``"adamw"``) or ``"package.module:Class"``. An import
            string is not imported here (that happens in :func:`build_optimizer`).

    Returns:
        The registry record; for an import string a record with ``open_hparams=True``.

    Raises:
        NotFoundError: For an unknown name, listing the registered ones.
    """
    if name in OPTIMIZERS:
        return OPTIMIZERS[name]
    if _is_import_string(name):
        return OptimizerInfo(name, name, (), f"user optimizer {name}", open_hparams=True)
    known = ", ".join(OPTIMIZERS)
    raise NotFoundError(
        f"unknown optimizer {name!r}; registered: {known} (or an import string 'module:Class')"
    )


def resolve_hparams(info: OptimizerInfo, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``hparams`` against ``info`` and fill in the defaults.

    Args:
        info: The optimizer's record.
        hparams: Values by shared name; missing ones take the declared default.

    Returns:
        Every declared hyperparameter with its value (for an open optimizer: ``hparams``).

    Raises:
        SpecError: One ``(hparams.NAME, message)`` per unknown name or invalid value.
    """
    if info.open_hparams:
        return dict(hparams)
    errors: list[tuple[str, str]] = []
    for key, value in hparams.items():
        hp = info.hparam(key)
        if hp is None:
            known = ", ".join(h.name for h in info.hparams)
            errors.append((f"hparams.{key}", f"{info.name} has no such hyperparameter ({known})"))
        elif (msg := hp.check(value)) is not None:
            errors.append((f"hparams.{key}", msg))
        elif hp.kind == "float" and not math.isfinite(float(value)):
            errors.append((f"hparams.{key}", f"must be finite, got {value!r}"))
    values = {**info.defaults(), **hparams}
    if not errors and info.name in _CROSS_CHECKS:
        errors.extend(_CROSS_CHECKS[info.name](values))
    if errors:
        raise SpecError(errors)
    return values


def _import(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise NotFoundError(f"cannot import optimizer module {module_name!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise NotFoundError(f"module {module_name!r} has no attribute {attr!r}") from exc


def constructor_kwargs(info: OptimizerInfo, values: Mapping[str, Any]) -> dict[str, Any]:
    """Map shared hyperparameter names to the optimizer's constructor arguments.

    ``beta1``/``beta2`` become ``betas`` (a missing one takes 0.9 / 0.999 for a user
    optimizer); ``weight_decay`` is left to the parameter groups; the rest pass as is.
    """
    kwargs = {k: v for k, v in values.items() if k not in ("beta1", "beta2", "weight_decay")}
    if "beta1" in values or "beta2" in values:
        kwargs["betas"] = (float(values.get("beta1", 0.9)), float(values.get("beta2", 0.999)))
    return {**kwargs, **info.extra_kwargs}


def build_optimizer(
    name: str, model: nn.Module, hparams: Mapping[str, Any]
) -> torch.optim.Optimizer:
    """Build optimizer ``name`` over ``model``'s parameters.

    Args:
        name: A registered name or a user import string ``"package.module:Class"``.
        model: The model whose trainable parameters are optimised, split into decayed
            and non-decayed groups by :func:`workers.optimizers.groups.param_groups`.
        hparams: Hyperparameters by shared name; missing ones take the defaults.

    Returns:
        The optimizer.

    Raises:
        NotFoundError: Unknown optimizer, or an import string that does not import.
        SpecError: An unknown hyperparameter or an invalid value.
        TypeError: An import string that is not a ``torch.optim.Optimizer`` subclass,
            or a hyperparameter the user's optimizer does not accept.
        ValueError: From the optimizer's constructor, like ``torch.optim``.
    """
    import torch

    from workers.optimizers.groups import param_groups

    info = get_optimizer_info(name)
    values = resolve_hparams(info, hparams)
    cls = _import(info.import_path)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise TypeError(f"{info.import_path} is not a torch.optim.Optimizer subclass")
    wd = values.get("weight_decay")
    groups = param_groups(model, None if wd is None else float(wd))
    return cls(groups, **constructor_kwargs(info, values))
