"""Figures of a report with matplotlib's Agg canvas (imported lazily, no pyplot state).

One panel per task: the learning-rate curve of every optimizer on a log-x axis with its
95% band, an ``x`` on every point whose mean includes diverged runs (counted as ℓ0; the
bigger, the larger their share), η* as a star, ℓ0 as a dashed line. When any
optimizer logged an effective learning rate (VRAdam), a second row shows the mean η_t/lr
per epoch at each optimizer's η*.
"""

from __future__ import annotations

import io
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


def _curve_panel(ax: Axes, task: TaskReport, colors: dict[str, str]) -> None:
    for o in task.optimizers:
        if not o.curve:
            continue
        c = colors[o.optimizer]
        x = [p.lr for p in o.curve]
        y = [p.estimate.mean for p in o.curve]
        lo = [p.estimate.lo if p.estimate.lo is not None else p.estimate.mean for p in o.curve]
        hi = [p.estimate.hi if p.estimate.hi is not None else p.estimate.mean for p in o.curve]
        ax.plot(x, y, "-o", color=c, ms=3.5, lw=1.5, label=o.optimizer)
        ax.fill_between(x, lo, hi, color=c, alpha=0.18, lw=0)
        # x on the curve where its mean includes diverged runs (counted as ℓ0), sized by
        # the diverged share of the seeds.
        div = [p for p in o.curve if p.diverged_seeds]
        if div:
            ax.scatter(
                [p.lr for p in div],
                [p.estimate.mean for p in div],
                marker="x",
                s=[25 + 45 * len(p.diverged_seeds) / len(p.seeds) for p in div],
                color="black",
                lw=1.3,
                zorder=4,
            )
        if o.lr_star is not None and o.best is not None:
            ax.scatter(
                [o.lr_star],
                [o.best.mean],
                marker="*",
                s=190,
                color=c,
                edgecolors="black",
                linewidths=0.8,
                zorder=5,
            )
    if task.l0 is not None:
        ax.axhline(task.l0, color="0.5", ls="--", lw=1, label="ℓ0 (x: has diverged runs)")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"final {task.metric}")
    ax.set_title(f"{task.task}  (★ = η*)", fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best", framealpha=0.85)


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
    ncols, nrows = max(len(tasks), 1), 2 if eff else 1
    with matplotlib.rc_context({"svg.hashsalt": "vradam-lab", "svg.fonttype": "path"}):
        w, h = 5.2 * ncols, 4.0 * nrows
        fig = Figure(figsize=(w, h))
        # Fixed margins in inches (one layout pass: much faster than constrained layout).
        fig.subplots_adjust(
            left=0.8 / w,
            right=1 - 0.2 / w,
            bottom=0.6 / h,
            top=1 - 0.75 / h,
            wspace=0.3,
            hspace=0.45,
        )
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        colors = _colors(report)
        if not tasks:
            axes[0][0].text(0.5, 0.5, "no trials", ha="center", va="center")
            axes[0][0].set_axis_off()
        for j, task in enumerate(tasks):
            _curve_panel(axes[0][j], task, colors)
            if eff:
                _eff_panel(axes[1][j], task, colors)
        title = f"Learning-rate robustness: {report.study_name or report.study_id or 'study'}"
        fig.suptitle(title + ("  (partial)" if report.partial else ""), fontsize=12)
        buf = io.BytesIO()
        meta = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
    return buf.getvalue()
