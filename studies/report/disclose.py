"""The report's disclosures: what a reader needs to judge whether a comparison is fair."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from studies.report.collect import Collected
from studies.report.model import Disclosures

_OFF = (None, False, "", "none", "off", "nop", "nopruner")


def pruning_name(pruning: object) -> str | None:
    """Return the pruner's name from a spec's ``pruning`` entry, or None when it is off."""
    if isinstance(pruning, Mapping):
        if pruning.get("enabled") is False:
            return None
        pruning = pruning.get("name", pruning.get("type"))
    if isinstance(pruning, str):
        pruning = pruning.strip().lower()
    return None if pruning in _OFF else str(pruning)


def arm_name(o: Mapping[str, Any]) -> str:
    """An optimizer entry's name in results: its ``label``, else its ``name``."""
    return str(o.get("label") or o["name"])


def _extra_dims(spec: Mapping[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for o in spec.get("optimizers") or []:
        space = o.get("search_space") or {}
        if space and "name" in o:
            out.setdefault(arm_name(o), []).extend(sorted(space))
    return out


def disclosures(
    spec: Mapping[str, Any],
    budgets: Mapping[str, Mapping[str, Any]],
    col: Collected,
    notes: list[str],
    confirm_seeds: list[int] | None = None,
) -> Disclosures:
    """Build the disclosures from the spec, the collected trials and the analysis' notes."""
    extra = _extra_dims(spec)
    pruning = pruning_name(spec.get("pruning"))
    notes = list(notes)
    if extra:
        notes.append(
            "Extra dimensions were searched for some optimizers only: at each learning rate "
            "their curve shows the configuration with the best mean over seeds."
        )
    multi = any(
        len(by_cfg) > 1
        for cells in col.cells.values()
        for c in cells.values()
        for by_cfg in c.groups.values()
    )
    if multi and not extra:
        notes.append(
            "Several configurations share a learning rate: each curve point shows the one with "
            "the best mean over seeds."
        )
    fixed = {
        arm_name(o): dict(o.get("fixed") or {}) for o in spec.get("optimizers") or [] if "name" in o
    }
    if len({json.dumps(f, sort_keys=True, default=str) for f in fixed.values()}) > 1:
        notes.append("Fixed hyperparameters differ between optimizers (see the list above).")
    sampler = dict(spec.get("sampler") or {})
    if sampler.get("name", "grid") != "grid":
        notes.append(
            f"Hyperparameters were sampled by {sampler.get('name')}, not a fixed grid: learning "
            "rates rarely coincide between optimizers, so few (η, seed) pairs match the baseline."
        )
    n_pruned = sum(c.outcomes.get("pruned", 0) for cs in col.cells.values() for c in cs.values())
    if pruning or n_pruned:
        notes.append(
            f"Pruning ({pruning or 'unknown pruner'}) stopped {n_pruned} trial(s) early; pruned "
            "trials are left out of the curves, which can favour optimizers that start fast."
        )
    n_failed = sum(c.outcomes.get("failed", 0) for cs in col.cells.values() for c in cs.values())
    if n_failed:
        notes.append(f"{n_failed} trial(s) failed (errors, not divergence) and are left out.")
    return Disclosures(
        extra_search_dimensions=extra,
        shared_search_space=sorted(spec.get("search_space") or {}),
        fixed=fixed,
        pruning=pruning,
        budgets={k: dict(v) for k, v in budgets.items()},
        seeds=[int(s) for s in spec.get("seeds") or []],
        confirmation_seeds=list(confirm_seeds or []),
        sampler=sampler,
        notes=notes,
    )
