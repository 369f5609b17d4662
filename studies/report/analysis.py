"""Learning-rate robustness figures (DESIGN.md section 5), pure and database-free.

Definitions, with ℓ(o, η, s) the final objective metric of optimizer o at learning rate η
and seed s, turned lower-is-better internally (a maximised metric is negated, and every
reported number is turned back into the metric's own units):

* ℓ0 (per task): the mean objective metric at initialisation over every trial of the task
  that has one (``initial_metrics``; all optimizers share the seeds, so this is the
  seed-averaged initial value). If no trial has it, the worst final value observed.
* A diverged run counts as ℓ0. Pruned and failed runs are left out (and counted).
* Curve: per η the mean over seeds with a Student-t 95% interval. When hyperparameters
  other than ``lr`` are searched, each η shows the configuration with the best mean over
  seeds at that η (an optimistic "tuned at every η" curve; disclosed).
* η*: the grid η with the lowest mean (ties: the smallest η); ℓ*: that mean.
* W_δ: log10(η_hi/η_lo) of the contiguous run of grid points around η* whose mean is at most
  ℓ* + δ·max(ℓ0 − ℓ*, 0); open-ended when it reaches the grid's first or last point.
* Sensitivity: mean over the grid of (min(mean ℓ, ℓ0) − ℓ*); normalised: divided by ℓ0 − ℓ*.
* Divergence LR: the smallest η at which at least half of the seeds diverged.
* Paired Δ: value(o) − value(baseline) for every (η, seed) both ran, and at each one's own η*
  paired by seed: mean, percentile-bootstrap 95% interval (seeded), win rate (ties ½).
* If every run of an optimizer diverged: no η*, ℓ*, basins or sensitivity; its normalised
  sensitivity is 1 and its normalised basin widths 0 in the aggregate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

from labcore.errors import SpecError
from studies.report.collect import Cell, Collected, Point, TrialLike, cell_points, collect, lr_key
from studies.report.compare import aggregate, paired
from studies.report.disclose import disclosures
from studies.report.model import (
    DELTAS,
    Basin,
    CurvePoint,
    EffectiveLRCurve,
    Estimate,
    OptimizerReport,
    Report,
    SelectedTestMetric,
    TaskReport,
)
from studies.report.stats import t_interval


def _objective(spec: Mapping[str, Any]) -> tuple[str, str]:
    obj = spec.get("objective") or {}
    metric = str(obj.get("metric", "val_loss"))
    direction = str(obj.get("direction", "minimize"))
    if direction not in ("minimize", "maximize"):
        raise SpecError("must be 'minimize' or 'maximize'", field="objective.direction")
    return metric, direction


def _estimate(iv: Any, sign: float) -> Estimate:
    if iv.lo is None:
        return Estimate(mean=sign * iv.mean, n=iv.n)
    lo, hi = sorted((sign * iv.lo, sign * iv.hi))
    return Estimate(mean=sign * iv.mean, lo=lo, hi=hi, n=iv.n)


def _basins(
    lrs: np.ndarray, means: np.ndarray, i: int, l0: float | None, sign: float
) -> list[Basin]:
    l_star = float(means[i])
    span = max(l0 - l_star, 0.0) if l0 is not None else 0.0
    out = []
    for d in DELTAS:
        tau = l_star + d * span
        lo = hi = i
        while lo > 0 and means[lo - 1] <= tau:
            lo -= 1
        while hi < len(means) - 1 and means[hi + 1] <= tau:
            hi += 1
        olo, ohi = lo == 0, hi == len(means) - 1
        out.append(
            Basin(
                delta=d,
                threshold=sign * tau,
                lr_lo=float(lrs[lo]),
                lr_hi=float(lrs[hi]),
                width=math.log10(lrs[hi] / lrs[lo]),
                open_low=olo,
                open_high=ohi,
                open_ended=olo or ohi,
            )
        )
    return out


def _default_budget(task: str) -> dict[str, Any]:
    """The registry's default budget of a task the spec left unset ({} if unknown)."""
    from workers.tasks.registry import TASKS  # torch-free

    info = TASKS.get(task)
    if info is None:
        return {}
    b = info.default_budget
    return {"epochs": b.epochs, "steps_per_epoch": b.steps_per_epoch}


