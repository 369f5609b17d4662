"""Executors: where trials run (``local`` in-process, ``ray`` on Ray Tune).

Torch- and Ray-free at import; :func:`create_executor` imports the Ray executor lazily.
"""

from __future__ import annotations

from typing import Any

from workers.executors.base import Executor, TrialOutcome, TrialRequest
from workers.executors.local import LocalExecutor


def create_executor(name: str, **kwargs: Any) -> Executor:
    """Return the executor called ``name`` (``local`` or ``ray``).

    Raises:
        ValueError: Unknown executor name.
    """
    if name == "local":
        return LocalExecutor(**kwargs)
    if name == "ray":
        from workers.executors.ray_executor import RayExecutor

        return RayExecutor(**kwargs)
    raise ValueError(f"unknown executor {name!r}: use 'local' or 'ray'")


def executor_for_spec(spec: Any, *, ray_address: str | None = None) -> Executor:
    """Return the executor a study's ``executor`` section asks for.

    Args:
        spec: A :class:`studies.spec.StudySpec`.
        ray_address: Overrides ``spec.executor.ray_address`` (``None``: keep it).

    Raises:
        ValueError: Unknown executor name.
    """
    ex = spec.executor
    if ex.name == "ray":
        return create_executor(
            "ray",
            max_concurrent=ex.max_concurrent,
            cpus_per_trial=ex.resources_per_trial.cpu,
            gpus_per_trial=ex.resources_per_trial.gpu,
            address=ray_address or ex.ray_address,
        )
    return create_executor("local", max_concurrent=ex.max_concurrent)


__all__ = [
    "Executor",
    "LocalExecutor",
    "TrialOutcome",
    "TrialRequest",
    "create_executor",
    "executor_for_spec",
]
