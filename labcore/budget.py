"""A trial's training budget: shared by tasks, the study definition and the engine."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """How long a trial trains.

    Attributes:
        epochs: Passes over the training set (an "epoch" may be a fixed number of
            steps for tasks without a finite dataset).
        steps_per_epoch: Optional cap on steps per epoch (``None``: the whole epoch).
    """

    epochs: int
    steps_per_epoch: int | None = None
