"""Cancellation through the API: running trials stop within seconds, results are kept."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from service.app import create_app
from service.settings import Settings
from service.worker import Worker
from studies.store import Store
from tests.service.conftest import TestClient, quadratic_spec

HEARTBEAT_S = 0.3

pytestmark = pytest.mark.slow


@pytest.fixture
def worker(sqlite_store: Store) -> Iterator[Worker]:
    w = Worker(sqlite_store, lease_seconds=10, heartbeat_seconds=HEARTBEAT_S, poll_seconds=0.1)
    w.start()
    yield w
    w.stop()
    assert w.join(30), "the worker did not stop"


@pytest.fixture
def api(sqlite_store: Store) -> Iterator[TestClient]:
    _, secret = sqlite_store.create_token("canceller", ("read", "write"))
    app = create_app(Settings(db_url=sqlite_store.url), sqlite_store)
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as client:
        yield client


def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - t0


def test_cancel_mid_trial_stops_within_seconds(
    api: TestClient, sqlite_store: Store, worker: Worker
) -> None:
    # trials of 5000 epochs (tens of seconds of training each): cancel while the first runs
    spec = quadratic_spec("long-trial", points=2, seeds=1, epochs=5000, optimizers=("adamw",))
    sid = api.post("/v1/studies", json=spec).json()["id"]
    wait_until(lambda: sqlite_store.get_study(sid).status == "running", 30, "the claim")
    time.sleep(1.0)  # the trial is training now
    t0 = time.monotonic()
    r = api.post(f"/v1/studies/{sid}/cancel")
    assert r.status_code == 200 and r.json()["cancel_requested"] is True
    took = wait_until(lambda: api.get(f"/v1/studies/{sid}").json()["status"] == "cancelled", 15,
                      "the cancelled status")  # fmt: skip
    assert took < 5.0, f"cancel took {took:.1f} s"
    print(f"cancel observed and trial stopped in {took:.2f} s")
    study = api.get(f"/v1/studies/{sid}").json()
    assert study["timings"]["finished_at"] is not None and study["worker_id"] is None
    # the interrupted trial is not a result: nothing recorded, a resume would run it
    assert api.get(f"/v1/studies/{sid}/trials").json()["total"] == 0
    assert time.monotonic() - t0 < 10
    assert worker.runs[-1].status == "cancelled"


def test_cancel_keeps_finished_results(
    api: TestClient, sqlite_store: Store, worker: Worker
) -> None:
    spec = quadratic_spec("many-trials", points=15, seeds=2, epochs=3, optimizers=("adamw",))
    sid = api.post("/v1/studies", json=spec).json()["id"]
    wait_until(lambda: sqlite_store.list_trials(sid, limit=1)[1] >= 3, 60, "three results")
    api.post(f"/v1/studies/{sid}/cancel")
    wait_until(lambda: sqlite_store.get_study(sid).status == "cancelled", 15, "cancelled")
    before = api.get(f"/v1/studies/{sid}/trials", params={"limit": 500}).json()
    assert 3 <= before["total"] < 30
    assert {t["outcome"] for t in before["items"]} <= {"complete", "diverged"}
    assert all(t["attempts"] == 1 for t in before["items"])
    time.sleep(3 * HEARTBEAT_S)  # nothing more lands after the status says cancelled
    after = api.get(f"/v1/studies/{sid}/trials", params={"limit": 500}).json()
    assert after == before
    study = api.get(f"/v1/studies/{sid}").json()
    assert study["progress"]["n_finished"] == before["total"]
    assert study["progress"]["n_planned"] == 30
    # the worker is free again: the next study runs to completion
    nxt = api.post("/v1/studies", json=quadratic_spec("after", points=2, seeds=1, epochs=1)).json()
    wait_until(lambda: sqlite_store.get_study(nxt["id"]).status == "completed", 60, "completion")
