"""Figures of a report with matplotlib's Agg canvas (imported lazily, no pyplot state).

One column per task: every seed's score min(ℓ, ℓ0) as a dot, the median over seeds as a
line, the interval over seeds as a band kept inside [0, ℓ0] for losses, each optimizer's
η* as its own marker with a dotted vertical line, ℓ0 dashed; under it a strip of the
failed-to-train share k/n per learning rate. When any optimizer logged an effective
learning rate (VRAdam), a last row shows the mean η_t/lr per epoch at each η*.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Literal

from studies.report.model import OptimizerReport, Report, TaskReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_COLORS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def _colors(report: Report) -> dict[str, str]:
    names = dict.fromkeys(o.optimizer for t in report.tasks for o in t.optimizers)
    return {n: _COLORS[i % len(_COLORS)] for i, n in enumerate(names)}


_STAR_MARKERS = ("*", "D", "P", "X", "p", "h", "s", "^", "v", "<")


def _markers(report: Report) -> dict[str, str]:
    names = dict.fromkeys(o.optimizer for t in report.tasks for o in t.optimizers)
    return {n: _STAR_MARKERS[i % len(_STAR_MARKERS)] for i, n in enumerate(names)}


def _band_limits(task: TaskReport) -> tuple[float, float]:
    """Where a band may go: [0, ℓ0] for a minimised loss, [ℓ0, ∞) for a maximised metric."""
    lo, hi = -math.inf, math.inf
    if task.l0 is not None:
        if task.direction == "minimize":
            hi = task.l0
            lo = 0.0 if "loss" in task.metric or "ppl" in task.metric else -math.inf
        else:
            lo = task.l0
    return lo, hi


def _curve_panel(
    ax: Axes, task: TaskReport, colors: dict[str, str], markers: dict[str, str]
) -> None:
    lo_lim, hi_lim = _band_limits(task)
    n_opt = max(len(task.optimizers), 1)
    for k, o in enumerate(task.optimizers):
        if not o.curve:
            continue
        c = colors[o.optimizer]
        x = [p.lr for p in o.curve]
        med = [
            p.estimate.median if p.estimate.median is not None else p.estimate.mean for p in o.curve
        ]
        lo = [
            min(max(p.estimate.lo if p.estimate.lo is not None else m, lo_lim), hi_lim)
            for p, m in zip(o.curve, med, strict=True)
        ]
        hi = [
            min(max(p.estimate.hi if p.estimate.hi is not None else m, lo_lim), hi_lim)
            for p, m in zip(o.curve, med, strict=True)
        ]
        ax.fill_between(x, lo, hi, color=c, alpha=0.15, lw=0)
        ax.plot(x, med, "-", color=c, lw=1.6, label=f"{o.optimizer} (median)")
        # Every seed's score, nudged sideways per optimizer so overlapping seeds show.
        nudge = 10 ** (0.04 * (k - (n_opt - 1) / 2))
        xs = [p.lr * nudge for p in o.curve for _ in p.values]
        ys = [v for p in o.curve for v in p.values]
        # Many seeds: the dots go into the SVG as one raster image (small, fast).
        ax.scatter(xs, ys, s=9, color=c, alpha=0.65, lw=0, zorder=3, rasterized=len(xs) > 500)
        if o.lr_star is not None and o.best_search is not None:
            ax.scatter(
                [o.lr_star],
                [o.best_search.mean],
                marker=markers[o.optimizer],
                s=150,
                color=c,
                edgecolors="black",
                linewidths=0.8,
                zorder=5,
                label=f"{o.optimizer} η* = {o.lr_star:.3g}",
            )
            ax.axvline(o.lr_star, color=c, ls=":", lw=1, alpha=0.8)
    if task.l0 is not None:
        ax.axhline(task.l0, color="0.5", ls="--", lw=1, label="ℓ0 (failed to train)")
    ax.set_xscale("log")
    ax.set_ylabel(f"score: final {task.metric}")
    ax.set_title(f"{task.task}", fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.tick_params(labelbottom=False)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best", framealpha=0.85)


def _failure_strip(ax: Axes, task: TaskReport, colors: dict[str, str]) -> None:
    """Failed-to-train share per learning rate: one row of squares per optimizer.

    The darker a square, the larger the share; labelled k/n wherever a run failed.
    """
    from matplotlib.colors import to_rgba

    names = [o.optimizer for o in task.optimizers if o.curve]

    for row, o in enumerate(o for o in task.optimizers if o.curve):
        share = [p.failed.k / p.failed.n if p.failed.n else 0.0 for p in o.curve]
        rgba = [to_rgba(colors[o.optimizer], 0.1 + 0.9 * x) for x in share]
        ax.scatter([p.lr for p in o.curve], [row] * len(o.curve), marker="s", s=60, c=rgba, lw=0)
        for p in o.curve:  # label only the learning rates where some run failed
            if p.failed.k:
                ax.annotate(
                    f"{p.failed.k}/{p.failed.n}",
                    (p.lr, row),
                    textcoords="offset points",
                    xytext=(0, -9),
                    ha="center",
                    fontsize=6,
                    color="0.25",
                )
    ax.set_xscale("log")
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_ylim(len(names) - 0.4, -0.9)
    ax.set_xlabel("learning rate (strip: failed to train, k/n)")
    ax.grid(False)


def _eff_lr_at(o: OptimizerReport) -> tuple[float, list[int], list[float]] | None:
    at = o.lr_star if o.lr_star is not None else (o.curve[0].lr if o.curve else None)
    c = next((c for c in o.effective_lr if c.lr == at), None)
    return None if c is None else (c.lr, c.epochs, c.mean_ratio)


def _eff_panel(ax: Axes, task: TaskReport, colors: dict[str, str]) -> None:
    drawn = False
    for o in task.optimizers:
        got = _eff_lr_at(o)
        if got is None:
            continue
        lr, epochs, ratio = got
        ax.plot(
            epochs,
            ratio,
            "-o",
            ms=3,
            color=colors[o.optimizer],
            label=f"{o.optimizer} at η={lr:.3g}",
        )
        drawn = True
    ax.set_title(f"{task.task}: effective learning rate", fontsize=11)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean η_t / lr")
    ax.grid(True, alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    if drawn:
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=8, loc="best", framealpha=0.85)
    else:
        ax.text(
            0.5,
            0.5,
            "no effective-LR data",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="0.4",
        )


def figure_bytes(report: Report, fmt: Literal["png", "svg"] = "png", dpi: int = 110) -> bytes:
    """Render the report's figure as PNG or SVG bytes.

    Raises:
        ValueError: ``fmt`` is not ``png`` or ``svg``.
    """
    if fmt not in ("png", "svg"):
        raise ValueError(f"figure format must be 'png' or 'svg', got {fmt!r}")
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tasks = report.tasks
    eff = any(o.effective_lr for t in tasks for o in t.optimizers)
    ncols = max(len(tasks), 1)
    strip = 0.3 + 0.32 * max((len(t.optimizers) for t in tasks), default=1)
    # Rows in inches, top to bottom: (gap above, height). Fixed positions: one layout pass.
    rows = [(0.75, 3.2), (0.08, strip)] + ([(0.85, 2.5)] if eff else [])
    with matplotlib.rc_context({"svg.hashsalt": "vradam-lab", "svg.fonttype": "path"}):
        w = 5.2 * ncols
        h = sum(g + r for g, r in rows) + 0.6
        fig = Figure(figsize=(w, h))
        FigureCanvasAgg(fig)
        col_w = (w - 0.8 - 0.2 - 0.9 * (ncols - 1)) / ncols
        axes: list[list[Axes]] = []
        top = h
        for gap, rh in rows:
            top -= gap
            axes.append(
                [
                    fig.add_axes(((0.8 + j * (col_w + 0.9)) / w, (top - rh) / h, col_w / w, rh / h))
                    for j in range(ncols)
                ]
            )
            top -= rh
        colors, markers = _colors(report), _markers(report)
        if not tasks:
            axes[0][0].text(0.5, 0.5, "no trials", ha="center", va="center")
            axes[0][0].set_axis_off()
            axes[1][0].set_axis_off()
        for j, task in enumerate(tasks):
            _curve_panel(axes[0][j], task, colors, markers)
            axes[1][j].sharex(axes[0][j])
            _failure_strip(axes[1][j], task, colors)
            if eff:
                _eff_panel(axes[2][j], task, colors)
        title = f"Learning-rate robustness: {report.study_name or report.study_id or 'study'}"
        fig.suptitle(title + ("  (partial)" if report.partial else ""), fontsize=12)
        buf = io.BytesIO()
        meta = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
    return buf.getvalue()
