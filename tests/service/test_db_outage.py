"""A PostgreSQL restart during a running study, on a private cluster (never the shared one).

Real ``vradam-hpo serve`` and ``vradam-hpo worker`` processes run a small ``quadratic``
study; the test stops PostgreSQL mid-study, checks that the API answers 503 while it is
down, starts it again, and asserts the study completes with every trial recorded once.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from studies.store import open_store
from tests.pgcluster import PgCluster
from tests.service.conftest import free_port, quadratic_spec
from tests.service.servers import cli_process, serve

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

POINTS, SEEDS, OPTIMIZERS = 4, 2, ("adamw", "vradam")
PLANNED = POINTS * SEEDS * len(OPTIMIZERS)
FINISH_TIMEOUT_S = 180.0


def study_body() -> dict[str, Any]:
    body = quadratic_spec("outage", points=POINTS, seeds=SEEDS, epochs=3, optimizers=OPTIMIZERS)
    body["tasks"][0]["options"] = {"steps_per_epoch": 2000}  # ~0.5 s a trial: time to stop
    return body


def poll(client: httpx.Client, path: str) -> httpx.Response | None:
    try:
        return client.get(path)
    except httpx.HTTPError:
        return None


def test_postgres_restart_mid_study(private_pg: PgCluster) -> None:
    url = private_pg.create_database("outage")
    store = open_store(url)
    store.create_schema()
    _, secret = store.create_token("outage", ("read", "write"))
    store.close()
    port = free_port()
    worker_args = ["worker", "--db", url, "--lease-seconds", "10", "--heartbeat-seconds", "1",
                   "--poll-seconds", "0.5"]  # fmt: skip
    with (
        serve(port, ["--db", url, "--no-worker", "--no-local", "--port", str(port)]) as (_, api),
        cli_process(worker_args) as worker,
        httpx.Client(
            base_url=api, headers={"Authorization": f"Bearer {secret}"}, timeout=10
        ) as client,
    ):
        r = client.post("/v1/studies", json=study_body())
        assert r.status_code == 201, r.text
        sid = r.json()["id"]

        deadline = time.monotonic() + 120
        while True:  # wait for the study to be under way
            study = client.get(f"/v1/studies/{sid}").json()
            if study["status"] == "running" and study["progress"]["n_finished"] >= 2:
                break
            assert time.monotonic() < deadline, study
            assert worker.poll() is None, "the worker exited"
            time.sleep(0.2)
        finished_before = study["progress"]["n_finished"]
        assert finished_before < PLANNED, "the study finished before the outage: make it longer"

        private_pg.stop("fast")
        down_at = time.monotonic()
        statuses = []
        for path in (f"/v1/studies/{sid}", "/v1/studies", "/readyz", f"/v1/studies/{sid}/trials"):
            r = poll(client, path)
            assert r is not None, f"{path}: no answer while the database is down"
            statuses.append(r.status_code)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert r.json()["error"]["code"] == "store_unavailable"
        time.sleep(3.0)  # the worker's heartbeats and trial writes fail meanwhile
        private_pg.start()
        up_at = time.monotonic()
        outage_s = up_at - down_at

        deadline = time.monotonic() + FINISH_TIMEOUT_S
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            r = poll(client, f"/v1/studies/{sid}")
            if r is not None and r.status_code == 200:
                last = r.json()
                if last["status"] in ("completed", "failed", "cancelled"):
                    break
            time.sleep(0.5)
        recovered_s = time.monotonic() - up_at
        worker_alive = worker.poll() is None

        print(f"\noutage {outage_s:.1f} s; {finished_before}/{PLANNED} trials done before; "
              f"finished {recovered_s:.1f} s after the restart; 503s {statuses}")  # fmt: skip
        assert last.get("status") == "completed", (
            f"after {recovered_s:.0f} s: {last.get('status')} {last.get('error')}; "
            f"progress {last.get('progress', {}).get('n_finished')}/{PLANNED}; "
            f"worker alive: {worker_alive}\n{private_pg.log_tail(15)}"
        )
        trials = client.get(f"/v1/studies/{sid}/trials", params={"limit": 500}).json()
    assert trials["total"] == PLANNED
    keys = [(t["cell_id"], t["key"]) for t in trials["items"]]
    assert len(set(keys)) == PLANNED  # every (cell, hparams, seed) exactly once
    assert {t["outcome"] for t in trials["items"]} <= {"complete", "diverged"}
    per_cell = {}
    for t in trials["items"]:
        per_cell[t["optimizer"]] = per_cell.get(t["optimizer"], 0) + 1
    assert per_cell == {o: POINTS * SEEDS for o in OPTIMIZERS}
    attempts = sorted(t["attempts"] for t in trials["items"])
    print(f"attempts per trial: {attempts}")
