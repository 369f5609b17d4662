"""Hand-made trial records for the report tests (TrialRecord-like, no database)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labcore.results import EpochMetrics


@dataclass(frozen=True)
class FakeTrial:
    task: str
    optimizer: str
    hparams: dict[str, Any]
    seed: int
    outcome: str
    metrics: dict[str, float]
    initial_metrics: dict[str, float]
    epochs: tuple[EpochMetrics, ...] = ()
    diverged_at_step: int | None = None
    wall_time_s: float = 0.0
    device: str | None = None


def run(
    opt: str,
    lr: object,
    seed: int,
    val: float | None,
    *,
    task: str = "t",
    metric: str = "val_loss",
    init: float | None = 2.0,
    outcome: str | None = None,
    test: float | None = None,
    extra: dict[str, Any] | None = None,
    ratios: tuple[float, ...] = (),
    test_init: float | None = None,
    wall: float = 0.0,
    device: str | None = None,
) -> FakeTrial:
    """A trial; ``val=None`` means diverged (unless ``outcome`` says otherwise)."""
    outcome = outcome or ("diverged" if val is None else "complete")
    metrics: dict[str, float] = {}
    if val is not None:
        metrics[metric] = val
    if test is not None:
        metrics["test_" + metric.removeprefix("val_")] = test
    epochs = tuple(
        EpochMetrics(epoch=i + 1, step=10 * (i + 1), metrics={}, effective_lr_ratio=r)
        for i, r in enumerate(ratios)
    )
    return FakeTrial(
        task=task,
        optimizer=opt,
        hparams={"lr": lr, **(extra or {})},
        seed=seed,
        outcome=outcome,
        metrics=metrics,
        initial_metrics=({} if init is None else {metric: init})
        | ({} if test_init is None else {"test_" + metric.removeprefix("val_"): test_init}),
        epochs=epochs,
        diverged_at_step=5 if outcome == "diverged" else None,
        wall_time_s=wall,
        device=device,
    )


def make_spec(
    opts: tuple[str, ...] = ("adamw", "vradam"),
    seeds: tuple[int, ...] = (0, 1),
    tasks: tuple[str, ...] = ("t",),
    metric: str = "val_loss",
    direction: str = "minimize",
    **more: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "fixture",
        "tasks": [{"name": t, "budget": {"epochs": 3, "steps_per_epoch": None}} for t in tasks],
        "optimizers": [{"name": o, "fixed": {}, "search_space": {}} for o in opts],
        "search_space": {"lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True}},
        "sampler": {"name": "grid", "points": {"lr": 4}, "seed": 0},
        "seeds": list(seeds),
        "objective": {"metric": metric, "direction": direction},
        "pruning": {"name": "none"},
    }
    spec.update(more)
    return spec


# The main hand-computed study: ℓ0 = 2.0, grid 1e-3 .. 1, seeds 0 and 1.
#   adamw  means: 0.85, 0.5, 0.6, 2.0 (both diverged at lr 1)
#   vradam means: 1.0, 0.5, 0.4, 1.3 (one of two diverged at lr 1)
MAIN = {
    "adamw": {1e-3: (0.8, 0.9), 1e-2: (0.4, 0.6), 1e-1: (0.5, 0.7), 1.0: (None, None)},
    "vradam": {1e-3: (0.9, 1.1), 1e-2: (0.5, 0.5), 1e-1: (0.3, 0.5), 1.0: (0.6, None)},
}


def main_trials() -> list[FakeTrial]:
    out = []
    for opt, grid in MAIN.items():
        for lr, vals in grid.items():
            for seed, v in enumerate(vals):
                test = None if v is None else v + 0.05
                out.append(run(opt, lr, seed, v, test=test))
    return out


def confirm_trials(
    seeds: tuple[int, ...] = (10, 11, 12, 13, 14),
    vals: dict[str, tuple[float, ...]] | None = None,
) -> list[FakeTrial]:
    """Confirmation runs of :data:`MAIN` at each optimizer's η* (adamw 1e-2, vradam 1e-1).

    Default values: adamw 0.5 on every seed, vradam 0.40, 0.42, 0.44, 0.46, 0.48 (mean 0.44);
    test = value + 0.05.
    """
    vals = vals or {"adamw": (0.5,) * 5, "vradam": (0.40, 0.42, 0.44, 0.46, 0.48)}
    lrs = {"adamw": 1e-2, "vradam": 1e-1}
    return [
        run(opt, lrs[opt], s, v, test=v + 0.05)
        for opt, vs in vals.items()
        for s, v in zip(seeds, vs, strict=True)
    ]
