"""Losing a lease: a worker whose renewals keep failing stops its run once the lease runs out."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from service.worker import StudyRun, Worker
from studies.lease import Lease
from studies.spec import parse_spec
from studies.store import Store
from studies.store.records import StudyStatus
from tests.service.conftest import quadratic_spec
from tests.studies.flaky_store import FlakyStore


@pytest.fixture
def flaky(sqlite_store: Store) -> Iterator[FlakyStore]:
    store = FlakyStore(sqlite_store.url)
    yield store
    store.unhang.set()
    store.close()


def claim(store: Store, worker_id: str, lease_s: float, **spec_kw: object) -> str:
    spec = parse_spec(quadratic_spec("lease", **spec_kw))  # type: ignore[arg-type]
    sid = store.create_study(spec.name, spec.to_dict()).id
    record = store.claim_study(worker_id, lease_s)
    assert record is not None and record.id == sid
    return sid


def wait_for(cond: Callable[[], bool], timeout: float) -> float:
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, f"not within {timeout} s"
        time.sleep(0.01)
    return time.monotonic() - t0


def assert_still_ours(store: Store, sid: str, worker_id: str) -> None:
    """The study was left as it was: running under the (expired) lease of ``worker_id``."""
    study = store.get_study(sid)
    assert study.status == StudyStatus.RUNNING
    assert study.worker_id == worker_id
    assert study.finished_at is None and study.error is None


def test_renewals_keep_the_lease_then_failures_lose_it(flaky: FlakyStore) -> None:
    lease_s, every = 0.6, 0.1
    sid = claim(flaky, "w1", lease_s)
    with Lease(flaky, sid, "w1", lease_s, every) as lease:
        time.sleep(3 * lease_s)  # healthy renewals move the deadline on
        assert not lease.is_lost() and flaky.renewals >= 5
        flaky.down.set()
        took = wait_for(lease.is_lost, timeout=5)
    # lost once lease_seconds passed since the last successful renewal, not before
    assert lease_s - every - 0.05 <= took <= lease_s + every + 0.3, took
    assert not lease.cancel_requested.is_set()
    assert_still_ours(flaky, sid, "w1")


def test_a_hanging_renewal_cannot_outlive_the_lease(flaky: FlakyStore) -> None:
    lease_s = 0.5
    sid = claim(flaky, "w1", lease_s)
    flaky.hang.set()
    lease = Lease(flaky, sid, "w1", lease_s, 0.1)
    with lease:
        took = wait_for(lease.is_lost, timeout=5)  # the heartbeat thread is stuck meanwhile
        assert took <= lease_s + 0.3, took
        flaky.unhang.set()
    assert_still_ours(flaky, sid, "w1")


def test_refused_renewal_loses_the_lease_at_once(flaky: FlakyStore) -> None:
    sid = claim(flaky, "w1", 0.5)
    time.sleep(0.6)
    assert flaky.claim_study("w2", 30).id == sid  # expired: another worker took it
    with Lease(flaky, sid, "w1", 30, 0.05) as lease:
        took = wait_for(lease.is_lost, timeout=5)
    assert took < 1.0
    assert flaky.get_study(sid).worker_id == "w2"


@pytest.mark.slow
def test_worker_stops_its_run_when_renewals_fail(flaky: FlakyStore, sqlite_store: Store) -> None:
    lease_s, heartbeat_s = 1.5, 0.2
    worker = Worker(
        flaky, worker_id="cut-off", lease_seconds=lease_s, heartbeat_seconds=heartbeat_s,
        poll_seconds=0.1,
    )  # fmt: skip
    # one trial of 5000 epochs trains for tens of seconds unless the worker stops it
    spec = parse_spec(quadratic_spec("cut-off", points=2, seeds=1, epochs=5000,
                                     optimizers=("adamw",)))  # fmt: skip
    sid = sqlite_store.create_study(spec.name, spec.to_dict()).id
    flaky.down.set()  # the database answers everything but renewals from now on
    worker.start(max_studies=1)
    try:
        wait_for(lambda: sqlite_store.get_study(sid).status == StudyStatus.RUNNING, 30)
        t0 = time.monotonic()
        wait_for(lambda: bool(worker.runs), timeout=lease_s + 20)
        took = time.monotonic() - t0
    finally:
        worker.stop()
        assert worker.join(30), "the worker did not stop"
    print(f"run stopped {took:.2f} s after the claim (lease {lease_s} s; noisy timing)")
    assert took < lease_s + heartbeat_s + 3.0, f"the run went on for {took:.1f} s"
    assert worker.runs[-1] == StudyRun(sid, None, "lease lost")
    assert_still_ours(sqlite_store, sid, "cut-off")  # neither released nor overwritten
    assert sqlite_store.list_trials(sid, limit=10)[1] == 0  # the cut-off trial is not a result
    # the expired lease lets another worker claim (and resume) the study
    taken = sqlite_store.claim_study("rescuer", 30)
    assert taken is not None and taken.id == sid and taken.worker_id == "rescuer"
    sqlite_store.release_study(sid, "rescuer", StudyStatus.CANCELLED)
