"""Study definitions: a frozen pydantic ``StudySpec`` loaded from YAML or JSON.

A study compares optimizers on tasks: every optimizer gets the same shared search space,
seeds and per-task budget (a fair, paired comparison). An optimizer may search extra
dimensions of its own (``optimizers[i].search_space``); those are disclosed by
:meth:`StudySpec.disclosures` so a report can say so.

``load_spec`` parses (structure only); ``validate_spec`` checks the spec against the task
and optimizer registries; ``parse_spec`` does both. Every problem is reported as a
:class:`~labcore.errors.SpecError` whose ``errors`` name dotted field paths such as
``optimizers.1.fixed.beta3``.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from labcore.errors import SpecError
from studies.spec_executor import ExecutorSpec, ResourcesSpec  # noqa: F401 - re-exported
from studies.spec_text import check_shape, parse_text
from studies.spec_trial import DivergenceSpec, PruningSpec, ScheduleSpec

if TYPE_CHECKING:
    from studies.trust import Trust

SamplerName = Literal["grid", "random", "tpe", "qmc", "cmaes"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BudgetSpec(_Frozen):
    """How long every trial of a task trains (shared by all optimizers)."""

    epochs: int = Field(ge=1, description="Epochs per trial.")
    steps_per_epoch: int | None = Field(default=None, ge=1, description="Optional step cap.")


class TaskSpec(_Frozen):
    """One task of the study."""

    name: str = Field(description="Task registry name, e.g. `digits_cnn`.")
    budget: BudgetSpec | None = Field(
        default=None, description="Trial budget; the task's default budget when omitted."
    )
    options: dict[str, Any] = Field(default_factory=dict, description="Task options.")
    data_dir: str | None = Field(default=None, description="Where the task reads its files.")


class ParamSpec(_Frozen):
    """One search dimension."""

    type: Literal["float", "int", "categorical"] = "float"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> ParamSpec:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical dimension needs non-empty `choices`")
            if self.low is not None or self.high is not None or self.log:
                raise ValueError("a categorical dimension takes `choices`, not low/high/log")
            if len({json.dumps(c, sort_keys=True) for c in self.choices}) != len(self.choices):
                raise ValueError("`choices` has duplicates")
            return self
        if self.choices is not None:
            raise ValueError(f"a {self.type} dimension takes low/high, not `choices`")
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} dimension needs `low` and `high`")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError("`low` and `high` must be finite")
        if self.low >= self.high:
            raise ValueError(f"`low` ({self.low}) must be < `high` ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scaled dimension needs `low` > 0")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("an int dimension needs integer `low` and `high`")
        return self


def _coerce_numbers(values: Mapping[str, Any]) -> dict[str, Any]:
    """YAML reads ``1e-4`` (no dot) as a string; take numeric strings as numbers."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, str):
            with contextlib.suppress(ValueError):
                v = float(v) if any(c in v for c in ".eE") else int(v)
        out[k] = v
    return out


class OptimizerSpec(_Frozen):
    """One optimizer of the study."""

    name: str = Field(description="Optimizer registry name, or an import string `pkg.mod:Cls`.")
    label: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description="This arm's name in results (default: `name`), so one optimizer can be "
        "listed more than once with different fixed values (e.g. VRAdam's knobs).",
    )
    fixed: dict[str, Any] = Field(default_factory=dict, description="Fixed hyperparameters.")
    search_space: dict[str, ParamSpec] = Field(
        default_factory=dict,
        description="Extra dimensions searched for this optimizer only (disclosed in reports).",
    )

    @field_validator("fixed", mode="before")
    @classmethod
    def _numbers(cls, v: Any) -> Any:
        return _coerce_numbers(v) if isinstance(v, Mapping) else v

    @property
    def key(self) -> str:
        """The arm's name in cells, trials and reports: ``label``, else ``name``."""
        return self.label or self.name


