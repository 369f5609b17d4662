"""Markdown rendering of a :class:`~studies.report.model.Report` (GitHub-flavoured tables)."""

from __future__ import annotations

from collections.abc import Sequence

from studies.report.model import (
    DELTAS,
    Basin,
    Estimate,
    OptimizerReport,
    PairedDiff,
    Report,
    TaskReport,
)

DASH = "—"


def num(x: float | None, digits: int = 4) -> str:
    """Format a number with ``digits`` significant digits (a dash for None)."""
    return DASH if x is None else f"{x:.{digits}g}"


def lr_str(x: float | None) -> str:
    """Format a learning rate."""
    return DASH if x is None else f"{x:.3g}"


def est_str(e: Estimate | None) -> str:
    """Format a mean with its 95% interval: ``0.1234 [0.1100, 0.1300]``."""
    if e is None:
        return DASH
    if e.lo is None or e.hi is None:
        return f"{num(e.mean)} (n={e.n})"
    return f"{num(e.mean)} [{num(e.lo)}, {num(e.hi)}]"


def basin_str(b: Basin | None) -> str:
    """Format a basin width in decades; ``≥`` marks an open-ended (lower-bound) width."""
    if b is None:
        return DASH
    return ("≥" if b.open_ended else "") + f"{b.width:.2f}"


def diff_str(d: PairedDiff | None) -> str:
    """Format a paired difference with its bootstrap interval."""
    return DASH if d is None else f"{d.mean_diff:+.3g} [{d.ci_lo:+.3g}, {d.ci_hi:+.3g}]"


