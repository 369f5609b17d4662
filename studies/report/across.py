"""Across tasks: IQM of normalised scores with stratified bootstrap intervals, from 3 tasks.

Per (task, optimizer, seed) the normalised score of the optimizer's selected runs (its η*
confirmation runs when there are any, else its η* search runs) is
``u = (ℓ0 − score) / (ℓ0 − ℓ*_task)``: 0 at the initial metric (failed to train), 1 at
the task's best ℓ*. Each optimizer's interquartile mean (IQM) pools its tasks and seeds;
the interval is a percentile bootstrap that resamples seeds within each task (Agarwal et
al. 2021, "Deep RL at the edge of the statistical precipice"). With fewer than
:data:`MIN_TASKS` tasks no aggregate is shown: two tasks say nothing general.
"""

from __future__ import annotations

import numpy as np

from studies.report.model import AcrossRow, AcrossTasks
from studies.report.stats import BOOTSTRAP_RESAMPLES, stable_seed, stratified_bootstrap_iqm

MIN_TASKS = 3


def across_tasks(
    normalised: dict[str, dict[str, np.ndarray]], n_tasks: int, resamples: int = BOOTSTRAP_RESAMPLES
) -> AcrossTasks:
    """Aggregate ``{optimizer: {task: per-seed normalised scores}}`` over tasks.

    Args:
        normalised: Per optimizer and task, the normalised scores of its selected runs.
        n_tasks: Tasks in the report (with a usable ℓ0 and ℓ*_task).
        resamples: Bootstrap resamples.
    """
    if n_tasks < MIN_TASKS:
        return AcrossTasks(
            shown=False,
            reason=f"{n_tasks} task(s) with a usable ℓ0: an aggregate needs at least "
            f"{MIN_TASKS}, so none is shown.",
            resamples=resamples,
        )
    rows = []
    for opt, by_task in normalised.items():
        groups = [v for v in by_task.values() if v.size]
        if len(groups) < MIN_TASKS:
            continue
        point, lo, hi = stratified_bootstrap_iqm(groups, stable_seed("iqm", opt), resamples)
        rows.append(
            AcrossRow(
                optimizer=opt,
                n_tasks=len(groups),
                n_runs=int(sum(g.size for g in groups)),
                iqm=point,
                lo=lo,
                hi=hi,
            )
        )
    return AcrossTasks(
        shown=bool(rows),
        reason=f"IQM over {n_tasks} tasks, stratified bootstrap over seeds within tasks.",
        resamples=resamples,
        rows=rows,
    )
