"""What the Optuna studies of our cells show in optuna-dashboard, and live trials.

Each cell's Optuna study names its objective (``set_metric_names``: ``val_loss``, not
"Objective 0"); a trial gets a RUNNING Optuna trial when it starts (a real start time
and intermediate values as epochs arrive); a finished trial carries user attributes
that say how it ended and how it was scored.

Diverged trials stay ``COMPLETE``, valued at their initial objective ℓ0: that is the
value the report and the samplers score them with (a ``FAIL`` trial would be dropped by
the samplers and by the dashboard's history and slice plots). They say so in the user
attributes ``outcome`` (``diverged``), ``diverged_at_step``, ``scoring`` and ``note``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState

from labcore.outcomes import Outcome


def name_objective(study: optuna.Study, direction: str, metric: str) -> None:
    """Name the study's objective ``metric`` (and note ``"minimize val_loss"``)."""
    study.set_user_attr("objective", f"{direction} {metric}")
    if study.metric_names != [metric]:
        with warnings.catch_warnings():  # set_metric_names is marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([metric])


def new_running_trial(
    study: optuna.Study,
    params: Mapping[str, Any],
    dists: Mapping[str, BaseDistribution],
    user_attrs: Mapping[str, Any],
) -> optuna.Trial:
    """Create a RUNNING trial that starts now with fixed ``params`` (one transaction)."""
    template = optuna.trial.FrozenTrial(
        number=-1,
        state=TrialState.RUNNING,
        value=None,
        datetime_start=datetime.now(),
        datetime_complete=None,
        params=dict(params),
        distributions={k: dists[k] for k in params if k in dists},
        user_attrs=dict(user_attrs),
        system_attrs={},
        intermediate_values={},
        trial_id=-1,
    )
    trial_id = study._storage.create_new_trial(study._study_id, template_trial=template)
    return optuna.trial.Trial(study, trial_id)


def outcome_attrs(
    metric: str, outcome: str, value: float | None, diverged_at_step: int | None
) -> dict[str, Any]:
    """User attributes that say how a trial ended and how it was scored (module doc)."""
    attrs: dict[str, Any] = {}
    if diverged_at_step is not None:
        attrs["diverged_at_step"] = diverged_at_step
    if outcome == Outcome.DIVERGED:
        shown = "n/a" if value is None else f"{value:.6g}"
        step = "?" if diverged_at_step is None else diverged_at_step
        attrs["scoring"] = f"ℓ0: initial {metric}"
        attrs["note"] = f"DIVERGED at step {step}; value = initial {metric} ℓ0 = {shown}"
    return attrs
