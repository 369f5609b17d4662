"""The learning-rate robustness report as typed, JSON-serialisable pydantic models.

Units: every metric value (curve means, intervals, ℓ*, ℓ0, thresholds, test metrics) is in
the objective metric's own units and direction. ``sensitivity`` is a non-negative
degradation in those units. Paired differences are ``value(optimizer) - value(baseline)``
in metric units, so a negative difference is better for ``minimize`` and a positive one
for ``maximize``; ``win_rate`` already accounts for the direction. Learning rates are
floats; basin widths are in decades (log10). :func:`report_json_schema` returns the JSON
schema of :class:`Report`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
DELTAS: tuple[float, ...] = (0.05, 0.1, 0.25)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Estimate(_Model):
    """A mean over seeds with its two-sided 95% Student-t interval."""

    mean: float
    lo: float | None = Field(None, description="Lower 95% bound; None when n < 2.")
    hi: float | None = Field(None, description="Upper 95% bound; None when n < 2.")
    n: int = Field(description="Seeds averaged.")


class CurvePoint(_Model):
    """One learning rate of an optimizer's learning-rate curve."""

    lr: float
    estimate: Estimate = Field(description="Mean final metric over seeds (diverged runs = ℓ0).")
    seeds: list[int] = Field(description="Seeds with a usable run, in order.")
    values: list[float] = Field(description="Per-seed final metric, aligned with seeds.")
    diverged_seeds: list[int] = Field(description="Seeds whose run diverged (counted as ℓ0).")
    n_pruned: int = Field(0, description="Pruned runs at this point (excluded).")
    n_failed: int = Field(0, description="Failed runs at this point (excluded).")
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="The other searched hyperparameters of the configuration shown here "
        "(the best mean over seeds at this learning rate).",
    )
    n_configs: int = Field(1, description="Configurations tried at this learning rate.")


class Basin(_Model):
    """The contiguous grid interval around η* whose mean metric is within δ of ℓ*."""

    delta: float
    threshold: float = Field(description="ℓ* + δ(ℓ0 − ℓ*), in metric units.")
    lr_lo: float
    lr_hi: float
    width: float = Field(description="log10(lr_hi / lr_lo), decades.")
    open_low: bool = Field(description="The basin reaches the grid's lowest learning rate.")
    open_high: bool = Field(description="The basin reaches the grid's highest learning rate.")
    open_ended: bool = Field(
        description="open_low or open_high: the true width may be larger than measured."
    )


class PairedDiff(_Model):
    """Paired differences against the baseline: mean, bootstrap 95% interval, win rate."""

    n_pairs: int
    mean_diff: float = Field(description="Mean of value(optimizer) − value(baseline).")
    ci_lo: float
    ci_hi: float
    win_rate: float = Field(description="Share of pairs where the optimizer is better (ties ½).")


class PairedAtLR(_Model):
    """Paired differences at one learning rate (over seeds)."""

    lr: float
    diff: PairedDiff


class PairedComparison(_Model):
    """Paired comparison with the baseline on one task."""

    baseline: str
    overall: PairedDiff | None = Field(
        description="Over every (learning rate, seed) both ran; None when none matched."
    )
    per_lr: list[PairedAtLR]
    at_best: PairedDiff | None = Field(
        description="Each at its own η*, paired by seed; None when no seed matched."
    )
    lr_best: float | None = None
    lr_best_baseline: float | None = None


class EffectiveLRCurve(_Model):
    """VRAdam's mean effective learning-rate ratio η_t/lr per epoch at one learning rate."""

    lr: float
    epochs: list[int]
    mean_ratio: list[float]
    n: list[int] = Field(description="Runs averaged at each epoch (diverged runs stop early).")


class SelectedTestMetric(_Model):
    """A test metric of the selected configuration (η*), over its completed seeds."""

    name: str
    estimate: Estimate


class OptimizerReport(_Model):
    """Every robustness figure of one optimizer on one task."""

    optimizer: str
    curve: list[CurvePoint]
    lr_star: float | None = Field(description="η*: grid learning rate with the best mean.")
    best: Estimate | None = Field(description="ℓ* with its interval over seeds.")
    basins: list[Basin]
    sensitivity: float | None = Field(
        description="Mean over the grid of (min(ℓ, ℓ0) − ℓ*) in lower-is-better terms."
    )
    sensitivity_normalised: float | None = Field(
        description="sensitivity / (ℓ0 − ℓ*), in [0, 1]; 1 when every run diverged."
    )
    divergence_lr: float | None = Field(
        description="Smallest learning rate at which at least half the seeds diverged."
    )
    all_diverged: bool
    paired: PairedComparison | None = None
    test_metrics: list[SelectedTestMetric] = Field(default_factory=list)
    effective_lr: list[EffectiveLRCurve] = Field(default_factory=list)
    outcomes: dict[str, int] = Field(description="Trials per outcome.")
    complete: bool = Field(description="Every point has every planned seed with a final result.")


class TaskReport(_Model):
    """The robustness figures of every optimizer on one task."""

    task: str
    metric: str
    direction: Literal["minimize", "maximize"]
    l0: float | None = Field(description="ℓ0: mean initial metric over all the task's trials.")
    l0_source: Literal["initial_metrics", "worst_observed", "none"]
    budget: dict[str, Any] = Field(default_factory=dict)
    optimizers: list[OptimizerReport]


class AggregateRow(_Model):
    """One optimizer's figures averaged over tasks (each task weighs the same)."""

    optimizer: str
    n_tasks: int
    basin_width_normalised: dict[str, float | None] = Field(
        description="Per δ: mean of W_δ / grid width (decades); 0 for all-diverged tasks."
    )
    sensitivity_normalised: float | None
    win_rate: float | None = Field(description="Mean overall paired win rate vs the baseline.")
    tasks_better_at_best: int | None = Field(
        description="Tasks whose mean paired difference at η* favours this optimizer."
    )


class Disclosures(_Model):
    """What a reader needs to judge the comparison's fairness."""

    extra_search_dimensions: dict[str, list[str]] = Field(
        description="Hyperparameters searched for one optimizer only, per optimizer."
    )
    shared_search_space: list[str]
    fixed: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Fixed hyperparameters per optimizer."
    )
    pruning: str | None = Field(description="The pruner in use, or None when off.")
    budgets: dict[str, dict[str, Any]]
    seeds: list[int]
    sampler: dict[str, Any] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)


class Report(_Model):
    """A learning-rate robustness report of one study."""

    schema_version: int = SCHEMA_VERSION
    study_id: str | None = None
    study_name: str | None = None
    generated_at: datetime
    partial: bool = Field(description="The study is unfinished or some cells are incomplete.")
    baseline: str
    metric: str
    direction: Literal["minimize", "maximize"]
    deltas: list[float] = Field(default_factory=lambda: list(DELTAS))
    n_trials: int
    tasks: list[TaskReport]
    aggregate: list[AggregateRow]
    disclosures: Disclosures


def report_json_schema() -> dict[str, Any]:
    """Return the JSON schema (draft 2020-12) of :class:`Report`."""
    return Report.model_json_schema()
