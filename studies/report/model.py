"""The learning-rate robustness report as typed, JSON-serialisable pydantic models.

Units: every metric value (scores, intervals, ℓ*, ℓ0, thresholds, test metrics) is in the
objective metric's own units and direction; every run is *scored* ``min(ℓ, ℓ0)`` in
lower-is-better terms (for a maximised metric: ``max(ℓ, ℓ0)``). ``sensitivity`` is a
non-negative degradation in those units. Paired differences are ``score(optimizer) −
score(baseline)`` in metric units, so a negative difference is better for ``minimize`` and
a positive one for ``maximize``; wins, ties and losses already account for the direction.
Learning rates are floats; basin widths are in decades (log10). Every interval is over
seeds; its ``kind`` says which (``t95``: Student-t 95%; ``range``: the seeds' min and max,
used below 5 seeds; ``single``: one seed). Definitions: ``docs/report.md``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 2
DELTAS: tuple[float, ...] = (0.05, 0.1, 0.25)

Kind = Literal["t95", "range", "single"]
Source = Literal["search", "confirmation"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Estimate(_Model):
    """A mean over seeds with an interval over seeds (see ``kind``)."""

    mean: float
    lo: float | None = Field(None, description="Lower end; None for one seed.")
    hi: float | None = Field(None, description="Upper end; None for one seed.")
    n: int = Field(description="Seeds averaged.")
    kind: Kind = Field("t95", description="t95 (n ≥ 5), range (min..max, n < 5), single.")
    median: float | None = None
    clipped: bool = Field(False, description="The t interval was cut to the possible range.")


class Proportion(_Model):
    """``k`` of ``n`` with an exact (Clopper-Pearson) 95% binomial interval."""

    k: int
    n: int
    lo: float
    hi: float


class CurvePoint(_Model):
    """One learning rate of an optimizer's learning-rate curve (search seeds only)."""

    lr: float
    in_range: bool = Field(description="Inside the declared learning-rate range.")
    estimate: Estimate = Field(description="Scores min(ℓ, ℓ0) over seeds.")
    seeds: list[int] = Field(description="Seeds with a usable run, in order.")
    values: list[float] = Field(description="Per-seed score min(ℓ, ℓ0), aligned with seeds.")
    diverged_seeds: list[int] = Field(description="Seeds whose run diverged.")
    failed_seeds: list[int] = Field(description="Seeds that failed to train (diverged or ≥ ℓ0).")
    failed: Proportion = Field(description="Failed to train, k/n.")
    n_pruned: int = Field(0, description="Pruned runs at this point (excluded).")
    n_failed: int = Field(0, description="Runs that errored at this point (excluded).")
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="The other searched hyperparameters of the configuration shown here "
        "(the lowest mean score over seeds at this learning rate).",
    )
    n_configs: int = Field(1, description="Configurations tried at this learning rate.")


class Basin(_Model):
    """The interval around η* whose mean score is within the task's threshold (W_δ)."""

    delta: float
    threshold: float = Field(description="ℓ*_task + δ(ℓ0 − ℓ*_task), shared by all optimizers.")
    reached: bool = Field(description="The optimizer's mean score at η* is within the threshold.")
    lr_lo: float | None = Field(description="Lower crossing, interpolated in log η.")
    lr_hi: float | None = Field(description="Upper crossing, interpolated in log η.")
    width: float = Field(description="log10(lr_hi / lr_lo) in decades; 0 when not reached.")
    width_min: float = Field(description="Grid bracket: the span of the grid points inside.")
    width_max: float | None = Field(
        description="Grid bracket: the span between the first points outside; None if open."
    )
    open_low: bool = Field(description="The basin reaches the grid's lowest learning rate.")
    open_high: bool = Field(description="The basin reaches the grid's highest learning rate.")
    open_ended: bool = Field(description="open_low or open_high: the true width may be larger.")


class PairedDiff(_Model):
    """Paired differences against the baseline, one per seed, summarised over seeds."""

    n: int = Field(description="Seeds paired.")
    seeds: list[int]
    values: list[float] = Field(description="Per-seed difference, aligned with seeds.")
    mean_diff: float
    lo: float | None
    hi: float | None
    kind: Kind
    wins: int = Field(description="Seeds where the optimizer scored better.")
    ties: int = Field(description="Seeds with equal scores (e.g. both failed to train).")
    losses: int
    win_rate: float | None = Field(description="wins / (wins + losses); ties left out.")
    p_value: float | None = Field(None, description="Paired t-test (n ≥ 5), two-sided.")
    p_holm: float | None = Field(None, description="Holm-adjusted within the primary family.")


class PairedAtLR(_Model):
    """Paired score differences at one learning rate."""

    lr: float
    in_range: bool
    diff: PairedDiff


