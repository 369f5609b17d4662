"""The API's data models, shared by the server (responses) and the SDK (typed results).

Torch-free: catalog entries are built from the registries' info records, which hold
import strings only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from labcore.outcomes import Outcome
from labcore.results import EpochMetrics
from studies.store.records import (
    CellRecord,
    RunningTrialRecord,
    StudyRecord,
    StudyStatus,
    TrialRecord,
)

if TYPE_CHECKING:
    from workers.optimizers.info import HParam, OptimizerInfo
    from workers.tasks.base import TaskInfo

API_PREFIX = "/v1"
T = TypeVar("T")
TrialState = Literal["running", "finished"]


class Page(BaseModel, Generic[T]):
    """One page of a listing."""

    items: list[T]
    total: int = Field(description="Number of matching items, ignoring limit and offset.")
    limit: int
    offset: int


# ---------------------------------------------------------------------- studies
class StudyLinks(BaseModel):
    """Where to go next for a study."""

    self: str
    trials: str
    cancel: str
    report: str


class CellProgress(BaseModel):
    """Progress of one (task, optimizer) cell."""

    id: int
    task: str
    optimizer: str
    optuna_study_name: str
    n_planned: int
    n_finished: int = Field(description="Trials with a final outcome (complete/diverged/pruned).")
    n_running: int = Field(default=0, description="Trials running now.")
    counts: dict[str, int] = Field(description="Trials by latest outcome.")


class Progress(BaseModel):
    """Progress of a study over all its cells."""

    n_planned: int
    n_finished: int
    n_running: int = Field(default=0, description="Trials running now, over all cells.")
    fraction: float = Field(ge=0.0, le=1.0)
    cells: list[CellProgress]


class Timings(BaseModel):
    """When a study was submitted, started and finished."""

    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    elapsed_s: float | None = Field(
        default=None, description="Seconds from start to finish (or to now while running)."
    )


class StudyOut(BaseModel):
    """A study: its definition, status, progress, timings and outcome counts."""

    id: str
    name: str
    status: StudyStatus
    spec: dict[str, Any] | None = Field(
        default=None,
        description="The definition; in listings only with `?include=spec`.",
    )
    cancel_requested: bool = False
    worker_id: str | None = None
    lease_expires_at: datetime | None = None
    error: str | None = None
    note: str | None = Field(
        default=None, description="What a running study waits for (e.g. a GPU node)."
    )
    progress: Progress
    counts: dict[str, int] = Field(description="Trials by latest outcome, over all cells.")
    timings: Timings
    links: StudyLinks

    @property
    def finished(self) -> bool:
        """Whether the study reached a final status."""
        return self.status.finished

    @classmethod
    def from_records(
        cls,
        study: StudyRecord,
        cells: Iterable[CellRecord] = (),
        counts: Mapping[int, Mapping[str, int]] | None = None,
        *,
        now: datetime | None = None,
        include_spec: bool = True,
        running: Mapping[int, int] | None = None,
    ) -> StudyOut:
        """Build the API view of a study from the store's records (``spec`` if asked).

        ``running`` is ``{cell_id: trials running now}``.
        """
        counts = counts or {}
        running = running or {}
        cell_views: list[CellProgress] = []
        totals: dict[str, int] = {}
        for cell in cells:
            c = {str(k): int(v) for k, v in counts.get(cell.id, {}).items()}
            for outcome, n in c.items():
                totals[outcome] = totals.get(outcome, 0) + n
            cell_views.append(
                CellProgress(
                    id=cell.id,
                    task=cell.task,
                    optimizer=cell.optimizer,
                    optuna_study_name=cell.optuna_study_name,
                    n_planned=cell.n_planned,
                    n_finished=sum(c.get(str(o), 0) for o in Outcome.finals()),
                    n_running=int(running.get(cell.id, 0)),
                    counts=c,
                )
            )
        planned = sum(c.n_planned for c in cell_views)
        finished = sum(c.n_finished for c in cell_views)
        end = study.finished_at or (now or datetime.now(UTC))
        elapsed = (end - study.started_at).total_seconds() if study.started_at else None
        base = f"{API_PREFIX}/studies/{study.id}"
        return cls(
            id=study.id,
            name=study.name,
            status=study.status,
            spec=study.spec if include_spec else None,
            cancel_requested=study.cancel_requested,
            worker_id=study.worker_id,
            lease_expires_at=study.lease_expires_at,
            error=study.error,
            note=study.note,
            progress=Progress(
                n_planned=planned,
                n_finished=finished,
                n_running=sum(c.n_running for c in cell_views),
                fraction=min(1.0, finished / planned) if planned else 0.0,
                cells=cell_views,
            ),
            counts=totals,
            timings=Timings(
                created_at=study.created_at,
                started_at=study.started_at,
                finished_at=study.finished_at,
                elapsed_s=max(0.0, elapsed) if elapsed is not None else None,
            ),
            links=StudyLinks(
                self=base, trials=f"{base}/trials", cancel=f"{base}/cancel", report=f"{base}/report"
            ),
        )


# ----------------------------------------------------------------------- trials
class EpochOut(BaseModel):
    """Metrics at the end of one epoch (epoch 0: at initialisation)."""

    epoch: int
    step: int
    metrics: dict[str, float]
    effective_lr_ratio: float | None = None

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def from_record(cls, e: EpochMetrics) -> EpochOut:
        """Build from the store's epoch record."""
        return cls.model_validate(e)