def _effective_lr(pts: list[Point]) -> list[EffectiveLRCurve]:
    curves = []
    for p in pts:
        per_epoch: dict[int, list[float]] = {}
        for run in p.group.runs.values():
            for e in run.trial.epochs or ():
                r = e.effective_lr_ratio
                if r is not None and math.isfinite(r):
                    per_epoch.setdefault(e.epoch, []).append(r)
        if per_epoch:
            ep = sorted(per_epoch)
            curves.append(
                EffectiveLRCurve(
                    lr=p.lr,
                    epochs=ep,
                    n=[len(per_epoch[k]) for k in ep],
                    mean_ratio=[float(np.mean(per_epoch[k])) for k in ep],
                )
            )
    return curves


def _test_metrics(p: Point) -> list[SelectedTestMetric]:
    vals: dict[str, list[float]] = {}
    for run in p.group.runs.values():
        if run.value is None:
            continue
        for k, v in (run.trial.metrics or {}).items():
            if k.startswith("test_") and v is not None and math.isfinite(v):
                vals.setdefault(k, []).append(float(v))
    return [
        SelectedTestMetric(name=k, estimate=_estimate(t_interval(np.array(vals[k])), 1.0))
        for k in sorted(vals)
    ]


def _complete(cell: Cell, seeds: set[int], planned: int | None, n_points: int | None) -> bool:
    if not cell.groups:
        return False
    if planned is not None and cell.n_final < planned:
        return False
    if n_points is not None and len(cell.groups) < n_points:
        return False
    return all(seeds <= g.finished_seeds for by in cell.groups.values() for g in by.values())


def _optimizer(
    cell: Cell, pts: list[Point], l0: float | None, sign: float, complete: bool
) -> OptimizerReport:
    curve = [
        CurvePoint(
            lr=p.lr,
            estimate=_estimate(t_interval(p.values), sign),
            seeds=p.seeds.tolist(),
            values=(sign * p.values).tolist(),
            diverged_seeds=p.seeds[p.diverged].tolist(),
            n_pruned=p.group.n_pruned,
            n_failed=p.group.n_failed,
            config=p.group.config,
            n_configs=p.n_configs,
        )
        for p in pts
    ]
    common: dict[str, Any] = dict(
        optimizer=cell.optimizer,
        curve=curve,
        outcomes=dict(cell.outcomes),
        complete=complete,
        effective_lr=_effective_lr(pts),
    )
    div_lr = next((p.lr for p in pts if 2 * int(p.diverged.sum()) >= p.diverged.size), None)
    if not pts or all(bool(p.diverged.all()) for p in pts):
        return OptimizerReport(
            **common,
            lr_star=None,
            best=None,
            basins=[],
            sensitivity=None,
            sensitivity_normalised=1.0 if pts else None,
            divergence_lr=div_lr,
            all_diverged=bool(pts),
        )
    lrs = np.array([p.lr for p in pts])
    means = np.array([p.values.mean() for p in pts])
    i = int(np.argmin(means))  # first minimum: the smallest η among ties
    l_star = float(means[i])
    capped = np.minimum(means, l0) if l0 is not None else means
    sens = float((capped - l_star).mean())
    span = (l0 - l_star) if l0 is not None else 0.0
    return OptimizerReport(
        **common,
        lr_star=float(lrs[i]),
        best=_estimate(t_interval(pts[i].values), sign),
        basins=_basins(lrs, means, i, l0, sign),
        sensitivity=sens,
        sensitivity_normalised=sens / span if span > 0 else None,
        divergence_lr=div_lr,
        all_diverged=False,
        test_metrics=_test_metrics(pts[i]),
    )


def _l0(col: Collected, task: str) -> tuple[float | None, str]:
    init = col.initial.get(task)
    if init:
        return float(np.mean(init)), "initial_metrics"
    if task in col.worst:
        return col.worst[task], "worst_observed"
    return None, "none"