def pct(x: float | None) -> str:
    """Format a rate as a percentage."""
    return DASH if x is None else f"{100 * x:.0f}%"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return a Markdown table (cells' ``|`` escaped)."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *map(line, rows)])


def _basin(o: OptimizerReport, delta: float) -> Basin | None:
    return next((b for b in o.basins if b.delta == delta), None)


def summary_rows(task: TaskReport, baseline: str) -> tuple[list[str], list[list[str]]]:
    """Return the header and rows of a task's summary table (one row per optimizer)."""
    tests = sorted({m.name for o in task.optimizers for m in o.test_metrics})
    header = [
        "optimizer",
        "η*",
        "ℓ* [95% CI]",
        *(f"W{d:g}" for d in DELTAS),
        "sensitivity",
        "divergence LR",
        f"Δ vs {baseline} [95% CI]",
        "win rate",
        "Δ at η* [95% CI]",
        *(f"{t} at η*" for t in tests),
        "trials",
    ]
    rows = []
    for o in task.optimizers:
        p = o.paired
        test = {m.name: m.estimate for m in o.test_metrics}
        flag = "" if o.complete else " (incomplete)"
        rows.append(
            [
                o.optimizer + (" (all diverged)" if o.all_diverged else "") + flag,
                lr_str(o.lr_star),
                est_str(o.best),
                *(basin_str(_basin(o, d)) for d in DELTAS),
                num(o.sensitivity),
                lr_str(o.divergence_lr),
                diff_str(p.overall) if p else DASH,
                pct(p.overall.win_rate) if p and p.overall else DASH,
                diff_str(p.at_best) if p else DASH,
                *(est_str(test.get(t)) for t in tests),
                ", ".join(f"{v} {k}" for k, v in sorted(o.outcomes.items())) or "0",
            ]
        )
    return header, rows


def curve_rows(task: TaskReport) -> tuple[list[str], list[list[str]]]:
    """Return the learning-rate curve table: one row per η, one column per optimizer.

    ``**bold**`` marks η*; ``✕k/n`` counts diverged seeds out of ``n``.
    """
    lrs = sorted({p.lr for o in task.optimizers for p in o.curve})
    header = ["η", *(o.optimizer for o in task.optimizers)]
    rows = []
    for lr in lrs:
        row = [lr_str(lr)]
        for o in task.optimizers:
            p = next((p for p in o.curve if p.lr == lr), None)
            if p is None:
                row.append(DASH)
                continue
            cell = est_str(p.estimate)
            if p.diverged_seeds:
                cell += f" ✕{len(p.diverged_seeds)}/{len(p.seeds)}"
            row.append(f"**{cell}**" if lr == o.lr_star else cell)
        rows.append(row)
    return header, rows


def effective_lr_rows(task: TaskReport) -> tuple[list[str], list[list[str]]] | None:
    """Return the effective-LR table (mean η_t/lr per epoch at η*), or None without data."""
    curves = {}
    for o in task.optimizers:
        at = o.lr_star if o.lr_star is not None else (o.curve[0].lr if o.curve else None)
        c = next((c for c in o.effective_lr if c.lr == at), None)
        if c is not None:
            curves[f"{o.optimizer} (η={lr_str(at)})"] = dict(
                zip(c.epochs, c.mean_ratio, strict=True)
            )
    if not curves:
        return None
    epochs = sorted({e for c in curves.values() for e in c})
    rows = [[str(e), *(num(c.get(e)) for c in curves.values())] for e in epochs]
    return ["epoch", *curves], rows


def render_markdown(report: Report) -> str:
    """Render ``report`` as a Markdown document."""
    out = [f"# Learning-rate robustness: {report.study_name or report.study_id or 'study'}", ""]
    if report.partial:
        out += ["> **Partial report**: the study is unfinished or some cells are incomplete.", ""]
    out += [
        f"Objective: `{report.metric}` ({report.direction}) · baseline: `{report.baseline}` · "
        f"{report.n_trials} trials · generated {report.generated_at:%Y-%m-%d %H:%M} UTC",
        "",
        "ℓ* with a Student-t 95% interval over seeds; W_δ in decades (≥: the basin reaches the "
        "grid's edge); Δ = value − baseline value, paired by (η, seed), bootstrap 95% interval; "
        "diverged runs count as ℓ0.",
        "",
    ]
    for task in report.tasks:
        budget = (
            ", ".join(f"{k}={v}" for k, v in task.budget.items() if v is not None) or "task default"
        )
        out += [
            f"## Task `{task.task}`",
            "",
            f"`{task.metric}` ({task.direction}) · ℓ0 = {num(task.l0)} ({task.l0_source}) · "
            f"budget: {budget}",
            "",
            table(*summary_rows(task, report.baseline)),
            "",
            "### Learning-rate curve",
            "",
            table(*curve_rows(task)),
            "",
        ]
        eff = effective_lr_rows(task)
        if eff is not None:
            out += [
                "### Effective learning rate (mean η_t/lr per epoch at η*)",
                "",
                table(*eff),
                "",
            ]
    out += ["## Aggregate across tasks", "", table(*aggregate_rows(report)), ""]
    out += disclosure_lines(report)
    return "\n".join(out).rstrip() + "\n"


def aggregate_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    """Return the aggregate table (one row per optimizer, each task weighing the same)."""
    header = [
        "optimizer",
        "tasks",
        *(f"W{d:g}/grid" for d in DELTAS),
        "normalised sensitivity",
        f"win rate vs {report.baseline}",
        "tasks better at η*",
    ]
    rows = [
        [
            a.optimizer,
            str(a.n_tasks),
            *(num(a.basin_width_normalised.get(str(d)), 3) for d in DELTAS),
            num(a.sensitivity_normalised, 3),
            pct(a.win_rate),
            DASH if a.tasks_better_at_best is None else f"{a.tasks_better_at_best}/{a.n_tasks}",
        ]
        for a in report.aggregate
    ]
    return header, rows


def disclosure_lines(report: Report) -> list[str]:
    """Return the disclosures as a Markdown bullet list under a heading."""
    d = report.disclosures
    extra = "; ".join(f"{k}: {', '.join(v)}" for k, v in d.extra_search_dimensions.items())
    budgets = "; ".join(
        f"{t}: " + (", ".join(f"{k}={v}" for k, v in b.items() if v is not None) or "task default")
        for t, b in d.budgets.items()
    )
    sampler = ", ".join(f"{k}={v}" for k, v in d.sampler.items() if v is not None)
    fixed = "; ".join(
        f"{o}: " + (", ".join(f"{k}={v}" for k, v in f.items()) or "none")
        for o, f in d.fixed.items()
    )
    lines = [
        "## Disclosures",
        "",
        f"- Seeds: {', '.join(map(str, d.seeds)) or DASH}",
        f"- Shared search space: {', '.join(d.shared_search_space) or DASH}",
        f"- Extra dimensions searched for one optimizer only: {extra or 'none'}",
        f"- Fixed hyperparameters: {fixed or DASH}",
        f"- Pruning: {d.pruning or 'off'}",
        f"- Budgets: {budgets or DASH}",
        f"- Sampler: {sampler or DASH}",
    ]
    lines += [f"- {n}" for n in d.notes]
    return [*lines, ""]
