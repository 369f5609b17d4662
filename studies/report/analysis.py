"""Learning-rate robustness figures (``docs/report.md``), pure and database-free.

ℓ(o, η, s) is the final objective metric of optimizer o at learning rate η and seed s,
turned lower-is-better internally (a maximised metric is negated; every reported number is
turned back into the metric's own units). Every run is scored ``min(ℓ, ℓ0)``; the seed is
the resampling unit. The definitions of each figure live in the modules that compute it:
:mod:`~studies.report.figures` (curve, η* stability, sensitivity, tunability, test
metrics), :mod:`~studies.report.basin` (W_δ), :mod:`~studies.report.compare` (paired Δ,
headline), :mod:`~studies.report.across` (across tasks), :mod:`~studies.report.methods`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

from labcore.errors import SpecError
from studies.report import figures as fig
from studies.report.across import across_tasks
from studies.report.basin import basin, grid_step, signed_basin, task_thresholds
from studies.report.collect import (
    Cell,
    Collected,
    Point,
    TrialLike,
    best_index,
    cell_points,
    collect,
    lr_key,
    per_seed_mean,
)
from studies.report.compare import headline, paired
from studies.report.confirm import confirmation_seeds
from studies.report.disclose import disclosures
from studies.report.methods import methods
from studies.report.model import OptimizerReport, Report, TaskReport
from studies.report.stats import holm, seed_interval


def _objective(spec: Mapping[str, Any]) -> tuple[str, str]:
    obj = spec.get("objective") or {}
    metric = str(obj.get("metric", "val_loss"))
    direction = str(obj.get("direction", "minimize"))
    if direction not in ("minimize", "maximize"):
        raise SpecError("must be 'minimize' or 'maximize'", field="objective.direction")
    return metric, direction


def _lr_range(spec: Mapping[str, Any]) -> tuple[float, float] | None:
    rng = (spec.get("analysis") or {}).get("lr_range")
    return None if not rng else (float(rng[0]), float(rng[1]))


def _default_budget(task: str) -> dict[str, Any]:
    """The registry's default budget of a task the spec left unset ({} if unknown)."""
    from workers.tasks.registry import TASKS  # torch-free

    info = TASKS.get(task)
    if info is None:
        return {}
    b = info.default_budget
    return {"epochs": b.epochs, "steps_per_epoch": b.steps_per_epoch}


def _complete(cell: Cell, seeds: set[int], planned: int | None, n_points: int | None) -> bool:
    if not cell.groups:
        return False
    if planned is not None and cell.n_final < planned:
        return False
    if n_points is not None and len(cell.groups) < n_points:
        return False
    return all(seeds <= g.finished_seeds for by in cell.groups.values() for g in by.values())


def _confirmed(cell: Cell, l0: float | None, lr_star: float | None) -> Point | None:
    """The confirmation runs of a cell: the configuration re-run on the fresh seeds.

    Normally one configuration at η*; otherwise the one at η* with the most runs, else the
    one with the most runs anywhere.
    """
    pts = cell_points(cell, l0, confirm=True)
    if not pts:
        return None
    at_star = [p for p in pts if p.lr == lr_star]
    return max(at_star or pts, key=lambda p: p.seeds.size)