def _ordered(spec_names: list[str], seen: Iterable[str]) -> list[str]:
    """Return the spec's names in order (even without trials), then any others sorted."""
    names = list(dict.fromkeys(spec_names))
    return names + sorted(set(seen) - set(names))


def analyze(
    trials: Iterable[TrialLike],
    spec: Mapping[str, Any],
    baseline: str = "adamw",
    partial: bool = False,
    *,
    study_id: str | None = None,
    study_name: str | None = None,
    planned: Mapping[tuple[str, str], int] | None = None,
) -> Report:
    """Compute the learning-rate robustness report of a study's trials.

    Args:
        trials: Trial records (:class:`studies.store.records.TrialRecord` or alike), with
            their epochs when VRAdam's effective learning rate is wanted.
        spec: The study definition as a dict (``StudySpec.model_dump()`` shape).
        baseline: The optimizer every other one is compared with.
        partial: Mark the report partial (e.g. the study is still running); it is also
            marked partial when any cell lacks planned points or seeds.
        study_id: Recorded in the report.
        study_name: Recorded in the report (default: ``spec["name"]``).
        planned: Trials planned per ``(task, optimizer)`` (the store's cells).

    Returns:
        The report.

    Raises:
        SpecError: ``spec["objective"]["direction"]`` is not minimize or maximize.
    """
    metric, direction = _objective(spec)
    sign = -1.0 if direction == "maximize" else 1.0
    col = collect(trials, metric, sign)
    spec_tasks = [t["name"] for t in spec.get("tasks") or [] if "name" in t]
    spec_opts = [o["name"] for o in spec.get("optimizers") or [] if "name" in o]
    seeds = {int(s) for s in spec.get("seeds") or []}
    sampler = spec.get("sampler") or {}
    n_points = (sampler.get("points") or {}).get("lr") if sampler.get("name") == "grid" else None
    budgets = {
        t["name"]: dict(t.get("budget") or _default_budget(t["name"]))
        for t in spec.get("tasks") or []
        if "name" in t
    }
    notes = list(col.notes)
    tasks: list[TaskReport] = []
    all_complete = True
    for task in _ordered(spec_tasks, col.cells):
        l0, l0_source = _l0(col, task)
        cells = col.cells.get(task, {})
        reports: dict[str, OptimizerReport] = {}
        points: dict[str, list[Point]] = {}
        for opt in _ordered(spec_opts, cells):
            cell = cells.get(opt) or Cell(task, opt)
            points[opt] = cell_points(cell, l0)
            n_plan = (planned or {}).get((task, opt))
            complete = _complete(cell, seeds, n_plan, n_points)
            all_complete &= complete
            reports[opt] = _optimizer(cell, points[opt], l0, sign, complete)
        if points.get(baseline):
            for opt, rep in reports.items():
                if opt != baseline:
                    pc = paired(
                        task,
                        opt,
                        points[opt],
                        points[baseline],
                        rep,
                        reports[baseline],
                        baseline,
                        sign,
                    )
                    reports[opt] = rep.model_copy(update={"paired": pc})
        else:
            notes.append(f"Task {task}: baseline {baseline!r} has no trials; no paired comparison.")
        tasks.append(
            TaskReport(
                task=task,
                metric=metric,
                direction=direction,  # type: ignore[arg-type]
                l0=None if l0 is None else sign * l0,
                l0_source=l0_source,
                budget=budgets.get(task, {}),
                optimizers=list(reports.values()),
            )
        )
    return Report(
        study_id=study_id,
        study_name=study_name or spec.get("name"),
        generated_at=datetime.now(UTC),
        partial=partial or not all_complete,
        baseline=baseline,
        metric=metric,
        direction=direction,
        n_trials=col.n_trials,
        tasks=tasks,  # type: ignore[arg-type]
        aggregate=aggregate(tasks, baseline, sign),
        disclosures=disclosures(spec, budgets, col, notes),
    )


__all__ = ["analyze", "lr_key"]