class PairedComparison(_Model):
    """Validation comparison with the baseline on one task (descriptive)."""

    baseline: str
    overall: PairedDiff | None = Field(
        description="Grid Δ: per seed, the mean over the declared range's shared η of the "
        "score difference; then over seeds. None when no η is shared."
    )
    n_lrs: int = Field(0, description="Learning rates averaged in the grid Δ.")
    per_lr: list[PairedAtLR]
    at_best: PairedDiff | None = Field(
        description="Validation Δ, each at its own η*, paired by seed (secondary)."
    )
    lr_best: float | None = None
    lr_best_baseline: float | None = None


class Headline(_Model):
    """The primary figure: paired test Δ, each optimizer at its own η*."""

    metric: str
    source: Source = Field(description="confirmation: from the re-runs at η* on fresh seeds.")
    lr: float
    lr_baseline: float
    diff: PairedDiff


class Stability(_Model):
    """η* recomputed with each search seed left out."""

    left_out: list[int]
    lr_star: list[float] = Field(description="η* without each seed, aligned with left_out.")
    share_same: float = Field(description="Share of leave-one-out η* equal to the full η*.")
    stable: bool


class EffectiveLRCurve(_Model):
    """VRAdam's mean effective learning-rate ratio η_t/lr per epoch at one learning rate."""

    lr: float
    epochs: list[int]
    mean_ratio: list[float]
    n: list[int] = Field(description="Runs averaged at each epoch (diverged runs stop early).")


class SelectedTestMetric(_Model):
    """A test metric of the selected configuration (η*), scored min(test, test ℓ0)."""

    name: str
    source: Source = "search"
    estimate: Estimate


class TunabilityPoint(_Model):
    """Expected best validation score after ``k`` random-search trials."""

    k: int
    expected_best: float


class OptimizerReport(_Model):
    """Every robustness figure of one optimizer on one task."""

    optimizer: str
    curve: list[CurvePoint]
    lr_star: float | None = Field(description="η*: grid learning rate with the lowest mean score.")
    best: Estimate | None = Field(
        description="ℓ*: from the confirmation runs when there are any, else the search seeds."
    )
    best_source: Source = "search"
    best_search: Estimate | None = Field(None, description="ℓ* over the search seeds.")
    stability: Stability | None = None
    confirmation_config: dict[str, Any] | None = Field(
        None, description="Hyperparameters re-run on the confirmation seeds."
    )
    basins: list[Basin]
    sensitivity: float | None = Field(
        description="Mean over the declared range of (score − ℓ*), metric units."
    )
    sensitivity_seeds: Estimate | None = Field(
        None, description="Per seed: mean over the range of (score − ℓ*); over seeds."
    )
    sensitivity_normalised: float | None = Field(
        description="sensitivity / (ℓ0 − ℓ*), in [0, 1]; 1 when every run failed to train."
    )
    divergence_lr: float | None = Field(
        description="Smallest learning rate at which at least half the seeds diverged."
    )
    all_diverged: bool = Field(description="Every run failed to train.")
    paired: PairedComparison | None = None
    headline: Headline | None = None
    test_metrics: list[SelectedTestMetric] = Field(default_factory=list)
    tunability: list[TunabilityPoint] = Field(default_factory=list)
    effective_lr: list[EffectiveLRCurve] = Field(default_factory=list)
    outcomes: dict[str, int] = Field(description="Trials per outcome (confirmation included).")
    compute_s: float = Field(0.0, description="Wall-clock seconds of every trial of the cell.")
    complete: bool = Field(description="Every point has every planned seed with a final result.")


class TaskReport(_Model):
    """The robustness figures of every optimizer on one task."""

    task: str
    metric: str
    direction: Literal["minimize", "maximize"]
    l0: float | None = Field(description="ℓ0: mean over seeds of the initial metric.")
    l0_source: Literal["initial_metrics", "worst_observed", "none"]
    l0_test: float | None = Field(None, description="ℓ0 of the test metric.")
    l_star_task: float | None = Field(None, description="The best optimizer's ℓ* (search).")
    lr_range: list[float] | None = Field(None, description="Declared learning-rate range.")
    grid_step: float | None = Field(None, description="Grid spacing in decades (regular grids).")
    budget: dict[str, Any] = Field(default_factory=dict)
    optimizers: list[OptimizerReport]


class AcrossRow(_Model):
    """One optimizer's interquartile mean of normalised scores over tasks and seeds."""

    optimizer: str
    n_tasks: int
    n_runs: int
    iqm: float
    lo: float
    hi: float


class AcrossTasks(_Model):
    """IQM of normalised scores with a stratified bootstrap (Agarwal et al. 2021)."""

    shown: bool
    reason: str
    resamples: int
    rows: list[AcrossRow] = Field(default_factory=list)


class MethodsItem(_Model):
    """One line of the generated Methods section."""

    topic: str
    text: str


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
    confirmation_seeds: list[int] = Field(default_factory=list)
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
    across_tasks: AcrossTasks
    methods: list[MethodsItem] = Field(default_factory=list)
    disclosures: Disclosures


def report_json_schema() -> dict[str, Any]:
    """Return the JSON schema (draft 2020-12) of :class:`Report`."""
    return Report.model_json_schema()