class SamplerSpec(_Frozen):
    """How Optuna samples each cell's hyperparameters."""

    name: SamplerName = "grid"
    points: dict[str, int] = Field(
        default_factory=dict, description="grid: points per numeric dimension (log-spaced if log)."
    )
    n_trials: int | None = Field(
        default=None, ge=1, description="Other samplers: configurations per cell (x seeds)."
    )
    seed: int = 0

    @field_validator("points")
    @classmethod
    def _positive(cls, v: dict[str, int]) -> dict[str, int]:
        for name, n in v.items():
            if n < 1:
                raise ValueError(f"points for {name!r} must be >= 1, got {n}")
        return v


class ObjectiveSpec(_Frozen):
    """The metric Optuna optimises (a validation metric: selection hygiene)."""

    metric: str = "val_loss"
    direction: Literal["minimize", "maximize"] = "minimize"


class AnalysisSpec(_Frozen):
    """How the report summarises the grid (``docs/report.md``)."""

    lr_range: tuple[float, float] | None = Field(
        default=None,
        description="Declared learning-rate range [lo, hi] of the sensitivity and the grid Δ "
        "(default: the whole grid), so the numbers mean the same across reports.",
    )

    @field_validator("lr_range")
    @classmethod
    def _range(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not (0 < v[0] < v[1] and math.isfinite(v[1])):
            raise ValueError(f"`lr_range` needs 0 < lo < hi, got {list(v)}")
        return v


class ConfirmationSpec(_Frozen):
    """Re-run each cell's η* configuration on fresh seeds after the search (DeepOBS)."""

    seeds: list[int] = Field(
        min_length=1, description="Fresh seeds, disjoint from the study's `seeds`."
    )

    @field_validator("seeds")
    @classmethod
    def _unique(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("confirmation seeds must be unique")
        return v


class StudySpec(_Frozen):
    """A study: tasks x optimizers x (shared search space) x seeds, with a fixed budget."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    description: str = ""
    tasks: list[TaskSpec] = Field(min_length=1)
    optimizers: list[OptimizerSpec] = Field(min_length=1)
    search_space: dict[str, ParamSpec] = Field(default_factory=dict)
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    objective: ObjectiveSpec = Field(default_factory=ObjectiveSpec)
    divergence: DivergenceSpec = Field(default_factory=DivergenceSpec)
    pruning: PruningSpec = Field(default_factory=PruningSpec)
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)
    max_retries: int = Field(default=2, ge=0)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    confirmation: ConfirmationSpec | None = Field(
        default=None, description="Confirmation runs of each cell's η* on fresh seeds."
    )

    @model_validator(mode="after")
    def _disjoint_confirmation(self) -> StudySpec:
        if self.confirmation is not None:
            both = sorted(set(self.seeds) & set(self.confirmation.seeds))
            if both:
                raise ValidationError.from_exception_data(
                    "StudySpec",
                    [
                        {
                            "type": "value_error",
                            "loc": ("confirmation", "seeds"),
                            "input": self.confirmation.seeds,
                            "ctx": {"error": f"must be disjoint from `seeds`; shared: {both}"},
                        }
                    ],
                )
        return self

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("seeds must be unique")
        return v

    def task(self, name: str) -> TaskSpec:
        """Return the task entry called ``name`` (KeyError if absent)."""
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(name)

    def optimizer(self, key: str) -> OptimizerSpec:
        """Return the optimizer entry whose :attr:`OptimizerSpec.key` is ``key`` (KeyError)."""
        for o in self.optimizers:
            if o.key == key:
                return o
        raise KeyError(key)

    def space_for(self, optimizer: str) -> dict[str, ParamSpec]:
        """The dimensions searched for ``optimizer``: the shared space plus its extras."""
        return {**self.search_space, **self.optimizer(optimizer).search_space}

    def extra_dimensions(self) -> dict[str, list[str]]:
        """``{optimizer: [dimension, ...]}`` searched for that optimizer only."""
        return {o.key: sorted(o.search_space) for o in self.optimizers if o.search_space}

    def disclosures(self) -> list[str]:
        """Sentences a report must show about departures from a plain, fair comparison."""
        out = []
        for opt, dims in self.extra_dimensions().items():
            out.append(
                f"{opt} also searched {', '.join(dims)} (not searched for the other optimizers)"
            )
        if self.pruning.name != "none":
            out.append(
                f"pruning ({self.pruning.name}) stopped some trials early; pruned trials are "
                "not comparable to complete ones"
            )
        if self.sampler.name != "grid":
            out.append(
                f"hyperparameters were sampled by {self.sampler.name} "
                f"({self.sampler.n_trials} configurations per cell), not a fixed grid"
            )
        shared = {k for o in self.optimizers for k in o.fixed}
        for k in sorted(shared):
            values = {o.key: o.fixed[k] for o in self.optimizers if k in o.fixed}
            if len(values) > 1 and len({json.dumps(v) for v in values.values()}) > 1:
                detail = ", ".join(f"{n}={v}" for n, v in values.items())
                out.append(f"{k} is fixed to different values per optimizer ({detail})")
        return out

    def to_dict(self) -> dict[str, Any]:
        """The spec as a JSON-able dict (what the store keeps)."""
        return self.model_dump(mode="json")

    def with_executor(self, **changes: Any) -> StudySpec:
        """A copy whose executor section has ``changes``, validated like a new definition.

        Raises:
            SpecError: The changed section is invalid (paths start with ``executor``).
        """
        section = {**self.executor.model_dump(mode="json"), **changes}
        try:
            return StudySpec.model_validate({**self.to_dict(), "executor": section})
        except ValidationError as e:
            raise _from_validation_error(e) from None


def _path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _from_validation_error(e: ValidationError) -> SpecError:
    errors = []
    for err in e.errors():
        loc = tuple(p for p in err["loc"] if p not in ("function-after", "function-before"))
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        errors.append((_path(loc), msg))
    return SpecError(errors)


def load_spec(source: StudySpec | Mapping[str, Any] | str | Path) -> StudySpec:
    """Parse a study definition (structure only; see :func:`validate_spec`).

    Args:
        source: A ``StudySpec``, a mapping, a path to a ``.yaml``/``.yml``/``.json`` file, or
            YAML/JSON text.

    Raises:
        SpecError: The file is unreadable, the text is not YAML/JSON, or the structure is
            invalid (each problem with its dotted field path).
    """
    if isinstance(source, StudySpec):
        return source
    data: Any = source
    if isinstance(source, Path) or (
        isinstance(source, str)
        and "\n" not in source
        and source.rstrip().endswith((".yaml", ".yml", ".json"))
    ):
        try:
            data = Path(source).read_text()
        except OSError as e:
            raise SpecError(f"cannot read study definition {str(source)!r}: {e}") from e
    if isinstance(data, str):
        data = parse_text(data)
    if not isinstance(data, Mapping):
        raise SpecError("a study definition must be a mapping")
    check_shape(data)
    try:
        return StudySpec.model_validate(dict(data))
    except ValidationError as e:
        raise _from_validation_error(e) from None


def validate_spec(spec: StudySpec, *, trust: Trust | None = None) -> StudySpec:
    """Check ``spec`` against the trust boundary, the registries and the sampler's needs.

    Args:
        spec: The parsed definition.
        trust: What it may ask of this process (default: the strict service boundary:
            registered optimizers only, data folders as names under the data root).

    Returns:
        The same spec, for chaining.

    Raises:
        SpecError: Every problem found, each with its field path.
    """
    from studies.trust import Trust
    from studies.validation import check_spec

    errors = (trust or Trust()).check(spec) + check_spec(spec)
    if errors:
        raise SpecError(errors)
    return spec


def parse_spec(
    source: StudySpec | Mapping[str, Any] | str | Path, *, trust: Trust | None = None
) -> StudySpec:
    """Load and validate a study definition (see :func:`validate_spec` for ``trust``).

    Raises:
        SpecError: The definition is malformed or fails validation.
    """
    return validate_spec(load_spec(source), trust=trust)