class _Task:
    """The analysis of one task (signed values throughout)."""

    def __init__(self, task: str, col: Collected, ctx: dict[str, Any]) -> None:
        self.task, self.ctx = task, ctx
        init = col.initial.get(task)
        self.l0 = per_seed_mean(init) if init else col.worst.get(task)
        self.l0_source = (
            "initial_metrics" if init else ("worst_observed" if task in col.worst else "none")
        )
        tinit = col.initial_test.get(task)
        self.l0_test = per_seed_mean(tinit) if tinit else None
        self.cells = col.cells.get(task, {})
        self.bounds = fig.score_bounds(ctx["metric"], ctx["sign"], self.l0)

    def build(self, opts: list[str]) -> TaskReport:
        c, sign, lr_range = self.ctx, self.ctx["sign"], self.ctx["lr_range"]
        pts = {o: cell_points(self.cells.get(o) or Cell(self.task, o), self.l0) for o in opts}
        stars = {
            o: (best_index(p) if p and not all(x.failed.all() for x in p) else None)
            for o, p in pts.items()
        }
        l_stars = [pts[o][i].mean() for o, i in stars.items() if i is not None]
        l_star_task = min(l_stars) if l_stars else None
        taus = task_thresholds(l_star_task, self.l0) if l_star_task is not None else {}
        chosen: dict[str, Point | None] = {}
        reports: dict[str, OptimizerReport] = {}
        for o in opts:
            cell = self.cells.get(o) or Cell(self.task, o)
            reports[o], chosen[o] = self._optimizer(cell, pts[o], stars[o], taus)
        base = c["baseline"]
        if pts.get(base):
            for o, rep in reports.items():
                if o == base:
                    continue
                pc = paired(
                    pts[o], pts[base], rep.lr_star, reports[base].lr_star, base, sign, lr_range
                )
                hl = None
                mine, theirs = chosen.get(o), chosen.get(base)
                if mine is not None and theirs is not None:
                    src = (
                        "confirmation"
                        if rep.best_source == reports[base].best_source == "confirmation"
                        else "search"
                    )
                    if src == "search":
                        mine, theirs = pts[o][stars[o]], pts[base][stars[base]]  # type: ignore[index]
                    hl = headline(mine, theirs, c["metric"], sign, self.l0_test, src)  # type: ignore[arg-type]
                reports[o] = rep.model_copy(update={"paired": pc, "headline": hl})
        else:
            c["notes"].append(
                f"Task {self.task}: baseline {base!r} has no trials; no paired comparison."
            )
        self.chosen = chosen
        self.l_star_task = l_star_task
        lrs = sorted({p.lr for ps in pts.values() for p in ps})
        return TaskReport(
            task=self.task,
            metric=c["metric"],
            direction=c["direction"],
            l0=None if self.l0 is None else sign * self.l0,
            l0_source=self.l0_source,  # type: ignore[arg-type]
            l0_test=None if self.l0_test is None else sign * self.l0_test,
            l_star_task=None if l_star_task is None else sign * l_star_task,
            lr_range=list(lr_range) if lr_range else None,
            grid_step=grid_step(lrs),
            budget=c["budgets"].get(self.task, {}),
            optimizers=list(reports.values()),
        )

    def _optimizer(
        self, cell: Cell, pts: list[Point], i: int | None, taus: dict[float, float]
    ) -> tuple[OptimizerReport, Point | None]:
        c, sign = self.ctx, self.ctx["sign"]
        complete = _complete(
            cell, c["seeds"], (c["planned"] or {}).get((self.task, cell.optimizer)), c["n_points"]
        )
        c["complete"].append(complete)
        common: dict[str, Any] = dict(
            optimizer=cell.optimizer,
            curve=fig.curve(pts, sign, self.bounds, c["lr_range"]),
            outcomes=dict(cell.outcomes),
            complete=complete,
            effective_lr=fig.effective_lr(pts),
            compute_s=cell.wall_time_s,
            tunability=fig.tunability(cell, self.l0, c["seeds"], sign),
            divergence_lr=next(
                (p.lr for p in pts if 2 * int(p.diverged.sum()) >= p.diverged.size), None
            ),
        )
        if i is None:
            return OptimizerReport(
                **common,
                lr_star=None,
                best=None,
                basins=[],
                sensitivity=None,
                sensitivity_normalised=1.0 if pts else None,
                all_diverged=bool(pts),
            ), None
        star = pts[i]
        l_star = star.mean()
        lrs = np.array([p.lr for p in pts])
        means = np.array([p.mean() for p in pts])
        sens, sens_iv = fig.sensitivity(pts, l_star, self.bounds, c["lr_range"])
        span = (self.l0 - l_star) if self.l0 is not None else 0.0
        search_best = fig.estimate(seed_interval(star.values, self.bounds), sign)
        conf = _confirmed(cell, self.l0, star.lr)
        sel = conf if conf is not None else star
        best = (
            search_best
            if conf is None
            else fig.estimate(seed_interval(conf.values, self.bounds), sign)
        )
        src = "search" if conf is None else "confirmation"
        rep = OptimizerReport(
            **common,
            lr_star=star.lr,
            best=best,
            best_source=src,  # type: ignore[arg-type]
            best_search=search_best,
            stability=fig.stability(
                cell, self.l0, sorted(c["seeds"]) or star.seeds.tolist(), star.lr
            ),
            confirmation_config=None if conf is None else {"lr": conf.lr, **conf.group.config},
            basins=[signed_basin(basin(lrs, means, i, t, d), sign) for d, t in taus.items()],
            sensitivity=sens,
            sensitivity_seeds=None if sens_iv is None else fig.estimate(sens_iv, 1.0),
            sensitivity_normalised=sens / span if sens is not None and span > 0 else None,
            all_diverged=False,
            test_metrics=fig.test_metrics(sel, c["metric"], sign, self.l0_test, src),  # type: ignore[arg-type]
        )
        return rep, sel

    def normalised(self) -> dict[str, np.ndarray]:
        """Per optimizer: ``(ℓ0 − score) / (ℓ0 − ℓ*_task)`` of its selected runs."""
        if self.l0 is None or self.l_star_task is None or self.l0 <= self.l_star_task:
            return {}
        span = self.l0 - self.l_star_task
        return {o: (self.l0 - p.values) / span for o, p in self.chosen.items() if p is not None}


