"""The catalog: tasks and optimizers a study may name, with hyperparameter schemas."""

from __future__ import annotations

from fastapi import APIRouter

from service.auth import ReadAccess
from service.errors import error_responses
from service.schemas import Catalog, OptimizerOut, TaskOut

router = APIRouter(
    prefix="/catalog",
    tags=["catalog"],
    dependencies=[ReadAccess],
    responses=error_responses(401, 403, 503),  # 503: the token check reads the database
)


def list_task_entries() -> list[TaskOut]:
    """Return every registered task (torch-free: the registry holds import strings)."""
    from workers.tasks.registry import list_tasks

    return [TaskOut.from_info(t) for t in list_tasks()]


def list_optimizer_entries() -> list[OptimizerOut]:
    """Return every registered optimizer with its hyperparameters."""
    from workers.optimizers.registry import list_optimizers

    return [OptimizerOut.from_info(o) for o in list_optimizers()]


@router.get("", summary="Every task and optimizer")
def catalog() -> Catalog:
    """Return the whole catalog."""
    return Catalog(tasks=list_task_entries(), optimizers=list_optimizer_entries())


@router.get("/tasks", summary="Registered tasks")
def tasks() -> list[TaskOut]:
    """Return every task: metrics, target metric, default budget and options."""
    return list_task_entries()


@router.get("/optimizers", summary="Registered optimizers with hyperparameter schemas")
def optimizers() -> list[OptimizerOut]:
    """Return every optimizer with its hyperparameters' defaults and valid ranges."""
    return list_optimizer_entries()
