"""Operator limits on the size of a study: what one submission may ask a worker to do.

A structurally valid definition can still ask for 10^9 trials, a grid of 10^7 points, a
10^9-dimensional quadratic or 10^9 retries. :func:`check_limits` refuses those before
anything is stored or run, with one :class:`~labcore.errors.SpecError` entry per problem
naming the field path and the limit, e.g.
``sampler.n_trials: 1000000000 exceeds the limit of 10000 trials per study``.

Torch-free and optuna-free: sizes are counted arithmetically, never by expanding a grid.
The service reads the limits from ``VRADAM_LAB_*`` settings (``service/settings.py``);
``vradam-hpo run`` uses the defaults.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from labcore.errors import SpecError
from studies.spec import ParamSpec, StudySpec

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

# Upper bounds of the built-in tasks' size options (memory or time grows with them).
# Options not named here are bounded only by the task's own checks.
DEFAULT_TASK_OPTION_MAX: dict[str, dict[str, float]] = {
    "quadratic": {"dim": 100_000, "batch_size": 4096, "steps_per_epoch": 100_000},
    "digits_cnn": {"batch_size": 4096, "width": 512},
    "digits_diffusion": {
        "batch_size": 4096,
        "timesteps": 10_000,
        "hidden": 8192,
        "depth": 64,
        "eval_repeats": 1000,
    },
    "hypergrid_gflownet": {
        "ndim": 16,
        "height": 1024,
        "hidden": 8192,
        "batch_size": 65_536,
        "steps_per_epoch": 100_000,
        "eval_trajectories": 1_000_000,
    },
    "cifar10_cnn": {
        "batch_size": 4096,
        "n_train": 1_000_000,
        "eval_size": 1_000_000,
        "eval_batch_size": 4096,
        "width": 16.0,
    },
    "wikitext2_lm": {
        "batch_size": 4096,
        "block_size": 8192,
        "n_layer": 128,
        "n_head": 128,
        "n_embd": 16_384,
        "d_ff": 65_536,
        "max_train_tokens": 10_000_000_000,
        "eval_tokens": 100_000_000,
        "eval_batch_size": 4096,
    },
    "stdlib_char_lm": {
        "max_chars": 1_000_000_000,
        "batch_size": 4096,
        "block_size": 8192,
        "n_layer": 128,
        "n_head": 128,
        "n_embd": 16_384,
        "d_ff": 65_536,
        "eval_tokens": 100_000_000,
        "eval_batch_size": 4096,
    },
    "gpt_pretrain": {
        "vocab_size": 1_000_000,
        "block_size": 8192,
        "n_layer": 128,
        "n_head": 128,
        "n_embd": 16_384,
        "d_ff": 65_536,
        "batch_size": 4096,
        "steps_per_epoch": 1_000_000,
        "eval_tokens": 100_000_000,
        "eval_batch_size": 4096,
    },
}


class Limits(BaseModel):
    """How large one study may be; every limit is inclusive.

    Attributes:
        trials_per_study: Planned trials over all cells (configurations x seeds x cells),
            and ``sampler.n_trials``.
        grid_points_per_dimension: Points of one grid dimension (``sampler.points.*``,
            choices of a categorical dimension).
        grid_points_total: Configurations of one cell's grid (the product over dimensions).
        seeds: Number of seeds.
        seed_max: Largest seed value (seeds are stored as 32-bit integers); seeds are >= 0.
        epochs: ``tasks.*.budget.epochs``.
        steps_per_epoch: ``tasks.*.budget.steps_per_epoch``.
        max_retries: ``max_retries`` (attempts of a failing trial beyond the first).
        max_concurrent: ``executor.max_concurrent``.
        definition_bytes: Size of the definition as compact JSON.
        task_option_max: ``{task: {option: largest value}}`` for numeric task options
            that size memory or time (e.g. ``quadratic``'s ``dim``); values must also be
            >= 0.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    trials_per_study: int = Field(default=10_000, ge=1)
    grid_points_per_dimension: int = Field(default=1_000, ge=1)
    grid_points_total: int = Field(default=10_000, ge=1)
    seeds: int = Field(default=100, ge=1)
    seed_max: int = Field(default=INT32_MAX, ge=0, le=INT32_MAX)
    epochs: int = Field(default=10_000, ge=1)
    steps_per_epoch: int = Field(default=1_000_000, ge=1)
    max_retries: int = Field(default=10, ge=0)
    max_concurrent: int = Field(default=1_024, ge=1)
    definition_bytes: int = Field(default=256 * 1024, ge=1)
    task_option_max: dict[str, dict[str, float]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_TASK_OPTION_MAX.items()}
    )


Errors = list[tuple[str, str]]


def check_limits(spec: StudySpec, limits: Limits | None = None) -> None:
    """Refuse a study larger than ``limits`` allow.

    Args:
        spec: A structurally valid definition (see :func:`studies.spec.load_spec`).
        limits: The operator's limits (default: :class:`Limits` ``()``).

    Raises:
        SpecError: Every limit exceeded, each naming its field path and the limit.
    """
    errors = limit_errors(spec, limits or Limits())
    if errors:
        raise SpecError(errors)


