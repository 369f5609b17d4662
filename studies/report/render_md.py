"""Markdown rendering of a :class:`~studies.report.model.Report` (GitHub-flavoured tables).

The table builders return ``(header, rows)`` so the HTML page renders the same tables.
"""

from __future__ import annotations

from collections.abc import Sequence

from studies.report.model import (
    DELTAS,
    Basin,
    Estimate,
    OptimizerReport,
    PairedDiff,
    Proportion,
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


def interval_str(lo: float | None, hi: float | None, kind: str, signed: bool = False) -> str:
    """``[lo, hi]`` for a 95% interval, ``range lo…hi`` for a range, '' without one."""
    if lo is None or hi is None:
        return ""
    f = (lambda x: f"{x:+.3g}") if signed else (lambda x: num(x))
    return f"[{f(lo)}, {f(hi)}]" if kind == "t95" else f"range {f(lo)}…{f(hi)}"


def est_str(e: Estimate | None) -> str:
    """A mean with its interval over seeds: ``0.5 [0.4, 0.6]`` (95%) or ``0.5 range 0.4…0.6``."""
    if e is None:
        return DASH
    iv = interval_str(e.lo, e.hi, e.kind)
    return f"{num(e.mean)} {iv}" if iv else f"{num(e.mean)} (n={e.n})"


def basin_str(b: Basin | None) -> str:
    """W_δ in decades with the grid bracket: ``0.77 (0–2)``; ``≥`` when open-ended."""
    if b is None:
        return DASH
    if not b.reached:
        return "0 (not reached)"
    hi = "∞" if b.width_max is None else f"{b.width_max:.2g}"
    return ("≥" if b.open_ended else "") + f"{b.width:.2f} ({b.width_min:.2g}–{hi})"


def diff_str(d: PairedDiff | None) -> str:
    """A paired difference with its interval over seeds."""
    if d is None:
        return DASH
    iv = interval_str(d.lo, d.hi, d.kind, signed=True)
    return f"{d.mean_diff:+.3g} {iv}".rstrip()


def wtl(d: PairedDiff | None) -> str:
    """Wins/ties/losses."""
    return DASH if d is None else f"{d.wins}/{d.ties}/{d.losses}"


def prop_str(p: Proportion) -> str:
    """``k/n [lo, hi]`` with the exact binomial 95% interval."""
    return f"{p.k}/{p.n} [{p.lo:.2f}, {p.hi:.2f}]"


def pval(p: float | None) -> str:
    """A p-value (a dash when none is computed)."""
    return DASH if p is None else (f"{p:.2g}" if p >= 1e-4 else "<1e-4")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return a Markdown table (cells' ``|`` escaped)."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *map(line, rows)])


def _basin(o: OptimizerReport, delta: float) -> Basin | None:
    return next((b for b in o.basins if b.delta == delta), None)


def _stable(o: OptimizerReport) -> str:
    s = o.stability
    if s is None:
        return DASH
    if s.stable:
        return "stable"
    return f"{s.share_same:.0%} same ({', '.join(lr_str(x) for x in sorted(set(s.lr_star)))})"


def headline_rows(task: TaskReport, baseline: str) -> tuple[list[str], list[list[str]]]:
    """The primary table: paired test Δ, each optimizer at its own η*."""
    header = [
        "optimizer",
        "η* (vs baseline η*)",
        "source",
        f"test Δ vs {baseline}",
        "per-seed Δ",
        "wins/ties/losses",
        "p (Holm)",
        "η* leave-one-seed-out",
    ]
    rows = []
    for o in task.optimizers:
        h = o.headline
        if h is None:
            continue
        rows.append(
            [
                o.optimizer,
                f"{lr_str(h.lr)} (vs {lr_str(h.lr_baseline)})",
                f"{h.source}, n={h.diff.n}",
                f"{h.metric}: {diff_str(h.diff)}",
                ", ".join(f"{v:+.3g}" for v in h.diff.values),
                wtl(h.diff),
                f"{pval(h.diff.p_value)} ({pval(h.diff.p_holm)})",
                _stable(o),
            ]
        )
    return header, rows


def summary_rows(task: TaskReport, baseline: str) -> tuple[list[str], list[list[str]]]:
    """The descriptive table (one row per optimizer)."""
    tests = sorted({m.name for o in task.optimizers for m in o.test_metrics})
    header = [
        "optimizer",
        "η*",
        "ℓ* (source)",
        *(f"W{d:g} (grid bracket)" for d in DELTAS),
        "sensitivity",
        "divergence LR",
        f"grid Δ vs {baseline}",
        "wins/ties/losses (η, seed)",
        "val Δ at η*",
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
                o.optimizer + (" (all failed to train)" if o.all_diverged else "") + flag,
                lr_str(o.lr_star),
                f"{est_str(o.best)} ({o.best_source})" if o.best else DASH,
                *(basin_str(_basin(o, d)) for d in DELTAS),
                est_str(o.sensitivity_seeds) if o.sensitivity_seeds else num(o.sensitivity),
                lr_str(o.divergence_lr),
                diff_str(p.overall) if p else DASH,
                wtl(p.overall) if p else DASH,
                diff_str(p.at_best) if p else DASH,
                *(est_str(test.get(t)) for t in tests),
                ", ".join(f"{v} {k}" for k, v in sorted(o.outcomes.items())) or "0",
            ]
        )
    return header, rows


def curve_rows(task: TaskReport) -> tuple[list[str], list[list[str]]]:
    """The learning-rate curve: one row per η; per optimizer the scores and failures.

    ``**bold**`` marks η*; ``*`` marks an η outside the declared range.
    """
    lrs = sorted({p.lr for o in task.optimizers for p in o.curve})
    header = ["η", *(f"{o.optimizer} (mean · seeds)" for o in task.optimizers)]
    header += [f"{o.optimizer} failed k/n" for o in task.optimizers]
    rows = []
    for lr in lrs:
        row = [lr_str(lr)]
        fails = []
        for o in task.optimizers:
            p = next((p for p in o.curve if p.lr == lr), None)
            if p is None:
                row.append(DASH)
                fails.append(DASH)
                continue
            if not p.in_range:
                row[0] = lr_str(lr) + "*"
            e = p.estimate
            cell = f"{num(e.mean)} · " + ", ".join(num(v, 3) for v in p.values)
            if e.kind == "t95":
                cell = f"{num(e.mean)} {interval_str(e.lo, e.hi, e.kind)}"
            row.append(f"**{cell}**" if lr == o.lr_star else cell)
            fails.append(prop_str(p.failed))
        rows.append(row + fails)
    return header, rows


def tunability_rows(task: TaskReport) -> tuple[list[str], list[list[str]]] | None:
    """Expected best validation score after k random-search trials, per optimizer."""
    curves = {o.optimizer: {t.k: t.expected_best for t in o.tunability} for o in task.optimizers}
    ks = sorted({k for c in curves.values() for k in c})
    if not ks:
        return None
    return ["k trials", *curves], [[str(k), *(num(c.get(k)) for c in curves.values())] for k in ks]


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


def across_rows(report: Report) -> tuple[list[str], list[list[str]]] | None:
    """The across-task IQM table, or None when it is not shown."""
    a = report.across_tasks
    if not a.shown:
        return None
    header = ["optimizer", "tasks", "runs", "IQM of normalised score [95% CI]"]
    rows = [
        [r.optimizer, str(r.n_tasks), str(r.n_runs), f"{r.iqm:.3f} [{r.lo:.3f}, {r.hi:.3f}]"]
        for r in a.rows
    ]
    return header, rows


LEGEND = [
    "Scores: every run counts as min(ℓ, ℓ0) (lower is better; max for a maximised metric); "
    "a run that diverged or ended no better than ℓ0 failed to train.",
    "Intervals are over seeds: `[lo, hi]` is a Student-t 95% interval (5 seeds or more, cut to "
    "the possible range); `range lo…hi` is the seeds' min and max (fewer than 5 seeds), with "
    "every seed's value listed in the curve table.",
    "Failed k/n: runs that failed to train, with an exact binomial 95% interval.",
    "W_δ: decades of learning rate around η* within ℓ*_task + δ(ℓ0 − ℓ*_task), one threshold "
    "per task, interpolated in log η; in brackets the span the grid allows (points inside – "
    "first points outside); ≥: reaches the grid's edge; not reached: η* is above the threshold.",
    "Δ = score(optimizer) − score(baseline), paired by seed; wins/ties/losses count (η, seed) "
    "pairs (a tie, e.g. both failed, is neither). Grid Δ: per seed, the mean over the declared "
    "range (η marked * are outside it), then over seeds.",
    "Primary: the headline test Δ at each optimizer's own η* (p-values from 5 seeds, Holm "
    "within the primary family). Everything else is descriptive.",
]


def legend_lines() -> list[str]:
    """The legend as Markdown bullets under a heading."""
    return ["## Legend", "", *(f"- {x}" for x in LEGEND), ""]


def render_markdown(report: Report) -> str:
    """Render ``report`` as a Markdown document."""
    out = [f"# Learning-rate robustness: {report.study_name or report.study_id or 'study'}", ""]
    if report.partial:
        out += ["> **Partial report**: the study is unfinished or some cells are incomplete.", ""]
    out += [
        f"Objective: `{report.metric}` ({report.direction}) · baseline: `{report.baseline}` · "
        f"{report.n_trials} trials · generated {report.generated_at:%Y-%m-%d %H:%M} UTC",
        "",
    ]
    out += legend_lines()
    for task in report.tasks:
        out += [f"## Task `{task.task}`", "", task_meta(task), ""]
        head = headline_rows(task, report.baseline)
        if head[1]:
            out += ["### Headline (primary)", "", table(*head), ""]
        out += [
            "### Summary (descriptive)",
            "",
            table(*summary_rows(task, report.baseline)),
            "",
            "### Learning-rate curve",
            "",
            table(*curve_rows(task)),
            "",
        ]
        tun = tunability_rows(task)
        if tun is not None:
            out += ["### Tunability (expected best score after k random-search trials)", ""]
            out += [table(*tun), ""]
        eff = effective_lr_rows(task)
        if eff is not None:
            out += [
                "### Effective learning rate (mean η_t/lr per epoch at η*)",
                "",
                table(*eff),
                "",
            ]
    out += ["## Across tasks", ""]
    acr = across_rows(report)
    out += [table(*acr) if acr else report.across_tasks.reason, ""]
    out += methods_lines(report)
    out += disclosure_lines(report)
    return "\n".join(out).rstrip() + "\n"


def task_meta(task: TaskReport) -> str:
    """One line about a task: metric, ℓ0, ℓ*_task, range, grid step, budget."""
    budget = ", ".join(f"{k}={v}" for k, v in task.budget.items() if v is not None) or "default"
    rng = "whole grid" if task.lr_range is None else "–".join(lr_str(x) for x in task.lr_range)
    step = DASH if task.grid_step is None else f"{task.grid_step:.2g} decades"
    return (
        f"`{task.metric}` ({task.direction}) · ℓ0 = {num(task.l0)} ({task.l0_source})"
        + (f" · test ℓ0 = {num(task.l0_test)}" if task.l0_test is not None else "")
        + f" · ℓ*_task = {num(task.l_star_task)} · declared range: {rng} · grid step: {step}"
        + f" · budget: {budget}"
    )


def methods_lines(report: Report) -> list[str]:
    """The generated Methods section as Markdown bullets."""
    return ["## Methods", "", *(f"- **{m.topic}**: {m.text}" for m in report.methods), ""]


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
        f"- Confirmation seeds: {', '.join(map(str, d.confirmation_seeds)) or 'none'}",
        f"- Shared search space: {', '.join(d.shared_search_space) or DASH}",
        f"- Extra dimensions searched for one optimizer only: {extra or 'none'}",
        f"- Fixed hyperparameters: {fixed or DASH}",
        f"- Pruning: {d.pruning or 'off'}",
        f"- Budgets: {budgets or DASH}",
        f"- Sampler: {sampler or DASH}",
    ]
    lines += [f"- {n}" for n in d.notes]
    return [*lines, ""]
