"""Which configuration of a cell to confirm on fresh seeds (the DeepOBS protocol).

The engine calls :func:`select_for_confirmation` once per cell after the search and re-runs
the returned hyperparameters once per ``spec.confirmation.seeds`` seed, recording those
trials in the same cell. The choice uses exactly the report's scoring, so the report's η*
and the confirmed configuration are the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from studies.report.collect import (
    TrialLike,
    best_index,
    cell_points,
    collect,
    per_seed_mean,
)


def _get(spec: Any, key: str, default: Any = None) -> Any:
    if isinstance(spec, Mapping):
        return spec.get(key, default)
    return getattr(spec, key, default)


def confirmation_seeds(spec: Any) -> list[int]:
    """The confirmation seeds of a spec (a ``StudySpec`` or its dict); [] when none."""
    conf = _get(spec, "confirmation")
    seeds = _get(conf, "seeds") if conf is not None else None
    return [int(s) for s in seeds or ()]


def select_for_confirmation(spec: Any, trials: Iterable[TrialLike]) -> dict[str, Any] | None:
    """Return the hyperparameters of one cell to re-run on the confirmation seeds.

    The rule is the report's η*: every search run (a seed in ``spec.seeds``) is scored
    ``min(ℓ, ℓ0)`` in lower-is-better terms (a diverged run scores ℓ0; ℓ0 is the mean over
    search seeds of each seed's mean initial objective metric among the given trials,
    falling back to the worst final value observed); at each learning rate the
    configuration with the lowest mean score over the search seeds is kept (ties: the
    first by canonical key), and the learning rate with the lowest such mean wins (ties:
    the smallest). Pruned and failed trials and trials of other seeds are ignored.

    Args:
        spec: The study definition (``StudySpec`` or its ``to_dict()``): reads ``seeds``,
            ``objective`` and ``confirmation``.
        trials: The cell's trial records (one task, one optimizer).

    Returns:
        The full hyperparameters (``lr`` included) of the configuration to confirm, or
        None when no search run is usable (every run pruned or failed, or no trials).

    Raises:
        ValueError: The trials span more than one (task, optimizer) cell.
    """
    objective = _get(spec, "objective")
    metric = str(_get(objective, "metric", "val_loss") or "val_loss")
    direction = str(_get(objective, "direction", "minimize") or "minimize")
    sign = -1.0 if direction == "maximize" else 1.0
    search = {int(s) for s in _get(spec, "seeds") or ()}
    trials = list(trials)
    others = ({int(t.seed) for t in trials} - search) if search else set()
    col = collect(trials, metric, sign, confirm_seeds=others)
    cells = [c for by_opt in col.cells.values() for c in by_opt.values()]
    if len(cells) > 1:
        raise ValueError("select_for_confirmation takes the trials of one cell")
    if not cells:
        return None
    cell = cells[0]
    init = col.initial.get(cell.task)
    l0 = per_seed_mean(init) if init else col.worst.get(cell.task)
    pts = cell_points(cell, l0)
    if not pts:
        return None
    p = pts[best_index(pts)]
    run = p.group.runs[int(p.seeds[0])]
    return dict(run.trial.hparams)