class TrialOut(BaseModel):
    """One (hyperparameters, seed) run of a cell: its latest result, or running now.

    A running trial (``state: running``) has no ``id`` and no ``outcome`` yet; its
    ``metrics`` are those of its latest epoch (``epoch``). A key that failed and runs
    again appears twice: its failed result and its running attempt.
    """

    id: int | None = Field(description="The trial's id (null while it runs).")
    state: TrialState = Field(default="finished", description="`running` or `finished`.")
    study_id: str
    cell_id: int
    task: str
    optimizer: str
    key: str
    hparams: dict[str, Any]
    seed: int
    outcome: Outcome | None = Field(description="How the latest attempt ended (null: running).")
    started_at: datetime | None = Field(
        default=None, description="When the attempt started (finished: estimated from wall time)."
    )
    epoch: int | None = Field(default=None, description="A running trial's latest epoch.")
    value: float | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    initial_metrics: dict[str, float] = Field(default_factory=dict)
    diverged_at_step: int | None = None
    effective_lr: dict[str, float] = Field(default_factory=dict)
    wall_time_s: float = 0.0
    attempts: int = 1
    error: str | None = None
    optuna_trial_number: int | None = None
    finished_at: datetime | None = None
    device: str | None = Field(
        default=None, description="Where the latest attempt ran: `cpu` or `cuda`."
    )
    epochs: list[EpochOut] | None = Field(
        default=None, description="Per-epoch metrics (only on the single-trial endpoint)."
    )

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def from_record(cls, t: TrialRecord, *, with_epochs: bool = False) -> TrialOut:
        """Build the API view of a trial from the store's record."""
        out = cls.model_validate(t)
        started = t.finished_at - timedelta(seconds=t.wall_time_s) if t.finished_at else None
        update: dict[str, Any] = {"started_at": started, "state": "finished"}
        if not with_epochs:
            update["epochs"] = None
        return out.model_copy(update=update)

    @classmethod
    def from_running(cls, r: RunningTrialRecord) -> TrialOut:
        """Build the API view of a running trial (no id, no outcome)."""
        elapsed = (datetime.now(UTC) - r.started_at).total_seconds()
        return cls(
            id=None,
            state="running",
            study_id=r.study_id,
            cell_id=r.cell_id,
            task=r.task,
            optimizer=r.optimizer,
            key=r.key,
            hparams=r.hparams,
            seed=r.seed,
            outcome=None,
            started_at=r.started_at,
            epoch=r.epoch,
            metrics=r.metrics,
            wall_time_s=max(0.0, elapsed),
            optuna_trial_number=r.optuna_trial_number,
        )


# ---------------------------------------------------------------------- catalog
class HParamOut(BaseModel):
    """The schema of one optimizer hyperparameter."""

    name: str
    kind: str = Field(description="`float`, `int`, `bool` or `choice`.")
    default: Any = None
    low: float | None = None
    high: float | None = None
    high_inclusive: bool = True
    choices: list[Any] = Field(default_factory=list)
    log: bool = Field(default=False, description="Whether its natural search scale is log.")
    doc: str = ""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def from_info(cls, h: HParam) -> HParamOut:
        """Build from the registry's record."""
        return cls.model_validate(h)


class OptimizerOut(BaseModel):
    """A registered optimizer and its hyperparameter schema."""

    name: str
    import_path: str
    description: str = ""
    hparams: list[HParamOut]

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def from_info(cls, info: OptimizerInfo) -> OptimizerOut:
        """Build from the registry's record."""
        return cls.model_validate(info)


class BudgetOut(BaseModel):
    """A training budget."""

    model_config = ConfigDict(from_attributes=True)

    epochs: int
    steps_per_epoch: int | None = None


class TaskOut(BaseModel):
    """A registered task: its metrics, default budget and options."""

    name: str
    import_path: str
    description: str = ""
    target_metric: str
    direction: str
    metrics: list[str]
    default_budget: BudgetOut
    needs_data: bool = False
    options: dict[str, Any] = Field(default_factory=dict)

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def from_info(cls, info: TaskInfo) -> TaskOut:
        """Build from the registry's record."""
        return cls.model_validate(info)


class Catalog(BaseModel):
    """Every task and optimizer a study may name."""

    tasks: list[TaskOut]
    optimizers: list[OptimizerOut]


# ----------------------------------------------------------------------- health
class Health(BaseModel):
    """Liveness: the process answers."""

    status: str = "ok"


class Readiness(BaseModel):
    """Readiness: the database answers."""

    status: str = "ok"
    database: str = "ok"
