"""A trial function that runs the real ``run_trial`` and holds one trial mid-run.

The ``HOLD_AT``-th trial to start pauses after its first epoch (once the executor has
been told of it, so the store shows it running) until the test sets :data:`RELEASE`;
:data:`REACHED` is set when it pauses. Every other trial runs straight through.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from labcore.budget import Budget
from labcore.results import EpochMetrics, TrialResult
from workers.trial import run_trial

HOLD_AT = 1
REACHED = threading.Event()
RELEASE = threading.Event()
_started = [0]
_lock = threading.Lock()


def reset(hold_at: int) -> None:
    """Hold the ``hold_at``-th trial that starts from now on."""
    global HOLD_AT
    HOLD_AT = hold_at
    _started[0] = 0
    REACHED.clear()
    RELEASE.clear()


def held(
    task: str,
    optimizer: str,
    hparams: Mapping[str, Any],
    seed: int,
    budget: Budget | None = None,
    report: Any = None,
    **kw: Any,
) -> TrialResult:
    """``run_trial``; the ``HOLD_AT``-th one waits after epoch 1 (at most 120 s)."""
    with _lock:
        _started[0] += 1
        hold = _started[0] == HOLD_AT

    def watched(epoch: EpochMetrics) -> bool:
        stop = bool(report(epoch)) if report is not None else False
        if hold and epoch.epoch == 1:
            REACHED.set()
            RELEASE.wait(120)
        return stop

    return run_trial(task, optimizer, hparams, seed, budget, watched, **kw)