def _ordered(spec_names: list[str], seen: Iterable[str]) -> list[str]:
    """Return the spec's names in order (even without trials), then any others sorted."""
    names = list(dict.fromkeys(spec_names))
    return names + sorted(set(seen) - set(names))


def _apply_holm(tasks: list[TaskReport]) -> list[TaskReport]:
    """Holm-adjust the headline p-values over every (task, optimizer) of the report."""
    heads = [
        (ti, oi) for ti, t in enumerate(tasks) for oi, o in enumerate(t.optimizers) if o.headline
    ]
    adjusted = holm([tasks[ti].optimizers[oi].headline.diff.p_value for ti, oi in heads])  # type: ignore[union-attr]
    out = [list(t.optimizers) for t in tasks]
    for (ti, oi), p in zip(heads, adjusted, strict=True):
        o = out[ti][oi]
        hl = o.headline
        assert hl is not None
        out[ti][oi] = o.model_copy(
            update={
                "headline": hl.model_copy(update={"diff": hl.diff.model_copy(update={"p_holm": p})})
            }
        )
    return [t.model_copy(update={"optimizers": out[i]}) for i, t in enumerate(tasks)]


def analyze(
    trials: Iterable[TrialLike],
    spec: Mapping[str, Any],
    baseline: str = "adamw",
    partial: bool = False,
    *,
    study_id: str | None = None,
    study_name: str | None = None,
    planned: Mapping[tuple[str, str], int] | None = None,
) -> Report:
    """Compute the learning-rate robustness report of a study's trials.

    Args:
        trials: Trial records (:class:`studies.store.records.TrialRecord` or alike), with
            their epochs when VRAdam's effective learning rate is wanted. Trials with a
            seed in ``spec["confirmation"]["seeds"]`` are confirmation runs.
        spec: The study definition as a dict (``StudySpec.model_dump()`` shape).
        baseline: The optimizer every other one is compared with.
        partial: Mark the report partial (e.g. the study is still running); it is also
            marked partial when any cell lacks planned points or seeds.
        study_id: Recorded in the report.
        study_name: Recorded in the report (default: ``spec["name"]``).
        planned: Trials planned per ``(task, optimizer)`` (the store's cells).

    Returns:
        The report.

    Raises:
        SpecError: ``spec["objective"]["direction"]`` is not minimize or maximize.
    """
    metric, direction = _objective(spec)
    sign = -1.0 if direction == "maximize" else 1.0
    confirm = confirmation_seeds(spec)
    col = collect(trials, metric, sign, confirm_seeds=confirm)
    spec_tasks = [t["name"] for t in spec.get("tasks") or [] if "name" in t]
    spec_opts = [o["name"] for o in spec.get("optimizers") or [] if "name" in o]
    sampler = spec.get("sampler") or {}
    budgets = {
        t["name"]: dict(t.get("budget") or _default_budget(t["name"]))
        for t in spec.get("tasks") or []
        if "name" in t
    }
    ctx: dict[str, Any] = {
        "metric": metric,
        "direction": direction,
        "sign": sign,
        "baseline": baseline,
        "lr_range": _lr_range(spec),
        "seeds": {int(s) for s in spec.get("seeds") or []},
        "planned": planned,
        "n_points": (sampler.get("points") or {}).get("lr")
        if sampler.get("name") == "grid"
        else None,
        "budgets": budgets,
        "notes": list(col.notes),
        "complete": [],
    }
    tasks: list[TaskReport] = []
    norm: dict[str, dict[str, np.ndarray]] = {}
    n_usable = 0
    for name in _ordered(spec_tasks, col.cells):
        t = _Task(name, col, ctx)
        tasks.append(t.build(_ordered(spec_opts, t.cells)))
        got = t.normalised()
        n_usable += bool(got)
        for o, v in got.items():
            norm.setdefault(o, {})[name] = v
    tasks = _apply_holm(tasks)
    return Report(
        study_id=study_id,
        study_name=study_name or spec.get("name"),
        generated_at=datetime.now(UTC),
        partial=partial or not all(ctx["complete"]),
        baseline=baseline,
        metric=metric,
        direction=direction,  # type: ignore[arg-type]
        n_trials=col.n_trials,
        tasks=tasks,
        across_tasks=across_tasks(norm, n_usable),
        methods=methods(spec, tasks, col, confirm, baseline),
        disclosures=disclosures(spec, budgets, col, ctx["notes"], confirm),
    )


__all__ = ["analyze", "lr_key"]
