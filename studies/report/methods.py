"""The generated Methods section: how every number of the report was obtained."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from studies.report.collect import Collected
from studies.report.disclose import arm_name
from studies.report.model import DELTAS, MethodsItem, TaskReport
from studies.report.stats import BOOTSTRAP_RESAMPLES, MIN_SEEDS_FOR_CI


def _task_options(task: str, spec_task: Mapping[str, Any]) -> dict[str, Any]:
    from workers.tasks.registry import TASKS  # torch-free

    info = TASKS.get(task)
    opts = dict(info.options) if info is not None else {}
    opts.update(spec_task.get("options") or {})
    return opts


def _fmt(d: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items()) or "none (optimizer defaults)"


def _with_name(o: Mapping[str, Any]) -> dict[str, Any]:
    """An entry's fixed settings; a labelled arm also names its optimizer."""
    fixed = dict(o.get("fixed") or {})
    return {"optimizer": o["name"], **fixed} if o.get("label") else fixed


def _schedule(spec: Mapping[str, Any]) -> str:
    sched = dict(spec.get("schedule") or {})
    if sched.get("name", "constant") == "constant":
        return "constant learning rate (no scheduler, no warm-up) for every optimizer."
    return (
        f"{sched['name']} for every optimizer: linear warm-up over "
        f"{100 * float(sched.get('warmup_fraction', 0.05)):g}% of the steps, then cosine decay "
        f"to {float(sched.get('final_factor', 0.0)):g}x the peak; the η axis is the peak rate."
    )


def _steps(task: TaskReport, col: Collected) -> str:
    b = task.budget
    epochs, cap = b.get("epochs"), b.get("steps_per_epoch")
    seen = max((c.max_step for c in col.cells.get(task.task, {}).values()), default=0)
    planned = f"{epochs} epochs" + (f" × at most {cap} steps = {epochs * cap} steps" if cap else "")
    return planned + (f"; most steps recorded in a run: {seen}" if seen else "")


def _devices(col: Collected) -> str:
    """Where each cell's trials ran (latest attempts): ``task/optimizer: cuda ×12``."""
    parts = []
    for task, cells in col.cells.items():
        for opt, c in cells.items():
            used = ", ".join(f"{d} ×{n}" for d, n in sorted(c.devices.items()))
            parts.append(f"{task}/{opt}: {used or '—'}")
    mixed = len({d for cs in col.cells.values() for c in cs.values() for d in c.devices}) > 1
    note = " (mixed devices: wall-clock times are not comparable across them)" if mixed else ""
    return "; ".join(parts) + note + "." if parts else "no trials recorded."


