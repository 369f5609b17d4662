"""A trial's learning-rate schedule: a multiplier of every group's initial ``lr`` per step.

Shared by the study definition (``schedule:``), the trial request and ``run_trial``. The
schedule is the same for every optimizer of a study, so a comparison stays paired.

* ``constant``: the factor is 1 at every step (the default; what the grid compares).
* ``warmup_cosine``: a linear warm-up from ``1/W`` to 1 over the first ``W =
  round(warmup_fraction · T)`` steps, then a half cosine from 1 down to ``final_factor``
  at step ``T`` (the last step), as in nanoGPT and most Transformer recipes.

Steps are 1-based; ``T`` is the trial's total number of optimizer steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

__all__ = ["SCHEDULES", "Schedule", "ScheduleName"]

ScheduleName = Literal["constant", "warmup_cosine"]
SCHEDULES: tuple[str, ...] = get_args(ScheduleName)


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule (see the module docstring).

    Attributes:
        name: ``"constant"`` or ``"warmup_cosine"``.
        warmup_fraction: Share of the steps spent warming up, in ``[0, 1)``.
        final_factor: The last step's learning rate as a fraction of the peak, in ``[0, 1]``.
    """

    name: ScheduleName = "constant"
    warmup_fraction: float = 0.05
    final_factor: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in SCHEDULES:
            raise ValueError(f"schedule name must be one of {SCHEDULES}, got {self.name!r}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if not 0.0 <= self.final_factor <= 1.0:
            raise ValueError(f"final_factor must be in [0, 1], got {self.final_factor}")

    @property
    def constant(self) -> bool:
        """Whether the factor is always 1."""
        return self.name == "constant"

    def warmup_steps(self, total_steps: int) -> int:
        """``W``: the number of warm-up steps out of ``total_steps``."""
        return 0 if self.constant else round(self.warmup_fraction * total_steps)

    def factor(self, step: int, total_steps: int) -> float:
        """The multiplier of the initial learning rate at ``step`` (1-based) of ``total_steps``.

        Raises:
            ValueError: ``step`` is outside ``1..total_steps``.
        """
        if not 1 <= step <= total_steps:
            raise ValueError(f"step {step} is outside 1..{total_steps}")
        if self.constant:
            return 1.0
        warm = self.warmup_steps(total_steps)
        if step <= warm:
            return step / warm
        decay = total_steps - warm
        if decay <= 1:
            return 1.0
        progress = (step - warm - 1) / (decay - 1)  # 0 at the first decay step, 1 at the last
        return self.final_factor + (1.0 - self.final_factor) * 0.5 * (
            1.0 + math.cos(math.pi * progress)
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (the inverse of ``Schedule(**d)``)."""
        return {
            "name": self.name,
            "warmup_fraction": self.warmup_fraction,
            "final_factor": self.final_factor,
        }
