"""What a trial produces: per-epoch metrics and the final result (torch-free)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from labcore.outcomes import Outcome


@dataclass(frozen=True)
class EpochMetrics:
    """Metrics at the end of one epoch (epoch 0 = at initialisation, before training).

    Attributes:
        epoch: 0 for the evaluation at initialisation, then 1, 2, ...
        step: Optimizer steps taken so far.
        metrics: Split-prefixed metric values (``train_loss``, ``val_loss``, ...).
        effective_lr_ratio: VRAdam only: mean of eta_t / lr over this epoch's steps.
    """

    epoch: int
    step: int
    metrics: Mapping[str, float]
    effective_lr_ratio: float | None = None


@dataclass(frozen=True)
class TrialResult:
    """The result of ``run_trial``.

    Attributes:
        outcome: ``complete``, ``diverged`` or ``failed`` (``pruned`` when a reporter
            asked to stop).
        metrics: Final metrics (for a diverged run: the last finite evaluation, and the
            initial metrics under ``init_*`` keys in ``initial_metrics``).
        initial_metrics: Metrics at initialisation (epoch 0).
        epochs: Per-epoch metrics, in order, starting with epoch 0.
        diverged_at_step: The step whose loss was non-finite or above the limit.
        effective_lr: VRAdam's effective-learning-rate statistics (``mean``, ``min``,
            ``max``, ``final`` of eta_t / lr); empty for other optimizers.
        wall_time_s: Wall-clock seconds of the whole trial.
        error: The exception's text for a failed trial.
        device: ``"cpu"`` or ``"cuda"``.
    """

    outcome: Outcome
    metrics: Mapping[str, float]
    initial_metrics: Mapping[str, float] = field(default_factory=dict)
    epochs: tuple[EpochMetrics, ...] = ()
    diverged_at_step: int | None = None
    effective_lr: Mapping[str, float] = field(default_factory=dict)
    wall_time_s: float = 0.0
    error: str | None = None
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        d = asdict(self)
        d["outcome"] = str(self.outcome)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrialResult:
        """Inverse of :meth:`to_dict`."""
        epochs = tuple(EpochMetrics(**e) for e in d.get("epochs", ()))
        return cls(**{**d, "outcome": Outcome(d["outcome"]), "epochs": epochs})


# Called after every epoch with that epoch's metrics; returning True asks run_trial
# to stop early (outcome ``pruned``). Also the hook for cancellation.
Reporter = Callable[[EpochMetrics], bool | None]
