"""Worker processes on PostgreSQL: atomic claims, leases, SIGKILL and resume."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest

from studies.sampling import expand_grid, trial_key
from studies.spec import parse_spec
from studies.store import Store
from tests.service.conftest import quadratic_spec, wipe

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 3.0


class WorkerProc:
    """A ``vradam-hpo worker`` subprocess logging to a file."""

    def __init__(self, db: str, log: Path, worker_id: str) -> None:
        self.log = log
        self.worker_id = worker_id
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        cmd = [
            sys.executable, "-m", "service.cli", "worker", "--db", db, "--worker-id", worker_id,
            "--lease-seconds", str(LEASE_S), "--heartbeat-seconds", "0.5", "--poll-seconds", "0.2",
        ]  # fmt: skip
        self._out = log.open("wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._out, stderr=self._out)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def ran(self) -> list[str]:
        return re.findall(rf"worker {re.escape(self.worker_id)} runs study (\w+)", self.text())

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._out.close()


@pytest.fixture
def pg_store(_pg_store: Store) -> Store:
    wipe(_pg_store)
    return _pg_store


@pytest.fixture
def spawn(pg_store: Store, tmp_path: Path) -> Iterator[Callable[[str], WorkerProc]]:
    procs: list[WorkerProc] = []

    def start(name: str) -> WorkerProc:
        w = WorkerProc(pg_store.url, tmp_path / f"{name}.log", name)
        procs.append(w)
        return w

    yield start
    for w in procs:  # never leave a worker behind
        w.signal(signal.SIGKILL)
        w.wait(30)


def wait_until(cond: Callable[[], bool], timeout: float, what: str, procs=()) -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            logs = "\n".join(f"--- {p.worker_id}\n{p.text()[-3000:]}" for p in procs)
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")
        time.sleep(0.1)


def submit(store: Store, spec: dict) -> str:
    parsed = parse_spec(spec)
    return store.create_study(parsed.name, parsed.to_dict()).id


def expected_keys(spec: dict) -> set[str]:
    parsed = parse_spec(spec)
    keys = set()
    for opt in parsed.optimizers:
        for params in expand_grid(parsed.space_for(opt.name), parsed.sampler.points):
            for seed in parsed.seeds:
                keys.add(f"{opt.name}|{trial_key({**opt.fixed, **params}, seed)}")
    return keys


def recorded_keys(store: Store, study_id: str) -> list[str]:
    trials, total = store.list_trials(study_id, limit=10_000)
    assert total == len(trials)
    return [f"{t.optimizer}|{t.key}" for t in trials]


def test_two_workers_run_each_study_once(pg_store: Store, spawn) -> None:
    a, b = spawn("wa"), spawn("wb")
    wait_until(lambda: "started" in a.text() and "started" in b.text(), 60, "startup", (a, b))
    specs = [quadratic_spec(f"pair{i}", points=4, seeds=2, epochs=2) for i in range(4)]
    ids = [submit(pg_store, s) for s in specs]
    wait_until(
        lambda: all(pg_store.get_study(i).status == "completed" for i in ids), 180, "4 studies",
        (a, b),
    )  # fmt: skip
    for w in (a, b):  # graceful shutdown on SIGTERM
        w.signal(signal.SIGTERM)
    assert a.wait(30) == 0 and b.wait(30) == 0
    ran_a, ran_b = a.ran(), b.ran()
    assert sorted(ran_a + ran_b) == sorted(ids), (ran_a, ran_b)  # each study claimed once
    assert ran_a and ran_b, "both workers should have claimed studies"
    for sid, spec in zip(ids, specs, strict=True):
        keys = recorded_keys(pg_store, sid)
        assert sorted(keys) == sorted(expected_keys(spec))  # each trial exactly once
        trials, _ = pg_store.list_trials(sid, limit=100)
        assert all(t.attempts == 1 and t.outcome != "failed" for t in trials)
        assert pg_store.get_study(sid).worker_id is None


def test_killed_worker_study_resumed_by_other(pg_store: Store, spawn) -> None:
    spec = quadratic_spec("killme", points=6, seeds=2, epochs=25)
    a = spawn("victim")
    wait_until(lambda: "started" in a.text(), 60, "startup", (a,))
    sid = submit(pg_store, spec)
    wait_until(lambda: pg_store.list_trials(sid, limit=1)[1] >= 3, 120, "3 trials", (a,))
    a.signal(signal.SIGKILL)
    assert a.wait(30) == -signal.SIGKILL
    before, _ = pg_store.list_trials(sid, limit=100)
    study = pg_store.get_study(sid)
    assert study.status == "running" and study.worker_id == "victim"
    assert len(before) < 24, "the study finished before the kill; make it longer"

    b = spawn("rescuer")
    wait_until(lambda: pg_store.get_study(sid).status == "completed", 180, "resume", (a, b))
    assert b.ran() == [sid]
    keys = recorded_keys(pg_store, sid)
    assert len(keys) == len(set(keys)) == 24
    assert set(keys) == expected_keys(spec)
    after, _ = pg_store.list_trials(sid, limit=100)
    old = {t.id: (t.key, t.value, t.finished_at) for t in before}
    assert {t.id: (t.key, t.value, t.finished_at) for t in after if t.id in old} == old
    assert all(t.attempts == 1 for t in after)  # the interrupted trial was never recorded
    b.signal(signal.SIGTERM)
    assert b.wait(30) == 0

    # Optuna agrees: exactly the planned trials completed in each cell
    for cell in pg_store.list_cells(sid):
        study = optuna.load_study(study_name=cell.optuna_study_name, storage=pg_store.url)
        complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        assert len(complete) == cell.n_planned == 12
