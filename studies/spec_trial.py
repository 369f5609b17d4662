"""The sections of a study that shape each trial's run: divergence, pruning, schedule.

Part of :mod:`studies.spec` (re-exported there). All three are shared by every optimizer
of a study, so the comparison stays paired.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from labcore.schedule import Schedule, ScheduleName


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DivergenceSpec(_Frozen):
    """Divergence stops are always on: a loss above ``loss_factor`` x initial, or non-finite."""

    loss_factor: float = Field(default=10.0, gt=1.0)


class PruningSpec(_Frozen):
    """Early stopping of unpromising trials; off by default (it biases LR comparisons)."""

    name: Literal["none", "median", "asha"] = "none"
    n_startup_trials: int = Field(default=5, ge=0, description="median: trials before pruning.")
    n_warmup_epochs: int = Field(default=1, ge=0, description="median: epochs before pruning.")
    min_resource: int = Field(default=1, ge=1, description="asha: minimum epochs.")
    reduction_factor: int = Field(default=3, ge=2, description="asha: reduction factor.")


class ScheduleSpec(_Frozen):
    """The learning-rate schedule of every trial, the same for all optimizers.

    ``lr`` is the peak; see :mod:`labcore.schedule`. A schedule other than ``constant``
    needs each task's ``budget.steps_per_epoch`` (the total number of steps must be known).
    """

    name: ScheduleName = "constant"
    warmup_fraction: float = Field(
        default=Schedule.warmup_fraction,
        ge=0.0,
        lt=1.0,
        description="warmup_cosine: share of steps warming up.",
    )
    final_factor: float = Field(
        default=Schedule.final_factor,
        ge=0.0,
        le=1.0,
        description="warmup_cosine: last step's lr / peak lr.",
    )

    def to_schedule(self) -> Schedule | None:
        """The schedule a trial request carries (``None`` for ``constant``)."""
        return None if self.name == "constant" else Schedule(**self.model_dump())
