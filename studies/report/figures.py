"""Per-optimizer figures of one task: curve, η* stability, sensitivity, tunability, tests.

Everything here works in signed scores (lower is better) and returns models in the
metric's own units (``sign`` turns them back).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from studies.report.basin import in_range
from studies.report.collect import (
    Cell,
    Point,
    best_index,
    cell_points,
    score_runs,
    test_metric_of,
)
from studies.report.model import (
    CurvePoint,
    EffectiveLRCurve,
    Estimate,
    Proportion,
    SelectedTestMetric,
    Source,
    Stability,
    TunabilityPoint,
)
from studies.report.stats import Interval, binomial_ci, expected_best, seed_interval

_NONNEGATIVE = ("loss", "ppl", "perplexity", "nll", "mse", "error")


def score_bounds(metric: str, sign: float, l0: float | None) -> tuple[float, float]:
    """The possible range of a signed score: at most ℓ0; at least 0 for a minimised loss."""
    lo = 0.0 if sign > 0 and any(k in metric for k in _NONNEGATIVE) else -math.inf
    return lo, (l0 if l0 is not None else math.inf)


def estimate(iv: Interval, sign: float) -> Estimate:
    """Turn a signed interval into an :class:`Estimate` in the metric's units."""
    lo = hi = None
    if iv.lo is not None and iv.hi is not None:
        lo, hi = sorted((sign * iv.lo, sign * iv.hi))
    return Estimate(
        mean=sign * iv.mean,
        lo=lo,
        hi=hi,
        n=iv.n,
        kind=iv.kind,
        median=sign * iv.median,
        clipped=iv.clipped,
    )


def proportion(k: int, n: int) -> Proportion:
    """``k/n`` with its exact binomial interval."""
    lo, hi = binomial_ci(k, n)
    return Proportion(k=k, n=n, lo=lo, hi=hi)


def curve(
    pts: list[Point],
    sign: float,
    bounds: tuple[float, float],
    lr_range: tuple[float, float] | None,
) -> list[CurvePoint]:
    """The learning-rate curve: per η the seeds' scores and an interval over seeds."""
    return [
        CurvePoint(
            lr=p.lr,
            in_range=in_range(p.lr, lr_range),
            estimate=estimate(seed_interval(p.values, bounds), sign),
            seeds=p.seeds.tolist(),
            values=(sign * p.values).tolist(),
            diverged_seeds=p.seeds[p.diverged].tolist(),
            failed_seeds=p.seeds[p.failed].tolist(),
            failed=proportion(int(p.failed.sum()), int(p.failed.size)),
            n_pruned=p.group.n_pruned,
            n_failed=p.group.n_failed,
            config=p.group.config,
            n_configs=p.n_configs,
        )
        for p in pts
    ]


def stability(cell: Cell, l0: float | None, seeds: list[int], lr_star: float) -> Stability | None:
    """η* with each search seed left out (None with fewer than two seeds)."""
    if len(seeds) < 2:
        return None
    stars = []
    for s in seeds:
        pts = cell_points(cell, l0, seeds=[x for x in seeds if x != s])
        stars.append(pts[best_index(pts)].lr if pts else math.nan)
    same = sum(1 for x in stars if x == lr_star)
    return Stability(
        left_out=list(seeds),
        lr_star=stars,
        share_same=same / len(stars),
        stable=same == len(stars),
    )


def sensitivity(
    pts: list[Point],
    l_star: float,
    bounds: tuple[float, float],
    lr_range: tuple[float, float] | None,
) -> tuple[float | None, Interval | None]:
    """Mean over the declared range of (score − ℓ*), and the same per seed over seeds.

    The per-seed version uses the seeds present at every η of the range.
    """
    inside = [p for p in pts if in_range(p.lr, lr_range)]
    if not inside:
        return None, None
    point = float(np.mean([p.mean() - l_star for p in inside]))
    rows = [dict(zip(p.seeds.tolist(), p.values.tolist(), strict=True)) for p in inside]
    common = sorted(set.intersection(*(set(r) for r in rows)))
    if not common:
        return point, None
    per_seed = [float(np.mean([r[s] for r in rows])) - l_star for s in common]
    hi = bounds[1] - l_star if math.isfinite(bounds[1]) else math.inf
    return point, seed_interval(per_seed, (0.0 if hi >= 0 else -math.inf, hi))


def tunability(
    cell: Cell, l0: float | None, seeds: Iterable[int], sign: float
) -> list[TunabilityPoint]:
    """Expected best validation score after k random-search trials (Sivaprasad et al. 2020).

    The pool is every search run of the cell (every configuration and seed, scored
    ``min(ℓ, ℓ0)``); a random-search trial draws one uniformly, with replacement. ``k``
    runs over powers of two up to the number of configurations, and that number itself.
    """
    keep = set(seeds)
    scores: list[float] = []
    n_configs = 0
    for by_cfg in cell.groups.values():
        for g in by_cfg.values():
            scored = score_runs([r for r in g.runs.values() if r.seed in keep], l0)
            if scored is not None:
                n_configs += 1
                scores.extend(scored[1].tolist())
    if not scores:
        return []
    ks = sorted({2**j for j in range(int(math.log2(max(n_configs, 1))) + 1)} | {n_configs})
    return [TunabilityPoint(k=k, expected_best=sign * expected_best(scores, k)) for k in ks]


def test_metrics(
    p: Point, metric: str, sign: float, l0_test: float | None, source: Source
) -> list[SelectedTestMetric]:
    """Every ``test_*`` metric of a selected point, over its seeds.

    The objective's own test metric (``val_loss`` → ``test_loss``) is scored like the
    objective: ``min(test, test ℓ0)`` per seed, a diverged run scoring test ℓ0. Other test
    metrics (e.g. ``test_acc`` next to a loss) are shown as measured, diverged runs left out.
    """
    main = test_metric_of(metric)
    scored: dict[str, list[float]] = {}
    raw: dict[str, list[float]] = {}
    for s in p.seeds.tolist():
        run = p.group.runs[int(s)]
        if run.value is None and l0_test is not None:
            scored.setdefault(main, []).append(l0_test)
        for k, v in (run.trial.metrics or {}).items():
            if not k.startswith("test_") or v is None or run.value is None:
                continue
            if not math.isfinite(v):
                continue
            if k == main:
                x = sign * float(v)
                scored.setdefault(k, []).append(min(x, l0_test) if l0_test is not None else x)
            else:
                raw.setdefault(k, []).append(float(v))
    out = [
        SelectedTestMetric(name=k, source=source, estimate=estimate(seed_interval(v), sign))
        for k, v in scored.items()
    ]
    out += [
        SelectedTestMetric(name=k, source=source, estimate=estimate(seed_interval(v), 1.0))
        for k, v in raw.items()
    ]
    return sorted(out, key=lambda m: m.name)


def effective_lr(pts: list[Point]) -> list[EffectiveLRCurve]:
    """Mean η_t/lr per epoch at every η (runs that logged it)."""
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