def methods(
    spec: Mapping[str, Any],
    tasks: list[TaskReport],
    col: Collected,
    confirm_seeds: list[int],
    baseline: str,
) -> list[MethodsItem]:
    """Build the Methods section from the spec, the analysed tasks and the trials."""
    seeds = [int(s) for s in spec.get("seeds") or []]
    spec_tasks = {t["name"]: t for t in spec.get("tasks") or [] if "name" in t}
    loss_factor = (spec.get("divergence") or {}).get("loss_factor", 10.0)
    n = len(seeds)
    interval = (
        f"Student-t 95% intervals with {n - 1} degrees of freedom"
        if n >= MIN_SEEDS_FOR_CI
        else f"no 95% intervals: with {n} seeds (< {MIN_SEEDS_FOR_CI}) every range shown "
        "is the seeds' [min, max], and every seed's value is listed"
    )
    items = [
        MethodsItem(
            topic="Seeds",
            text=f"search seeds {', '.join(map(str, seeds)) or '—'}; every optimizer and every "
            "learning rate runs on the same seeds (a seed fixes initialisation and data order)"
            + (
                f"; confirmation seeds {', '.join(map(str, confirm_seeds))} (η* re-run on "
                "fresh seeds, the DeepOBS protocol: ℓ* and test metrics come from these runs "
                "only; curves from the search seeds only)"
                if confirm_seeds
                else "; no confirmation runs"
            )
            + ".",
        ),
        MethodsItem(
            topic="Resampling design",
            text="the seed is the resampling unit: each seed is reduced to one number first "
            f"(its score at η, or its mean over the declared range), then summarised over seeds "
            f"— {interval}. Failed-to-train shares carry exact (Clopper-Pearson) 95% binomial "
            f"intervals. The across-task IQM uses a stratified percentile bootstrap with "
            f"{BOOTSTRAP_RESAMPLES} resamples (seeds resampled within tasks).",
        ),
        MethodsItem(
            topic="Scoring rule",
            text="every run is scored min(ℓ, ℓ0) in lower-is-better terms, with ℓ the final "
            "validation metric and ℓ0 the mean over seeds of the metric at initialisation; a "
            "run that diverged, or ended no better than ℓ0, failed to train and scores ℓ0. "
            "The same scores feed the curves, Δ, W_δ, sensitivity, wins and tunability.",
        ),
        MethodsItem(
            topic="Divergence rule",
            text="a run diverged when its training loss was non-finite or above "
            f"{loss_factor:g} × its initial loss (stopped early and kept in the curves).",
        ),
        MethodsItem(
            topic="Figures",
            text=f"η*: the grid learning rate with the lowest mean score (ties: the smallest); "
            f"its stability by leaving each seed out. W_δ (δ = {', '.join(map(str, DELTAS))}): "
            "the interval around η* where the mean score ≤ ℓ*_task + δ(ℓ0 − ℓ*_task), one "
            "threshold per task (ℓ*_task: the best optimizer's ℓ*), crossings interpolated in "
            "log η; [min, max] is the bracket the grid spacing allows. Sensitivity and grid Δ "
            "average over the declared learning-rate range. Tunability: expected best score "
            "after k random-search draws from the stored runs (Sivaprasad et al. 2020).",
        ),
    ]
    for t in tasks:
        opts = _task_options(t.task, spec_tasks.get(t.task, {}))
        batch = {k: v for k, v in opts.items() if "batch" in k}
        lr_range = (
            "the whole grid" if t.lr_range is None else f"{t.lr_range[0]:.3g}–{t.lr_range[1]:.3g}"
        )
        compute = sum(o.compute_s for o in t.optimizers)
        items.append(
            MethodsItem(
                topic=f"Task {t.task}",
                text=f"budget {_steps(t, col)}; {_fmt(batch) if batch else 'default batch size'}; "
                f"declared learning-rate range: {lr_range}; "
                f"compute: {compute:.0f} s of trial wall-clock time.",
            )
        )
    fixed = {arm_name(o): _with_name(o) for o in spec.get("optimizers") or [] if "name" in o}
    items += [
        MethodsItem(
            topic="Schedules",
            text=_schedule(spec),
        ),
        MethodsItem(
            topic="Fixed settings",
            text="; ".join(f"{o}: {_fmt(f)}" for o, f in fixed.items()) or "—",
        ),
        MethodsItem(
            topic="Compute time",
            text=f"{sum(c.wall_time_s for cs in col.cells.values() for c in cs.values()):.0f} s of "
            f"trial wall-clock time over {col.n_trials} trials.",
        ),
        MethodsItem(topic="Devices", text=_devices(col)),
        MethodsItem(
            topic="Primary and descriptive",
            text=f"primary: per task, the paired test Δ of each optimizer against {baseline}, "
            "each at its own η*. Descriptive: everything else (curves, validation Δ, grid Δ, "
            "W_δ, sensitivity, tunability, across-task IQM).",
        ),
        MethodsItem(
            topic="Multiplicity",
            text="p-values (paired t-test over seeds, from 5 seeds) of the primary family — "
            "every (task, optimizer) headline — are Holm-adjusted within that family; "
            "descriptive figures carry no p-values and are not corrected.",
        ),
    ]
    return items
