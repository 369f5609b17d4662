"""What a study plans before any trial runs: cells' names, configurations and counts.

A cell is one (task, optimizer) pair with its own Optuna study. Grid, random and QMC
samplers fix their configurations up front (:func:`static_configs`); TPE and CMA-ES ask as
they go, so only their count is known (:func:`n_planned`). Each configuration runs once per
seed as a :class:`WorkItem`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from studies.sampling import expand_grid, sample_configs
from studies.spec import StudySpec


@dataclass(frozen=True)
class WorkItem:
    """One ``(hparams, seed)`` a cell still has to run."""

    hparams: dict[str, Any]
    params: dict[str, Any]  # the searched part (Optuna params)
    seed: int
    key: str
    config_index: int | None = None


def optuna_study_name(study_name: str, study_id: str, task: str, optimizer: str) -> str:
    """``<study>/<task>/<optimizer>``, where ``<study>`` is ``<name>.<id>`` (unique per run)."""
    return f"{study_name}.{study_id}/{task}/{optimizer}"


def static_configs(spec: StudySpec, optimizer: str) -> list[dict[str, Any]] | None:
    """The configurations known before any trial runs (grid, random, qmc), else None."""
    space = spec.space_for(optimizer)
    if spec.sampler.name == "grid":
        return expand_grid(space, spec.sampler.points)
    if spec.sampler.name in ("random", "qmc"):
        return sample_configs(spec.sampler, space)
    return None


def n_planned(spec: StudySpec, optimizer: str) -> int:
    """Trials planned for a cell: configurations (grid points or n_trials) x seeds."""
    configs = static_configs(spec, optimizer)
    n = len(configs) if configs is not None else spec.sampler.n_trials or 0
    return n * len(spec.seeds)