def limit_errors(spec: StudySpec, limits: Limits) -> Errors:
    """Return every ``(field_path, message)`` for which ``spec`` exceeds ``limits``."""
    errors: Errors = []
    size = len(json.dumps(spec.model_dump(mode="json"), separators=(",", ":")))
    if size > limits.definition_bytes:
        errors.append(
            ("", f"the definition is {size} bytes, over the limit of {limits.definition_bytes}")
        )
    _check_seeds(spec, limits, errors)
    _check_tasks(spec, limits, errors)
    _check_int("max_retries", spec.max_retries, limits.max_retries, "retries", errors)
    _check_int(
        "executor.max_concurrent",
        spec.executor.max_concurrent or 0,  # omitted: what the cluster holds
        limits.max_concurrent,
        "concurrent trials",
        errors,
    )
    _check_trials(spec, limits, errors)
    return errors


def _check_int(path: str, value: float, limit: float, what: str, errors: Errors) -> bool:
    if value > limit:
        errors.append((path, f"{_fmt(value)} exceeds the limit of {_fmt(limit)} {what}"))
        return False
    return True


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e18 else f"{x:g}"


def _check_seeds(spec: StudySpec, limits: Limits, errors: Errors) -> None:
    _check_int("seeds", len(spec.seeds), limits.seeds, "seeds per study", errors)
    for i, seed in enumerate(spec.seeds):
        if seed < 0 or seed > limits.seed_max:
            errors.append((f"seeds.{i}", f"{seed} is outside the range 0..{limits.seed_max}"))
    if spec.sampler.seed < 0 or spec.sampler.seed > limits.seed_max:
        errors.append(
            ("sampler.seed", f"{spec.sampler.seed} is outside the range 0..{limits.seed_max}")
        )


def _check_tasks(spec: StudySpec, limits: Limits, errors: Errors) -> None:
    for i, task in enumerate(spec.tasks):
        if task.budget is not None:
            _check_int(
                f"tasks.{i}.budget.epochs", task.budget.epochs, limits.epochs, "epochs", errors
            )
            if task.budget.steps_per_epoch is not None:
                _check_int(
                    f"tasks.{i}.budget.steps_per_epoch",
                    task.budget.steps_per_epoch,
                    limits.steps_per_epoch,
                    "steps per epoch",
                    errors,
                )
        bounds = limits.task_option_max.get(task.name, {})
        for name, value in task.options.items():
            if name in bounds:
                _check_option(f"tasks.{i}.options.{name}", value, bounds[name], errors)


def _number(value: Any) -> float | None:
    """The numeric value of an option (YAML reads ``1e9`` as a string), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _check_option(path: str, value: Any, limit: float, errors: Errors) -> None:
    x = _number(value)
    if x is None:
        return  # not a number: the task's own checks report it
    if not math.isfinite(x) or x < 0 or x > limit:
        errors.append((path, f"{value} is outside the allowed range 0..{_fmt(limit)}"))


def grid_axis_size(dim: ParamSpec, points: int | None) -> int:
    """Return how many values one grid dimension contributes (an upper bound for ints)."""
    if dim.type == "categorical":
        return len(dim.choices or ())
    n = points or 1
    if dim.type == "int" and dim.low is not None and dim.high is not None:
        return max(1, min(n, int(dim.high) - int(dim.low) + 1))
    return n


def _configs_per_cell(
    spec: StudySpec, space: Mapping[str, ParamSpec], limits: Limits, errors: Errors
) -> int | None:
    """Configurations of one cell; ``None`` when a per-dimension limit already failed."""
    s = spec.sampler
    if s.name != "grid":
        return s.n_trials or 1
    total = 1
    for name, dim in sorted(space.items()):
        n = grid_axis_size(dim, s.points.get(name))
        if n > limits.grid_points_per_dimension:
            return None
        total *= n
    return total


def _check_trials(spec: StudySpec, limits: Limits, errors: Errors) -> None:
    s = spec.sampler
    if s.n_trials is not None and not _check_int(
        "sampler.n_trials", s.n_trials, limits.trials_per_study, "trials per study", errors
    ):
        return
    for name, n in sorted(s.points.items()):
        _check_int(
            f"sampler.points.{name}",
            n,
            limits.grid_points_per_dimension,
            "grid points per dimension",
            errors,
        )
    for name, dim in sorted(spec.search_space.items()):
        if dim.type == "categorical":
            _check_int(
                f"search_space.{name}.choices",
                len(dim.choices or ()),
                limits.grid_points_per_dimension,
                "choices per dimension",
                errors,
            )
    planned = 0
    for i, opt in enumerate(spec.optimizers):
        space = {**spec.search_space, **opt.search_space}
        configs = _configs_per_cell(spec, space, limits, errors)
        if configs is None:
            return
        if s.name == "grid" and configs > limits.grid_points_total:
            path = "sampler.points" if not opt.search_space else f"optimizers.{i}.search_space"
            errors.append(
                (
                    path,
                    f"a grid of {configs} points exceeds the limit of {limits.grid_points_total}",
                )
            )
            return
        planned += configs * len(spec.seeds) * len(spec.tasks)
    if planned > limits.trials_per_study:
        errors.append(
            (
                "sampler",
                f"the study plans {planned} trials (configurations x seeds x tasks x "
                f"optimizers), over the limit of {limits.trials_per_study} trials per study",
            )
        )
