"""Paired comparisons with the baseline: per η, over the declared range, and at each η*.

Every comparison pairs runs by seed (one seed fixes initialisation and data order at
every η), reduces each seed to one difference first and puts the interval over seeds.
Wins, ties and losses count (η, seed) pairs by their scores; a tie (equal scores, e.g.
both failed to train and scored ℓ0) is neither a win nor a loss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from studies.report.basin import in_range
from studies.report.collect import Point, Run, test_metric_of
from studies.report.model import (
    Headline,
    PairedAtLR,
    PairedComparison,
    PairedDiff,
    Source,
)
from studies.report.stats import paired_p_value, seed_interval


def paired_diff(
    seeds: Sequence[int],
    d: np.ndarray,
    sign: float,
    counts: tuple[int, int, int] | None = None,
) -> PairedDiff:
    """Summarise per-seed signed differences ``d`` (lower is better) in metric units.

    Args:
        seeds: The seeds, aligned with ``d``.
        d: Per-seed differences ``score(o) − score(baseline)``, signed.
        sign: −1 for a maximised metric.
        counts: ``(wins, ties, losses)`` when they are counted over more pairs than ``d``.
    """
    iv = seed_interval(d)
    wins, ties, losses = counts or (int((d < 0).sum()), int((d == 0).sum()), int((d > 0).sum()))
    lo = hi = None
    if iv.lo is not None and iv.hi is not None:
        lo, hi = sorted((sign * iv.lo, sign * iv.hi))
    decided = wins + losses
    return PairedDiff(
        n=int(d.size),
        seeds=[int(s) for s in seeds],
        values=(sign * d).tolist(),
        mean_diff=sign * iv.mean,
        lo=lo,
        hi=hi,
        kind=iv.kind,
        wins=wins,
        ties=ties,
        losses=losses,
        win_rate=wins / decided if decided else None,
        p_value=paired_p_value(d),
    )


def _pair(a: Point, b: Point) -> tuple[np.ndarray, np.ndarray]:
    seeds, ia, ib = np.intersect1d(a.seeds, b.seeds, assume_unique=True, return_indices=True)
    return seeds, a.values[ia] - b.values[ib]


def paired(
    pts: list[Point],
    base: list[Point],
    lr_star: float | None,
    lr_star_base: float | None,
    baseline: str,
    sign: float,
    lr_range: tuple[float, float] | None,
) -> PairedComparison:
    """Compare one optimizer's search curve with the baseline's on one task.

    The grid Δ averages, per seed, the differences over the η of the declared range that
    both ran, using only seeds present at every one of them; the interval is over those
    per-seed averages.
    """
    by_lr = {p.lr: p for p in base}
    per_lr: list[PairedAtLR] = []
    rows: dict[float, dict[int, float]] = {}
    for p in pts:
        q = by_lr.get(p.lr)
        if q is None:
            continue
        seeds, d = _pair(p, q)
        if not d.size:
            continue
        inside = in_range(p.lr, lr_range)
        per_lr.append(PairedAtLR(lr=p.lr, in_range=inside, diff=paired_diff(seeds, d, sign)))
        if inside:
            rows[p.lr] = dict(zip(seeds.tolist(), d.tolist(), strict=True))
    overall = None
    if rows:
        common = sorted(set.intersection(*(set(r) for r in rows.values())))
        if common:
            mat = np.array([[rows[lr][s] for lr in rows] for s in common])
            flat = mat.ravel()
            counts = (int((flat < 0).sum()), int((flat == 0).sum()), int((flat > 0).sum()))
            overall = paired_diff(common, mat.mean(axis=1), sign, counts)
    at_best = None
    if lr_star is not None and lr_star_base is not None:
        mine = next(p for p in pts if p.lr == lr_star)
        theirs = by_lr[lr_star_base]
        seeds, d = _pair(mine, theirs)
        if d.size:
            at_best = paired_diff(seeds, d, sign)
    return PairedComparison(
        baseline=baseline,
        overall=overall,
        n_lrs=len(rows),
        per_lr=per_lr,
        at_best=at_best,
        lr_best=lr_star,
        lr_best_baseline=lr_star_base,
    )


def test_scores(p: Point, metric: str, sign: float, l0_test: float | None) -> dict[int, float]:
    """Per seed: the signed test score ``min(test, test ℓ0)`` of a point's runs.

    A diverged run scores test ℓ0; runs without a finite test metric are left out.
    """
    name = test_metric_of(metric)
    out: dict[int, float] = {}
    for s in p.seeds.tolist():
        run: Run = p.group.runs[int(s)]
        raw = (run.trial.metrics or {}).get(name) if run.value is not None else None
        v = None
        if raw is not None and math.isfinite(float(raw)):
            v = sign * float(raw)
        elif run.value is None:
            v = l0_test
        if v is None:
            continue
        out[int(s)] = min(v, l0_test) if l0_test is not None else v
    return out


def headline(
    mine: Point,
    theirs: Point,
    metric: str,
    sign: float,
    l0_test: float | None,
    source: Source,
) -> Headline | None:
    """The paired test Δ between two selected points (each optimizer's own η*)."""
    a = test_scores(mine, metric, sign, l0_test)
    b = test_scores(theirs, metric, sign, l0_test)
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    d = np.array([a[s] - b[s] for s in seeds])
    return Headline(
        metric=test_metric_of(metric),
        source=source,
        lr=mine.lr,
        lr_baseline=theirs.lr,
        diff=paired_diff(seeds, d, sign),
    )
