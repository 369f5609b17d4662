"""API latency under polling load, on PostgreSQL.

A real ``vradam-hpo serve`` process (uvicorn, no worker) on a fresh PostgreSQL database
(created here, dropped at the end) holding 200 studies, each with two cells and trials;
30 concurrent clients (asyncio + httpx) poll for a bounded time, each alternating
``GET /v1/studies`` (a page of 50) and ``GET /v1/studies/{id}``, sleeping ``--interval``
seconds between requests (1 s: the SDK's ``wait`` poll period). Prints p50/p99 per route,
requests per second, the SQL statements per request (counted in-process with a
``before_cursor_execute`` listener) and the machine's load average.

Target: p99 < 100 ms for both routes. Run:
``.venv/bin/python benchmarks/api_load.py [--seconds 20] [--clients 30] [--interval 1.0]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from labcore.outcomes import Outcome  # noqa: E402
from labcore.results import EpochMetrics, TrialResult  # noqa: E402
from studies.store import Store, open_store  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
N_STUDIES = 200
TRIALS_PER_CELL = 6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def fresh_database(admin: str) -> Iterator[str]:
    import psycopg

    name = f"vradam_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    host = admin.split("@", 1)[1].rsplit("/", 1)[0]
    try:
        yield f"postgresql+psycopg://postgres@{host}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def spec(i: int) -> dict[str, Any]:
    return {
        "name": f"bench-{i}",
        "tasks": [{"name": "quadratic", "budget": {"epochs": 2}}],
        "optimizers": [{"name": "adamw"}, {"name": "vradam"}],
        "search_space": {"lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True}},
        "sampler": {"name": "grid", "points": {"lr": 3}},
        "seeds": [0, 1],
    }


def result(value: float) -> TrialResult:
    epochs = tuple(
        EpochMetrics(epoch=e, step=10 * e, metrics={"train_loss": value, "val_loss": value})
        for e in range(3)
    )
    return TrialResult(
        outcome=Outcome.COMPLETE,
        metrics={"val_loss": value, "test_loss": value},
        initial_metrics={"val_loss": 10.0},
        epochs=epochs,
        wall_time_s=0.01,
    )


def populate(store: Store) -> list[str]:
    ids = []
    for i in range(N_STUDIES):
        rec = store.create_study(f"bench-{i}", spec(i))
        for opt in ("adamw", "vradam"):
            cell = store.ensure_cell(rec.id, "quadratic", opt, f"{rec.id}/quadratic/{opt}", 6)
            for k in range(TRIALS_PER_CELL):
                store.record_trial(cell.id, f"k{k}", {"lr": 0.01 * (k + 1)}, k % 2,
                                   result(1.0 / (k + 1)), 1.0, k)  # fmt: skip
        ids.append(rec.id)
    return ids


def statements_per_request(store: Store, token: str, study_id: str) -> dict[str, int]:
    import warnings

    from service.app import create_app
    from service.settings import Settings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    seen: list[str] = []

    def listener(*args: Any) -> None:
        seen.append(args[2])

    out = {}
    app = create_app(Settings(db_url=store.url), store)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        for label, path in (("list", "/v1/studies"), ("one", f"/v1/studies/{study_id}")):
            client.get(path)
            sa.event.listen(sa.engine.Engine, "before_cursor_execute", listener)
            try:
                seen.clear()
                assert client.get(path).status_code == 200
                out[label] = len(seen)
            finally:
                sa.event.remove(sa.engine.Engine, "before_cursor_execute", listener)
    return out


async def client_loop(
    url: str, token: str, ids: list[str], stop_at: float, interval: float,
    lat: dict[str, list[float]], errors: list[str], seed: int,
) -> None:  # fmt: skip
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        await asyncio.sleep(rng.uniform(0, interval))  # spread the clients' phases
        turn = seed % 2
        while time.monotonic() < stop_at:
            label = "list" if turn == 0 else "one"
            path = "/v1/studies" if turn == 0 else f"/v1/studies/{rng.choice(ids)}"
            turn ^= 1
            t0 = time.perf_counter()
            r = await client.get(path)
            lat[label].append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors.append(f"{path}: {r.status_code}")
            await asyncio.sleep(interval)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--admin-url", default=PG_ADMIN)
    args = parser.parse_args()

    with fresh_database(args.admin_url) as db:
        store = open_store(db)
        store.create_schema()
        t0 = time.perf_counter()
        ids = populate(store)
        _, token = store.create_token("bench", ("read",))
        print(f"stored {len(ids)} studies x 2 cells x {TRIALS_PER_CELL} trials "
              f"in {time.perf_counter() - t0:.1f} s")  # fmt: skip
        stmts = statements_per_request(store, token, ids[0])
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("VRADAM_LAB_")}
        env["PYTHONPATH"] = str(ROOT)
        server = subprocess.Popen(
            [sys.executable, "-c", "from service.cli import main; main()", "serve", "--db", db,
             "--port", str(port), "--no-worker", "--no-local"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
            for _ in range(20):  # warm up connections and caches
                httpx.get(f"{url}/v1/studies", headers={"Authorization": f"Bearer {token}"})
            lat: dict[str, list[float]] = {"list": [], "one": []}
            errors: list[str] = []
            load_before = os.getloadavg()
            stop_at = time.monotonic() + args.seconds

            async def run_all() -> None:
                await asyncio.gather(*(
                    client_loop(url, token, ids, stop_at, args.interval, lat, errors, i)
                    for i in range(args.clients)
                ))  # fmt: skip

            started = time.perf_counter()
            asyncio.run(run_all())
            wall = time.perf_counter() - started
            load_after = os.getloadavg()
        finally:
            server.terminate()
            server.wait(30)
            store.close()

    n = len(lat["list"]) + len(lat["one"])
    print(f"{args.clients} clients, interval {args.interval:g} s, {wall:.1f} s: "
          f"{n} requests ({n / wall:.0f}/s), {len(errors)} errors")  # fmt: skip
    for label, route in (("list", "GET /v1/studies"), ("one", "GET /v1/studies/{id}")):
        v = lat[label]
        ok = "ok" if pct(v, 0.99) < 100 else "OVER TARGET"
        print(f"  {route:22s} n={len(v):5d}  p50 {pct(v, 0.5):6.1f} ms  p99 {pct(v, 0.99):6.1f} ms"
              f"  mean {statistics.fmean(v) * 1000:6.1f} ms  statements/request "
              f"{stmts[label]}  (target p99 < 100 ms: {ok})")  # fmt: skip
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"(1 min; {os.cpu_count()} CPUs)")  # fmt: skip
    if errors:
        print("errors:", errors[:10])


if __name__ == "__main__":
    main()
