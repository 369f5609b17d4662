"""Group trial records into cells and learning-rate points (one pass, no database).

A trial is anything with the fields of :class:`studies.store.records.TrialRecord` that
the report reads (:class:`TrialLike`). Values are kept *signed*: ``sign * metric`` with
``sign = -1`` for a maximised metric, so lower is always better inside the analysis.

Search and confirmation runs are kept apart: a trial whose seed is one of the study's
confirmation seeds goes to the cell's ``confirm`` groups, every other trial to its search
``groups``. ℓ0 is the mean over search seeds of each seed's mean initial metric (the
initial metric depends on the task and seed only, so every optimizer sees the same ℓ0).
Points carry *scores* ``min(ℓ, ℓ0)``: a diverged run scores ℓ0, and so does a run that
completed worse than ℓ0; both "failed to train".
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
    # also read when present: wall_time_s (compute time), diverged_at_step, device


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
    confirm: dict[float, dict[str, Group]] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    n_final: int = 0
    wall_time_s: float = 0.0
    max_step: int = 0
    devices: Counter[str] = field(default_factory=Counter)


@dataclass
class Collected:
    """Everything one pass over the trials produced."""

    cells: dict[str, dict[str, Cell]] = field(default_factory=dict)
    initial: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    initial_test: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    worst: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    n_trials: int = 0


def _finite(x: object) -> float | None:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def test_metric_of(metric: str) -> str:
    """The test metric that goes with a validation ``metric`` (``val_loss`` → ``test_loss``)."""
    return "test_" + metric.removeprefix("val_")


def per_seed_mean(by_seed: Mapping[int, list[float]]) -> float | None:
    """Mean over seeds of each seed's mean (None without values)."""
    means = [float(np.mean(v)) for v in by_seed.values() if v]
    return float(np.mean(means)) if means else None


def collect(
    trials: Iterable[TrialLike],
    metric: str,
    sign: float,
    confirm_seeds: Iterable[int] = (),
) -> Collected:
    """Group ``trials`` by task, optimizer, learning rate and configuration.

    Complete runs whose final ``metric`` is non-finite count as diverged; complete runs
    without the metric, and trials without ``lr``, are left out (with a note). Trials
    with a seed in ``confirm_seeds`` are confirmation runs: grouped apart, and left out of
    ℓ0 and of the worst observed value.
    """
    out = Collected()
    confirming = {int(s) for s in confirm_seeds}
    test_metric = test_metric_of(metric)
    no_lr = missing_metric = nonfinite = duplicates = 0
    for t in trials:
        out.n_trials += 1
        cell = out.cells.setdefault(t.task, {}).get(t.optimizer)
        if cell is None:
            cell = out.cells[t.task][t.optimizer] = Cell(t.task, t.optimizer)
        outcome = str(t.outcome)
        cell.outcomes[outcome] += 1
        cell.wall_time_s += float(getattr(t, "wall_time_s", 0.0) or 0.0)
        cell.devices[str(getattr(t, "device", None) or "unknown")] += 1
        for e in t.epochs or ():
            cell.max_step = max(cell.max_step, int(getattr(e, "step", 0) or 0))
        is_confirm = int(t.seed) in confirming
        if t.initial_metrics and not is_confirm:
            init = _finite(t.initial_metrics.get(metric))
            if init is not None:
                out.initial.setdefault(t.task, {}).setdefault(t.seed, []).append(sign * init)
            init_t = _finite(t.initial_metrics.get(test_metric))
            if init_t is not None:
                seeds_t = out.initial_test.setdefault(t.task, {})
                seeds_t.setdefault(t.seed, []).append(sign * init_t)
        try:
            lr = lr_key(t.hparams["lr"])
        except (KeyError, TypeError, ValueError):
            no_lr += 1
            continue
        if not math.isfinite(lr) or lr <= 0:
            no_lr += 1
            continue
        ck = config_key(t.hparams)
        by_cfg = (cell.confirm if is_confirm else cell.groups).setdefault(lr, {})
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
                    if not is_confirm:
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

    ``values`` are signed scores ``min(ℓ, ℓ0)`` (lower is better; a diverged run scores
    ℓ0); ``failed`` marks runs that failed to train (diverged, or no better than ℓ0).
    """

    lr: float
    seeds: np.ndarray
    values: np.ndarray  # signed scores min(ℓ, ℓ0); diverged runs = ℓ0
    diverged: np.ndarray
    failed: np.ndarray
    group: Group
    n_configs: int

    def mean(self) -> float:
        """Mean score over the point's seeds."""
        return float(self.values.mean())


def score_runs(runs: Iterable[Run], l0: float | None) -> tuple[np.ndarray, ...] | None:
    """Score runs (sorted by seed): ``(seeds, scores, diverged, failed)``, None if none usable.

    The score is ``min(ℓ, ℓ0)``; diverged runs score ℓ0 and are left out when ``l0`` is None.
    """
    usable = sorted((r for r in runs if r.value is not None or l0 is not None), key=_seed)
    if not usable:
        return None
    seeds = np.array([r.seed for r in usable], dtype=np.int64)
    raw = np.array([np.inf if r.value is None else r.value for r in usable], dtype=float)
    diverged = np.array([r.value is None for r in usable], dtype=bool)
    if l0 is None:
        return seeds, raw, diverged, diverged.copy()
    return seeds, np.minimum(raw, l0), diverged, diverged | (raw >= l0)


def _seed(r: Run) -> int:
    return r.seed


def select_point(
    by_cfg: Mapping[str, Group], l0: float | None, seeds: Iterable[int] | None = None
) -> Point | None:
    """Return the configuration with the lowest mean score at one η (ties: the first key).

    Args:
        by_cfg: The configurations tried at this η.
        l0: ℓ0 (signed); None leaves diverged runs out.
        seeds: When given, only runs of these seeds count.
    """
    keep = None if seeds is None else set(seeds)
    best: Point | None = None
    for ck in sorted(by_cfg):
        g = by_cfg[ck]
        runs = [r for r in g.runs.values() if keep is None or r.seed in keep]
        scored = score_runs(runs, l0)
        if scored is None:
            continue
        sd, vals, div, fail = scored
        if best is None or float(vals.mean()) < best.mean():
            best = Point(0.0, sd, vals, div, fail, g, 0)
    return best


def cell_points(
    cell: Cell, l0: float | None, confirm: bool = False, seeds: Iterable[int] | None = None
) -> list[Point]:
    """Return a cell's curve points in increasing learning rate (scores ``min(ℓ, l0)``).

    Args:
        cell: The cell.
        l0: ℓ0 (signed); diverged runs are left out when None.
        confirm: Use the confirmation runs instead of the search runs.
        seeds: When given, only runs of these seeds count (e.g. leave one seed out).
    """
    groups = cell.confirm if confirm else cell.groups
    pts = []
    for lr in sorted(groups):
        p = select_point(groups[lr], l0, seeds)
        if p is not None:
            p.lr, p.n_configs = lr, len(groups[lr])
            pts.append(p)
    return pts


def best_index(pts: Sequence[Point]) -> int:
    """Index of η*: the lowest mean score (ties: the smallest η).

    Raises:
        ValueError: ``pts`` is empty.
    """
    if not pts:
        raise ValueError("no points")
    means = [p.mean() for p in pts]
    return int(np.argmin(means))
