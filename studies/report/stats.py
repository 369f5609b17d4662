"""Small, dependency-free statistics for reports: t-intervals and paired bootstraps.

Only numpy is used (scipy is not a dependency of the ``studies`` package). Student's t
quantile: an exact table for 1-30 degrees of freedom, then the Cornish-Fisher expansion
(error below 1e-7 from 30 degrees of freedom on).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

# t_{0.975, df} for df = 1..30 (two-sided 95%).
_T975 = (
    12.706204736,
    4.30265273,
    3.182446305,
    2.776445105,
    2.570581836,
    2.446911851,
    2.364624252,
    2.306004135,
    2.262157163,
    2.228138852,
    2.20098516,
    2.17881283,
    2.160368656,
    2.144786688,
    2.131449546,
    2.119905299,
    2.109815578,
    2.10092204,
    2.093024054,
    2.085963447,
    2.079613845,
    2.073873068,
    2.06865761,
    2.063898562,
    2.059538553,
    2.055529439,
    2.051830516,
    2.048407142,
    2.045229642,
    2.042272456,
)
_Z975 = 1.959963984540054

BOOTSTRAP_RESAMPLES = 2000
"""Bootstrap resamples per interval."""


def t_quantile_975(df: int) -> float:
    """Return the 0.975 quantile of Student's t with ``df`` degrees of freedom.

    Raises:
        ValueError: ``df`` is below 1.
    """
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z, v = _Z975, float(df)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
        + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * v**4)
    )


@dataclass(frozen=True)
class Interval:
    """A mean with a two-sided 95% interval (``lo``/``hi`` are None when ``n < 2``)."""

    mean: float
    lo: float | None
    hi: float | None
    n: int


def t_interval(values: np.ndarray) -> Interval:
    """Return the mean of ``values`` with its 95% Student-t interval.

    Raises:
        ValueError: ``values`` is empty.
    """
    n = int(values.size)
    if n == 0:
        raise ValueError("t_interval needs at least one value")
    mean = float(values.mean())
    if n < 2:
        return Interval(mean, None, None, n)
    half = t_quantile_975(n - 1) * float(values.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def stable_seed(*parts: object) -> int:
    """Return a seed derived from ``parts`` that does not change between processes."""
    return zlib.crc32("\x1f".join(map(str, parts)).encode())


def _percentiles(means: np.ndarray) -> tuple[float, float]:
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)


def bootstrap_mean_ci(
    diffs: np.ndarray, seed: int, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float]:
    """Return the percentile bootstrap 95% interval of the mean of ``diffs``.

    Vectorised: one ``(resamples, n)`` index draw. Deterministic for a given ``seed``.

    Raises:
        ValueError: ``diffs`` is empty.
    """
    (ci,), _ = stratified_bootstrap_ci([diffs], seed, resamples)
    return ci


def stratified_bootstrap_ci(
    groups: list[np.ndarray], seed: int, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[list[tuple[float, float]], tuple[float, float]]:
    """Percentile bootstrap 95% intervals of each group's mean and of the pooled mean.

    Each resample draws every group's values with replacement within the group (the
    groups, e.g. the learning rates of a fixed grid, are fixed by design); the pooled mean
    of a resample is the sum of its group sums over the total count. One ``(resamples,
    n_g)`` index draw per group serves both the group's interval and the pooled one.
    Deterministic for a given ``seed``.

    Returns:
        ``([(lo, hi) per group], (lo, hi) of the pooled mean)``.

    Raises:
        ValueError: No groups, or an empty group.
    """
    if not groups or any(g.size == 0 for g in groups):
        raise ValueError("bootstrap needs non-empty groups")
    rng = np.random.default_rng(seed)
    total = np.zeros(resamples)
    cis = []
    for g in groups:
        n = int(g.size)
        if n == 1 or bool(np.all(g == g[0])):  # every resample is the same
            total += float(g.sum())
            cis.append((float(g[0]), float(g[0])))
            continue
        sums = g[rng.integers(0, n, size=(resamples, n))].sum(axis=1)
        total += sums
        cis.append(_percentiles(sums / n))
    n_all = sum(int(g.size) for g in groups)
    pooled = np.concatenate(groups)
    if bool(np.all(pooled == pooled[0])):
        return cis, (float(pooled[0]), float(pooled[0]))
    return cis, _percentiles(total / n_all)


def win_rate(signed_diffs: np.ndarray) -> float:
    """Return the share of pairs won (``signed_diffs < 0``; ties count one half).

    ``signed_diffs`` are differences in lower-is-better units.
    """
    n = signed_diffs.size
    return float(((signed_diffs < 0).sum() + 0.5 * (signed_diffs == 0).sum()) / n)
