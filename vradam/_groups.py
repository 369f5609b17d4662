"""Parameter-group helpers of VRAdam: defaults for old state dicts, checks, η_t bookkeeping."""

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

# Keys older state dicts may lack, with the values that reproduce their behaviour.
GROUP_DEFAULTS: dict[str, Any] = {
    "beta3": 1.0,
    "alpha1": 10.0,
    "norm_scope": "global",
    "penalize": "velocity",
    "power": 2.0,
    "amsgrad": False,
    "maximize": False,
    "foreach": None,
    "capturable": False,
    "differentiable": False,
    "fused": None,
    "compile_norm": None,
}


def check_global_groups(groups: list[dict[str, Any]]) -> None:
    """Global-scope groups pool one V, so they must define V the same way.

    Raises:
        ValueError: when they disagree on power or penalize.
    """
    kinds = {(float(g["power"]), g["penalize"]) for g in groups if g["norm_scope"] == "global"}
    if len(kinds) > 1:
        raise ValueError(
            "Invalid power/penalize values: parameter groups with norm_scope='global' "
            f"share one norm and must agree, got {sorted(kinds)}"
        )


def describe(group: Mapping[str, Any], group_index: int, index: int) -> str:
    """How an error message names a parameter: its name, else its index and shape."""
    names = group.get("param_names")
    if names is not None:
        return f"parameter {names[index]!r}"
    shape = tuple(group["params"][index].shape)
    return f"parameter param_groups[{group_index}]['params'][{index}] (shape {shape})"


def record_effective_lr(group: dict[str, Any], eta: Tensor, found_inf: Tensor | None) -> None:
    """Write η_t into ``group["effective_lr"]`` in place (a skipped step keeps the old one).

    In place, not by assignment: ``torch.compile(opt.step)`` writes back a param group
    that step() assigned to, and dynamo's copy carries ``capturable=True``.
    """
    if group["differentiable"]:
        group["effective_lr"] = eta  # keep the autograd graph of this step
        return
    current = group["effective_lr"]
    if found_inf is not None:
        eta = torch.where(found_inf.to(eta.device) > 0, current.to(eta.device), eta)
    current.copy_(eta)
