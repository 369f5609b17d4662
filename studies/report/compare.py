"""Paired comparisons with the baseline and the aggregate across tasks."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from studies.report.collect import Point
from studies.report.model import (
    DELTAS,
    AggregateRow,
    OptimizerReport,
    PairedAtLR,
    PairedComparison,
    PairedDiff,
    TaskReport,
)
from studies.report.stats import bootstrap_mean_ci, stable_seed, stratified_bootstrap_ci, win_rate


def _paired_diff(d: np.ndarray, sign: float, ci: tuple[float, float]) -> PairedDiff:
    lo, hi = sorted((sign * ci[0], sign * ci[1]))
    return PairedDiff(
        n_pairs=int(d.size),
        mean_diff=sign * float(d.mean()),
        ci_lo=lo,
        ci_hi=hi,
        win_rate=win_rate(d),
    )


def _pair(a: Point, b: Point) -> np.ndarray:
    _, ia, ib = np.intersect1d(a.seeds, b.seeds, assume_unique=True, return_indices=True)
    return a.values[ia] - b.values[ib]


def paired(
    task: str,
    opt: str,
    pts: list[Point],
    base: list[Point],
    rep: OptimizerReport,
    base_rep: OptimizerReport,
    baseline: str,
    sign: float,
) -> PairedComparison:
    """Compare one optimizer with the baseline on one task, pairing runs by seed.

    Pairs are (η, seed) both ran. Intervals: percentile bootstrap, resampling the pairs
    within each η (the grid is fixed by design, the seeds are the random part); at η* the
    pairs are the shared seeds.
    """
    by_lr = {p.lr: p for p in base}
    lrs, diffs = [], []
    for p in pts:
        q = by_lr.get(p.lr)
        d = _pair(p, q) if q is not None else np.empty(0)
        if d.size:
            lrs.append(p.lr)
            diffs.append(d)
    per_lr, overall = [], None
    if diffs:
        cis, pooled = stratified_bootstrap_ci(diffs, stable_seed(task, opt, baseline))
        per_lr = [
            PairedAtLR(lr=lr, diff=_paired_diff(d, sign, ci))
            for lr, d, ci in zip(lrs, diffs, cis, strict=True)
        ]
        overall = _paired_diff(np.concatenate(diffs), sign, pooled)
    at_best = None
    if rep.lr_star is not None and base_rep.lr_star is not None:
        mine = next(p for p in pts if p.lr == rep.lr_star)
        theirs = next(p for p in base if p.lr == base_rep.lr_star)
        d = _pair(mine, theirs)
        if d.size:
            ci = bootstrap_mean_ci(d, stable_seed(task, opt, baseline, "best"))
            at_best = _paired_diff(d, sign, ci)
    return PairedComparison(
        baseline=baseline,
        overall=overall,
        per_lr=per_lr,
        at_best=at_best,
        lr_best=rep.lr_star,
        lr_best_baseline=base_rep.lr_star,
    )


def _mean_or_none(xs: list[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


def aggregate(tasks: list[TaskReport], baseline: str, sign: float) -> list[AggregateRow]:
    """Average each optimizer's normalised figures over the tasks it ran on."""
    rows: dict[str, dict[str, Any]] = {}
    for t in tasks:
        for o in t.optimizers:
            if not o.curve:
                continue
            r = rows.setdefault(
                o.optimizer,
                {
                    "n": 0,
                    "w": {d: [] for d in DELTAS},
                    "s": [],
                    "win": [],
                    "better": 0,
                    "paired": False,
                },
            )
            r["n"] += 1
            grid = math.log10(o.curve[-1].lr / o.curve[0].lr)
            if grid > 0:
                for d in DELTAS:
                    b = next((b for b in o.basins if b.delta == d), None)
                    r["w"][d].append(b.width / grid if b is not None else 0.0)
            if o.sensitivity_normalised is not None:
                r["s"].append(o.sensitivity_normalised)
            if o.paired is not None:
                r["paired"] = True
                if o.paired.overall is not None:
                    r["win"].append(o.paired.overall.win_rate)
                if o.paired.at_best is not None and sign * o.paired.at_best.mean_diff < 0:
                    r["better"] += 1
    return [
        AggregateRow(
            optimizer=name,
            n_tasks=r["n"],
            basin_width_normalised={str(d): _mean_or_none(r["w"][d]) for d in DELTAS},
            sensitivity_normalised=_mean_or_none(r["s"]),
            win_rate=_mean_or_none(r["win"]),
            tasks_better_at_best=r["better"] if r["paired"] else None,
        )
        for name, r in rows.items()
    ]
