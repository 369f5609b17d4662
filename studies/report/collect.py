"""Group trial records into cells and learning-rate points (one pass, no database).

A trial is anything with the fields of :class:`studies.store.records.TrialRecord` that
the report reads (:class:`TrialLike`). Values are kept *signed*: ``sign * metric`` with
``sign = -1`` for a maximised metric, so lower is always better inside the analysis.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from labcore.outcomes import Outcome

FINAL_OUTCOMES = Outcome.finals()


class EpochLike(Protocol):
    """The fields of :class:`labcore.results.EpochMetrics` the report reads."""

    epoch: int
    effective_lr_ratio: float | None


class TrialLike(Protocol):
    """The fields of :class:`studies.store.records.TrialRecord` the report reads."""

    task: str
    optimizer: str
    hparams: Mapping[str, Any]
    seed: int
    outcome: str
    metrics: Mapping[str, float]
    initial_metrics: Mapping[str, float]
    epochs: Sequence[EpochLike]


def lr_key(lr: object) -> float:
    """Return ``lr`` rounded to 12 significant digits, so equal grid points compare equal.

    Raises:
        TypeError: ``lr`` is not a number.
        ValueError: ``lr`` is not a number.
    """
    return float(f"{float(lr):.12g}")  # type: ignore[arg-type]


def config_key(hparams: Mapping[str, Any]) -> str:
    """Return a canonical key of every hyperparameter except ``lr`` (sorted by name)."""
    return repr(sorted((k, v) for k, v in hparams.items() if k != "lr"))


@dataclass
class Run:
    """One usable run (complete or diverged) at a point.

    Attributes:
        seed: The run's seed.
        value: Signed final metric of a complete run; None for a diverged run.
        trial: The record itself (test metrics, epochs).
    """

    seed: int
    value: float | None
    trial: TrialLike

    @property
    def diverged(self) -> bool:
        """Whether the run diverged (its value is ℓ0)."""
        return self.value is None


@dataclass
class Group:
    """The runs of one (learning rate, configuration) of a cell."""

    config: dict[str, Any]
    runs: dict[int, Run] = field(default_factory=dict)
    n_pruned: int = 0
    n_failed: int = 0
    finished_seeds: set[int] = field(default_factory=set)


@dataclass
class Cell:
    """The trials of one (task, optimizer)."""

    task: str
    optimizer: str
    groups: dict[float, dict[str, Group]] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    n_final: int = 0


@dataclass
class Collected:
    """Everything one pass over the trials produced."""

    cells: dict[str, dict[str, Cell]] = field(default_factory=dict)
    initial: dict[str, list[float]] = field(default_factory=dict)
    worst: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    n_trials: int = 0


def _finite(x: object) -> float | None:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def collect(trials: Iterable[TrialLike], metric: str, sign: float) -> Collected:
    """Group ``trials`` by task, optimizer, learning rate and configuration.

    Complete runs whose final ``metric`` is non-finite count as diverged; complete runs
    without the metric, and trials without ``lr``, are left out (with a note).
    """
    out = Collected()
    no_lr = missing_metric = nonfinite = duplicates = 0
    for t in trials:
        out.n_trials += 1
        cell = out.cells.setdefault(t.task, {}).get(t.optimizer)
        if cell is None:
            cell = out.cells[t.task][t.optimizer] = Cell(t.task, t.optimizer)
        outcome = str(t.outcome)
        cell.outcomes[outcome] += 1
        init = _finite(t.initial_metrics.get(metric)) if t.initial_metrics else None
        if init is not None:
            out.initial.setdefault(t.task, []).append(sign * init)
        try:
            lr = lr_key(t.hparams["lr"])
        except (KeyError, TypeError, ValueError):
            no_lr += 1
            continue
        if not math.isfinite(lr) or lr <= 0:
            no_lr += 1
            continue
        ck = config_key(t.hparams)
        by_cfg = cell.groups.setdefault(lr, {})
        group = by_cfg.get(ck)
        if group is None:
            cfg = {k: v for k, v in t.hparams.items() if k != "lr"}
            group = by_cfg[ck] = Group(cfg)
        if outcome in FINAL_OUTCOMES:
            cell.n_final += 1
            group.finished_seeds.add(t.seed)
        if outcome == "pruned":
            group.n_pruned += 1
        elif outcome == "failed":
            group.n_failed += 1
        elif outcome in ("complete", "diverged"):
            value: float | None = None
            if outcome == "complete":
                raw = t.metrics.get(metric) if t.metrics else None
                if raw is None:
                    missing_metric += 1
                    continue
                fin = _finite(raw)
                if fin is None:
                    nonfinite += 1
                else:
                    value = sign * fin
                    prev = out.worst.get(t.task)
                    out.worst[t.task] = value if prev is None else max(prev, value)
            if t.seed in group.runs:
                duplicates += 1
            group.runs[t.seed] = Run(t.seed, value, t)
    if no_lr:
        out.notes.append(f"{no_lr} trial(s) without a positive 'lr' were left out.")
    if missing_metric:
        out.notes.append(f"{missing_metric} complete trial(s) lacked '{metric}' and were left out.")
    if nonfinite:
        out.notes.append(
            f"{nonfinite} complete trial(s) with a non-finite '{metric}' count as diverged."
        )
    if duplicates:
        out.notes.append(f"{duplicates} duplicate (point, seed) trial(s): the last one counts.")
    return out


@dataclass
class Point:
    """One learning rate of a curve: the selected configuration's runs, sorted by seed.

    ``values`` are signed (lower is better) with diverged runs counted as ℓ0.
    """

    lr: float
    seeds: np.ndarray
    values: np.ndarray  # signed; diverged runs = ℓ0
    diverged: np.ndarray
    group: Group
    n_configs: int


def select_point(by_cfg: Mapping[str, Group], l0: float | None) -> Point | None:
    """Return the configuration with the best mean at one η (ties: the first key)."""
    best: Point | None = None
    best_mean = math.inf
    for ck in sorted(by_cfg):
        g = by_cfg[ck]
        runs = [r for r in g.runs.values() if r.value is not None or l0 is not None]
        if not runs:
            continue
        runs.sort(key=lambda r: r.seed)
        vals = np.array([l0 if r.value is None else r.value for r in runs], dtype=float)
        mean = float(vals.mean())
        if best is None or mean < best_mean:
            seeds = np.array([r.seed for r in runs], dtype=np.int64)
            div = np.array([r.value is None for r in runs], dtype=bool)
            best, best_mean = Point(0.0, seeds, vals, div, g, 0), mean
    return best


def cell_points(cell: Cell, l0: float | None) -> list[Point]:
    """Return a cell's curve points in increasing learning rate (diverged runs = ``l0``).

    Diverged runs are left out when ``l0`` is None.
    """
    pts = []
    for lr in sorted(cell.groups):
        p = select_point(cell.groups[lr], l0)
        if p is not None:
            p.lr, p.n_configs = lr, len(cell.groups[lr])
            pts.append(p)
    return pts
