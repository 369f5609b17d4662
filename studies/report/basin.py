"""Basin width W_δ: one threshold per task, crossings interpolated in log learning rate."""

from __future__ import annotations

import math

import numpy as np

from studies.report.model import DELTAS, Basin


def task_thresholds(l_star_task: float, l0: float | None) -> dict[float, float]:
    """Signed thresholds ``ℓ*_task + δ·max(ℓ0 − ℓ*_task, 0)`` for every δ."""
    span = max(l0 - l_star_task, 0.0) if l0 is not None else 0.0
    return {d: l_star_task + d * span for d in DELTAS}


def _cross(x_in: float, m_in: float, x_out: float, m_out: float, tau: float) -> float:
    """Log-lr where the straight line from an inside to an outside point meets ``tau``."""
    return x_in + (tau - m_in) / (m_out - m_in) * (x_out - x_in)


def basin(lrs: np.ndarray, means: np.ndarray, i: int, tau: float, delta: float) -> Basin:
    """W_δ of one optimizer around its η* (index ``i``) for the signed threshold ``tau``.

    The basin is the contiguous run of grid points around η* whose mean score is at most
    ``tau``; each end is the log-linear crossing between the last point inside and the
    first point outside (or the grid's edge: open-ended). ``width_min`` (the span of the
    points inside) and ``width_max`` (the span between the first points outside) bracket
    the width the grid spacing allows. If η* itself is above ``tau`` (another optimizer
    set the task's ℓ*), the basin is not reached and has width 0.
    """
    x = np.log10(np.asarray(lrs, dtype=float))
    m = np.asarray(means, dtype=float)
    n = len(x)
    if not m[i] <= tau:
        return Basin(
            delta=delta,
            threshold=tau,
            reached=False,
            lr_lo=None,
            lr_hi=None,
            width=0.0,
            width_min=0.0,
            width_max=0.0,
            open_low=False,
            open_high=False,
            open_ended=False,
        )
    lo = hi = i
    while lo > 0 and m[lo - 1] <= tau:
        lo -= 1
    while hi < n - 1 and m[hi + 1] <= tau:
        hi += 1
    open_low, open_high = lo == 0, hi == n - 1
    x_lo = x[lo] if open_low else _cross(x[lo], m[lo], x[lo - 1], m[lo - 1], tau)
    x_hi = x[hi] if open_high else _cross(x[hi], m[hi], x[hi + 1], m[hi + 1], tau)
    width_max = None if open_low or open_high else float(x[hi + 1] - x[lo - 1])
    return Basin(
        delta=delta,
        threshold=tau,
        reached=True,
        lr_lo=float(10**x_lo),
        lr_hi=float(10**x_hi),
        width=float(x_hi - x_lo),
        width_min=float(x[hi] - x[lo]),
        width_max=width_max,
        open_low=open_low,
        open_high=open_high,
        open_ended=open_low or open_high,
    )


def signed_basin(b: Basin, sign: float) -> Basin:
    """``b`` with its threshold turned back into the metric's units."""
    return b.model_copy(update={"threshold": sign * b.threshold})


def grid_step(lrs: list[float]) -> float | None:
    """The grid's spacing in decades when it is regular (log-spaced), else None."""
    if len(lrs) < 2:
        return None
    steps = np.diff(np.log10(np.asarray(lrs, dtype=float)))
    if np.allclose(steps, steps[0], rtol=1e-6, atol=1e-9):
        return float(steps[0])
    return None


def in_range(lr: float, lr_range: tuple[float, float] | None) -> bool:
    """Whether ``lr`` lies in the declared range (inclusive; 1e-9 relative slack)."""
    if lr_range is None:
        return True
    lo, hi = lr_range
    return lo * (1 - 1e-9) <= lr <= hi * (1 + 1e-9) and math.isfinite(lr)
