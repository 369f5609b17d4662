"""Build the executor a study's typed ``executor`` section asks for.

The study names the kind of executor and its per-trial resources; where a Ray cluster
lives is the worker's setting (or the CLI's ``--ray-address``), passed in here.
"""

from __future__ import annotations

from collections.abc import Callable

from studies.spec import ExecutorSpec
from workers.executors import Executor, create_executor


def build_executor(
    config: ExecutorSpec,
    *,
    ray_address: str | None = None,
    on_wait: Callable[[str | None], None] | None = None,
) -> Executor:
    """Return a new executor for ``config``.

    Args:
        config: The study's validated executor section.
        ray_address: The Ray cluster to join, from the worker's settings (``None``: a
            local Ray started by the executor).
        on_wait: Told what a run waits for (a node that can hold a trial), and
            ``None`` when it goes on.

    Raises:
        ValueError: Unknown executor name.
    """
    if config.name == "ray":
        return create_executor(
            "ray",
            max_concurrent=config.max_concurrent,
            cpus_per_trial=config.resources_per_trial.cpu,
            gpus_per_trial=config.resources_per_trial.gpu,
            custom_resources=dict(config.resources_per_trial.custom),
            address=ray_address,
            on_wait=on_wait,
        )
    return create_executor("local", max_concurrent=config.max_concurrent or 1)
