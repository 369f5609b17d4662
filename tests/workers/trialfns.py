"""Trial functions with run_trial's signature, for executor and engine tests.

They exist to make failures, lost workers, timing and pruning deterministic; the real
``run_trial`` is exercised by the same suites on the ``quadratic`` task.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labcore.budget import Budget
from labcore.outcomes import Outcome
from labcore.results import EpochMetrics, Reporter, TrialResult

_calls: dict[str, int] = {}
_lock = threading.Lock()
FAIL_FIRST = 1  # flaky: failures before a (hparams, seed) succeeds
ALWAYS_FAIL_LRS: set[float] = set()  # flaky: learning rates that never succeed


def _meet(folder: str, peers: int, timeout_s: float = 60.0) -> None:
    """Wait until ``peers`` trials have arrived in ``folder`` (or ``timeout_s`` passed).

    Concurrency tests use it so that trials which may run together do overlap however slowly
    the workers start on a loaded machine; with too little concurrency it times out and the
    test's overlap assertion fails.
    """
    Path(folder, f"{os.getpid()}-{threading.get_ident()}-{time.time_ns()}").touch()
    deadline = time.monotonic() + timeout_s
    while len(list(Path(folder).iterdir())) < peers and time.monotonic() < deadline:
        time.sleep(0.02)


def sleepy(
    task: str,
    optimizer: str,
    hparams: Mapping[str, Any],
    seed: int,
    budget: Budget | None = None,
    report: Reporter | None = None,
    **_: Any,
) -> TrialResult:
    """Sleep ``hparams['sleep']`` s per epoch; val_loss = lr * (seed + 1) / epoch.

    With ``hparams['meet']`` (a folder) it first waits for ``hparams['peers']`` trials there.
    """
    if hparams.get("crash"):
        raise RuntimeError("boom")
    if hparams.get("die"):
        os._exit(3)
    if hparams.get("meet"):
        _meet(str(hparams["meet"]), int(hparams.get("peers", 2)))
    t0 = time.time()
    epochs = budget.epochs if budget else 2
    lr = float(hparams.get("lr", 1.0))
    history = [EpochMetrics(0, 0, {"val_loss": 10.0, "train_loss": 10.0})]
    outcome = Outcome.COMPLETE
    if report is not None and report(history[0]):  # like run_trial: epoch 0 first
        epochs = 0
        outcome = Outcome.PRUNED
    for e in range(1, epochs + 1):
        time.sleep(float(hparams.get("sleep", 0.0)))
        m = {"val_loss": lr * (seed + 1) / e, "train_loss": lr / e}
        history.append(EpochMetrics(e, e * 10, m))
        if report is not None and report(history[-1]):
            outcome = Outcome.PRUNED
            break
    metrics = {**history[-1].metrics, "t0": t0, "t1": time.time(), "pid": float(os.getpid())}
    return TrialResult(outcome, metrics, history[0].metrics, tuple(history))


def flaky(
    task: str,
    optimizer: str,
    hparams: Mapping[str, Any],
    seed: int,
    budget: Budget | None = None,
    report: Reporter | None = None,
    **kw: Any,
) -> TrialResult:
    """Fail the first ``FAIL_FIRST`` calls of each (hparams, seed) in this process."""
    ident = f"{sorted(hparams.items())}/{seed}"
    with _lock:
        n = _calls[ident] = _calls.get(ident, 0) + 1
    if n <= FAIL_FIRST or float(hparams.get("lr", 0)) in ALWAYS_FAIL_LRS:
        return TrialResult(Outcome.FAILED, {}, error=f"flaky failure {n}")
    return sleepy(task, optimizer, hparams, seed, budget, report, **kw)
