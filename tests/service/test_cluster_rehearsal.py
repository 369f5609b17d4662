"""The intended topology, rehearsed as local processes (``docs/cluster.md``).

PostgreSQL (a fresh database on the shared server), a private Ray head and a second raylet
that carries the custom resource ``gpu_node`` (standing in for a GPU node), Ray token
authentication on, the API with ``--no-worker``, one ``vradam-hpo worker`` driving Ray
Tune on that cluster (``VRADAM_LAB_RAY_ADDRESS``), and optuna-dashboard on the same
database. Studies go in through the SDK. Where each trial ran comes from Ray itself: the
plugin optimizers of :mod:`tests.service.cluster_plugins` record
``ray.get_runtime_context().get_node_id()`` and Ray's node table.

Every process is stopped by PID at the end, and the test fails if one is left.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.client import Client
from service.commands.dashboard import dashboard_command
from studies.store import open_store
from studies.store.sql import normalize_url
from tests.service.cluster_plugins import records
from tests.service.conftest import PG_ADMIN, PG_URL, free_port, quadratic_spec
from tests.service.raynodes import RayCluster
from tests.service.servers import CLI, ROOT, cli_env

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.postgres]

PLUGINS = "tests.service.cluster_plugins"
NODE_SGD, SLOW_SGD = f"{PLUGINS}:NodeSGD", f"{PLUGINS}:SlowNodeSGD"


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped at the end."""
    import psycopg

    name = f"vradam_rehearsal_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.format(name=name)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def study(name: str, optimizer: str, points: int, **executor: Any) -> dict[str, Any]:
    spec = quadratic_spec(name, points=points, seeds=1, epochs=2, optimizers=(optimizer,))
    spec["tasks"][0]["budget"]["steps_per_epoch"] = 4
    spec["executor"] = {"name": "ray", "max_concurrent": 2, **executor}
    return spec


def wait_for(cond: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Proc:
    """A process of the rehearsal, its output in a file, stopped by PID."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, env=cli_env(env), stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
            )

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def wait_answering(url: str, proc: Proc, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.alive(), f"{url} exited:\n{proc.tail()}"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s")


def test_the_cluster_topology_end_to_end(database: str, tmp_path: Path) -> None:
    store = open_store(database)
    store.create_schema()
    _, api_token = store.create_token("rehearsal", ["read", "write"])
    store.close()
    rec_dir = tmp_path / "records"
    rec_dir.mkdir()
    ray_token = secrets.token_hex(32)
    node_env = {
        "VRADAM_REHEARSAL_DIR": str(rec_dir),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }
    cluster = RayCluster(ray_token, env=node_env)
    procs: list[Proc] = []
    try:
        address = cluster.start_head()
        assert not address.startswith("127."), address  # Ray 2.60 advertises the machine's IP
        gpu_node = cluster.add_node("gpu", resources={"gpu_node": 1})
        lab_env = {
            "VRADAM_LAB_DB_URL": database,
            "VRADAM_LAB_PLUGINS": f"{NODE_SGD},{SLOW_SGD}",
            "VRADAM_LAB_RAY_ADDRESS": address,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": ray_token,
            "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        api_port, dash_port = free_port(), free_port()
        serve = ["serve", "--no-worker", "--no-local", "--port", str(api_port)]
        api = Proc([*CLI, *serve], lab_env, tmp_path / "api.log")
        procs.append(api)
        worker = Proc([*CLI, "worker", "--poll-seconds", "0.5"], lab_env, tmp_path / "worker.log")
        procs.append(worker)
        dash_cmd = dashboard_command(normalize_url(database), "127.0.0.1", dash_port)
        dash = Proc(dash_cmd, {}, tmp_path / "dashboard.log")
        procs.append(dash)
        url = f"http://127.0.0.1:{api_port}"
        wait_answering(f"{url}/readyz", api)
        client = Client(url, api_token)

        # 1. trials that ask for the GPU node's resource run there and nowhere else (the
        # worker's run waits until that raylet has joined)
        pinned = client.submit(
            study(
                "pinned", NODE_SGD, 4, resources_per_trial={"cpu": 0.5, "custom": {"gpu_node": 0.5}}
            )
        )
        done = client.wait(pinned.id, progress=False, poll_seconds=0.5, timeout=150)
        assert done.status == "completed", (done.error, worker.tail())
        trials = client.all_trials(pinned.id)
        assert len(trials) == 4 and {t.outcome for t in trials} == {"complete"}
        assert {t.device for t in trials} == {"cpu"}  # exposed per trial
        first = records(rec_dir)
        assert len(first) == 4, first
        assert all(r["node_has_gpu_node"] for r in first), first
        assert len({r["node"] for r in first}) == 1
        assert all(r["assigned"].get("gpu_node") == 0.5 for r in first), first
        gpu_node_id = first[0]["node"]

        # 2. an unpinned study spreads over both nodes; SIGKILL the GPU node's raylet under
        # a running trial: that trial runs again on the head, every trial completes once
        spread = client.submit(study("spread", SLOW_SGD, 8))

        def slow_on_gpu() -> list[dict[str, Any]]:
            return [
                r for r in records(rec_dir) if r["kind"] == "SlowNodeSGD" and r["node_has_gpu_node"]
            ]

        killed_lr = wait_for(slow_on_gpu, 120, "a trial on the GPU node")[0]["lr"]
        os.kill(cluster.raylet_pid(gpu_node), signal.SIGKILL)
        done = client.wait(spread.id, progress=False, poll_seconds=0.5, timeout=180)
        assert done.status == "completed", (done.error, worker.tail())
        trials = client.all_trials(spread.id)
        assert len(trials) == 8 and {t.outcome for t in trials} == {"complete"}, trials
        assert len({t.key for t in trials}) == 8
        attempts = {t.hparams["lr"]: t.attempts for t in trials}
        assert attempts[killed_lr] == 2, attempts  # the killed trial ran again, once
        slow = [r for r in records(rec_dir) if r["kind"] == "SlowNodeSGD"]
        assert {r["node"] for r in slow} == {gpu_node_id, *(r["node"] for r in slow)}
        assert len({r["node"] for r in slow}) == 2, slow  # both nodes ran trials
        runs = sorted((r for r in slow if r["lr"] == killed_lr), key=lambda r: r["t"])
        assert [r["node_has_gpu_node"] for r in runs] == [True, False], runs
        # every attempt started exactly once: none lost, none run twice
        assert Counter(r["lr"] for r in slow) == Counter(attempts), (slow, attempts)

        # 3. optuna-dashboard reads the same database: one Optuna study per cell
        wait_answering(f"http://127.0.0.1:{dash_port}/api/studies", dash)
        listed = httpx.get(f"http://127.0.0.1:{dash_port}/api/studies", timeout=10).json()
        names = {s["study_name"] for s in listed["study_summaries"]}
        for sid, cell in (
            (pinned.id, f"pinned/quadratic/{NODE_SGD}"),
            (spread.id, f"spread/quadratic/{SLOW_SGD}"),
        ):
            name, rest = cell.split("/", 1)
            assert any(
                n.startswith(f"{name}.")
                and n.endswith(f"/{rest}")
                and sid.startswith(n.split("/")[0][len(name) + 1 :])
                for n in names
            ), names  # Optuna's study names: <study>.<id>/<task>/<optimizer>
        for proc in procs:
            assert proc.alive(), f"a service died during the rehearsal:\n{proc.tail()}"
    finally:
        for proc in reversed(procs):
            proc.stop()
        left = cluster.stop()
        assert left == [], f"Ray processes left running: {left}"
        assert all(not p.alive() for p in procs)
