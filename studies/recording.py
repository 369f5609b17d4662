"""Recording a finished trial, through short database outages."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from labcore.errors import StoreError
from labcore.results import TrialResult
from studies.store import Store, TrialRecord
from workers.executors.base import TrialRequest

logger = logging.getLogger(__name__)


def record_result(
    store: Store,
    req: TrialRequest,
    result: TrialResult,
    value: float | None,
    number: int | None,
    stop: Callable[[], bool],
) -> TrialRecord:
    """Record a finished trial, retrying while the database is briefly unreachable.

    A finished result is worth keeping: the retries go on until the run is asked to stop
    (which a lost lease does, after ``lease_seconds`` without a renewal).

    Raises:
        StoreError: The database did not answer before the run was stopped.
        ConflictError: Another process recorded this key first.
    """
    delay = 0.1
    while True:
        try:
            return store.record_trial(
                req.cell_id, req.key, req.hparams, req.seed, result, value, number
            )
        except StoreError as e:
            if stop():
                raise
            logger.warning("recording trial %s failed (%s); retrying in %.1f s", req.key, e, delay)
            time.sleep(delay)
            delay = min(2 * delay, 2.0)
