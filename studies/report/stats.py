"""Statistics of a report, with the seed as the resampling unit (SciPy does the numerics).

Every interval here is *over seeds*: callers first reduce each seed's runs to one number
(a per-seed summary), then pass those numbers in. Below :data:`MIN_SEEDS_FOR_CI` seeds no
95% interval is claimed: the interval is the seeds' range ``[min, max]`` and says so
(``kind="range"``). SciPy is imported lazily (it is slow to import and only the
``workers`` extra installs it with scikit-learn).
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

MIN_SEEDS_FOR_CI = 5
"""Fewest seeds for which a 95% interval is reported (below: the seeds' range)."""

BOOTSTRAP_RESAMPLES = 10_000
"""Resamples of every bootstrap interval (percentile method)."""

CONFIDENCE = 0.95

IntervalKind = Literal["t95", "range", "single"]


@dataclass(frozen=True)
class Interval:
    """A mean over seeds with an interval over seeds.

    Attributes:
        mean: The mean of the per-seed values.
        median: Their median.
        lo: Lower end (``None`` for a single seed).
        hi: Upper end (``None`` for a single seed).
        n: Seeds.
        kind: ``t95`` (Student-t, n−1 degrees of freedom, n ≥ 5), ``range`` (min and max
            of the seeds, n < 5) or ``single`` (one seed, no interval).
        clipped: The t interval was cut to the possible range of the score.
    """

    mean: float
    median: float
    lo: float | None
    hi: float | None
    n: int
    kind: IntervalKind
    clipped: bool = False


def seed_interval(
    values: Sequence[float] | np.ndarray,
    bounds: tuple[float, float] = (-math.inf, math.inf),
    min_seeds: int = MIN_SEEDS_FOR_CI,
) -> Interval:
    """Return the mean of per-seed ``values`` with a 95% t interval, or their range.

    Args:
        values: One value per seed.
        bounds: The possible range of a value (e.g. ``[0, ℓ0]`` for a scored loss); a t
            interval is cut to it, so no interval leaves the possible range.
        min_seeds: Fewest seeds for a t interval; below it the range ``[min, max]``.

    Raises:
        ValueError: ``values`` is empty.
    """
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    if n == 0:
        raise ValueError("seed_interval needs at least one value")
    mean, median = float(x.mean()), float(np.median(x))
    if n == 1:
        return Interval(mean, median, None, None, 1, "single")
    if n < min_seeds:
        return Interval(mean, median, float(x.min()), float(x.max()), n, "range")
    half = t_quantile(n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    lo, hi = mean - half, mean + half
    clo, chi = max(lo, bounds[0]), min(hi, bounds[1])
    return Interval(mean, median, clo, chi, n, "t95", clipped=(clo, chi) != (lo, hi))


@functools.lru_cache(maxsize=256)
def t_quantile(df: int) -> float:
    """The two-sided 95% quantile of Student's t with ``df`` degrees of freedom (SciPy)."""
    from scipy import stats

    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, df))


@functools.lru_cache(maxsize=4096)
def binomial_ci(k: int, n: int) -> tuple[float, float]:
    """Return the exact (Clopper-Pearson) 95% interval of a proportion ``k/n``.

    Raises:
        ValueError: ``n < 1`` or ``k`` outside ``[0, n]``.
    """
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    from scipy import stats

    ci = stats.binomtest(k, n).proportion_ci(confidence_level=CONFIDENCE, method="exact")
    return float(ci.low), float(ci.high)


def paired_p_value(diffs: Sequence[float] | np.ndarray) -> float | None:
    """Two-sided one-sample t-test p-value of per-seed paired differences against 0.

    Returns None below :data:`MIN_SEEDS_FOR_CI` seeds, or when every difference is equal
    (the test is undefined), so no p-value is claimed where no interval is.
    """
    d = np.asarray(diffs, dtype=float)
    if d.size < MIN_SEEDS_FOR_CI or bool(np.all(d == d[0])):
        return None
    from scipy import stats

    return float(stats.ttest_1samp(d, 0.0).pvalue)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (None entries are left out of the family).

    With m tests sorted ascending, ``p̃_(i) = max_{j ≤ i} min(1, (m − j + 1) p_(j))``.
    """
    idx = sorted((i for i, p in enumerate(p_values) if p is not None), key=lambda i: p_values[i])
    m = len(idx)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, i in enumerate(idx):
        p = p_values[i]
        assert p is not None
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def iqm(x: np.ndarray, axis: int = -1) -> np.ndarray | float:
    """Interquartile mean: the mean of the middle 50% (SciPy's 25% two-sided trim)."""
    from scipy import stats

    return stats.trim_mean(x, 0.25, axis=axis)


def stratified_bootstrap_iqm(
    groups: Sequence[np.ndarray], seed: int, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float, float]:
    """IQM of the pooled values with a stratified percentile bootstrap 95% interval.

    Each group (a task) is resampled within itself, independently (Agarwal et al. 2021);
    SciPy's ``bootstrap`` does this when given the groups as separate samples.

    Returns:
        ``(iqm, lo, hi)``.

    Raises:
        ValueError: No groups, or an empty group.
    """
    if not groups or any(g.size == 0 for g in groups):
        raise ValueError("stratified bootstrap needs non-empty groups")
    pooled = np.concatenate(groups)
    point = float(iqm(pooled))
    if bool(np.all(pooled == pooled[0])):
        return point, point, point
    from scipy import stats

    def statistic(*xs: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.asarray(iqm(np.concatenate(xs, axis=axis), axis=axis))

    res = stats.bootstrap(
        tuple(groups),
        statistic,
        n_resamples=resamples,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return point, float(res.confidence_interval.low), float(res.confidence_interval.high)


def expected_best(scores: Sequence[float] | np.ndarray, k: int) -> float:
    """Expected lowest score after ``k`` draws with replacement from ``scores``.

    With the scores sorted ascending ``s_(1) ≤ … ≤ s_(N)``, the lowest of ``k`` uniform
    draws is ``s_(i)`` with probability ``((N−i+1)/N)^k − ((N−i)/N)^k``.

    Raises:
        ValueError: ``scores`` is empty or ``k < 1``.
    """
    s = np.sort(np.asarray(scores, dtype=float))
    n = s.size
    if n == 0 or k < 1:
        raise ValueError("expected_best needs scores and k >= 1")
    i = np.arange(1, n + 1)
    p = ((n - i + 1) / n) ** k - ((n - i) / n) ** k
    return float((p * s).sum())


def stable_seed(*parts: object) -> int:
    """Return a seed derived from ``parts`` that does not change between processes."""
    return zlib.crc32("\x1f".join(map(str, parts)).encode())
