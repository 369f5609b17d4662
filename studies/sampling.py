"""Optuna samplers and pruners for a study, grid expansion and trial keys.

Every cell of a study gets a sampler seeded with ``spec.sampler.seed``, so with the same
shared space the random, QMC and grid samplers propose the same configurations to every
optimizer (a paired comparison).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import warnings
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from studies.spec import ParamSpec, PruningSpec, SamplerSpec


def _tidy(x: float) -> float:
    """Round to 12 significant digits so grid values print and key stably."""
    return float(f"{x:.12g}")


def grid_values(dim: ParamSpec, n: int | None) -> list[Any]:
    """Return the grid of one dimension: ``n`` points, log-spaced for a log dimension.

    Categorical dimensions take every choice; ``n == 1`` gives the lower bound; integer
    dimensions are rounded and deduplicated.

    Raises:
        ValueError: ``n`` is missing or below 1 for a numeric dimension.
    """
    if dim.type == "categorical":
        return list(dim.choices or [])
    if n is None or n < 1:
        raise ValueError("a numeric grid dimension needs at least one point")
    assert dim.low is not None and dim.high is not None
    lo, hi = float(dim.low), float(dim.high)
    if n == 1:
        values = [lo]
    elif dim.log:
        a, b = math.log(lo), math.log(hi)
        values = [math.exp(a + (b - a) * i / (n - 1)) for i in range(n)]
        values[0], values[-1] = lo, hi
    else:
        values = [lo + (hi - lo) * i / (n - 1) for i in range(n)]
        values[-1] = hi
    if dim.type == "int":
        return sorted({round(v) for v in values})
    return [min(max(_tidy(v), lo), hi) for v in values]


def expand_grid(space: Mapping[str, ParamSpec], points: Mapping[str, int]) -> list[dict[str, Any]]:
    """Return every grid point of ``space`` as ``{dimension: value}``, in a stable order.

    Raises:
        ValueError: A numeric dimension has no point count.
    """
    names = sorted(space)
    axes = [grid_values(space[n], points.get(n)) for n in names]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes)]


def distributions(space: Mapping[str, ParamSpec]) -> dict[str, BaseDistribution]:
    """Optuna distributions of a search space."""
    out: dict[str, BaseDistribution] = {}
    for name, d in sorted(space.items()):
        if d.type == "categorical":
            out[name] = CategoricalDistribution(list(d.choices or []))
        elif d.type == "int":
            out[name] = IntDistribution(int(d.low or 0), int(d.high or 0), log=d.log)
        else:
            out[name] = FloatDistribution(float(d.low or 0.0), float(d.high or 0.0), log=d.log)
    return out


def trial_key(hparams: Mapping[str, Any], seed: int) -> str:
    """The canonical key of ``(hparams, seed)``: the same grid point and seed, the same key."""
    canonical = json.dumps({"hparams": dict(hparams), "seed": int(seed)}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def build_sampler(
    sampler: SamplerSpec, space: Mapping[str, ParamSpec], seed_offset: int = 0
) -> optuna.samplers.BaseSampler:
    """Return the seeded Optuna sampler of one cell.

    Args:
        sampler: The spec's sampler section.
        space: The cell's search space.
        seed_offset: Added to the seed; a resumed adaptive cell passes its number of
            existing trials so it does not replay the first run's random draws.

    Raises:
        ValueError: A grid dimension has no point count.
    """
    seed = sampler.seed + seed_offset
    if sampler.name == "grid":
        grid = {n: grid_values(d, sampler.points.get(n)) for n, d in space.items()}
        return optuna.samplers.GridSampler(grid, seed=seed)
    if sampler.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sampler.name == "tpe":
        n = sampler.n_trials or 10
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(1, min(10, n // 3)))
    if sampler.name == "qmc":
        with warnings.catch_warnings():  # "experimental since v3.0": stable enough for us
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(
                qmc_type="sobol", scramble=True, seed=seed, warn_asynchronous_seeding=False
            )
    if sampler.name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    raise ValueError(f"unknown sampler {sampler.name!r}")


def sample_configs(sampler: SamplerSpec, space: Mapping[str, ParamSpec]) -> list[dict[str, Any]]:
    """The configurations of a non-adaptive sampler (``random``, ``qmc``), drawn up front.

    Drawn from the seeded sampler in an in-memory study, so the same spec always gives the
    same list (a resumed study continues the same sequence, and two optimizers with the
    same space get the same configurations). Duplicates (possible in integer or
    categorical spaces) are dropped.

    Raises:
        ValueError: ``sampler`` is adaptive or has no ``n_trials``.
    """
    if sampler.name not in ("random", "qmc") or not sampler.n_trials:
        raise ValueError(f"cannot draw {sampler.name!r} configurations up front")
    study = optuna.create_study(sampler=build_sampler(sampler, space))
    dists = distributions(space)
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _ in range(sampler.n_trials):
        trial = study.ask(dists)
        study.tell(trial, 0.0)
        ident = json.dumps(trial.params, sort_keys=True)
        if ident not in seen:
            seen.add(ident)
            out.append(dict(trial.params))
    return out


def build_pruner(pruning: PruningSpec) -> optuna.pruners.BasePruner:
    """Return the Optuna pruner (``NopPruner`` by default: pruning biases LR curves)."""
    if pruning.name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=pruning.n_startup_trials, n_warmup_steps=pruning.n_warmup_epochs
        )
    if pruning.name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=pruning.min_resource, reduction_factor=pruning.reduction_factor
        )
    return optuna.pruners.NopPruner()
