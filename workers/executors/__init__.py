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


__all__ = [
    "Executor",
    "LocalExecutor",
    "TrialOutcome",
    "TrialRequest",
    "create_executor",
]
