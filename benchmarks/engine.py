"""Engine overhead and Ray speed-up.

1. 40 trials of ``quadratic`` through the engine with the local executor, against a plain
   Optuna ask/run_trial/tell loop on the same kind of storage (a fresh SQLite file
   each); both warmed up first. Target: ratio <= 1.3.
2. The Ray executor at concurrency 1 vs 2 on trials of ~2 s each (a ``digits_cnn``
   budget sized to take about 2 s here). Target: speed-up >= 1.6 on 2 cores.

Run: ``.venv/bin/python benchmarks/engine.py [--skip-ray] [--repeats N]``. Timings are
noisy on a shared machine: the script reports the median over repeats.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna

from labcore.budget import Budget
from studies.runner import run_study
from studies.store import SQLStore
from studies.store.sql import engine_kwargs

N_TRIALS = 40
QUAD_BUDGET = {"epochs": 5}


def quadratic_spec(name: str, sampler: str = "grid") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name,
        "tasks": [{"name": "quadratic", "budget": QUAD_BUDGET}],
        "optimizers": [{"name": "adamw"}],
        "search_space": {"lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True}},
        "sampler": {"name": "grid", "points": {"lr": N_TRIALS // 2}},
        "seeds": [0, 1],
    }
    if sampler != "grid":
        spec["sampler"] = {"name": sampler, "n_trials": N_TRIALS // 2}
    return spec


def fresh_store(tmp: Path, name: str) -> SQLStore:
    store = SQLStore(f"sqlite:///{tmp / (name + '.db')}")
    store.create_schema()
    return store


def time_engine(tmp: Path, i: int, sampler: str = "grid") -> float:
    from workers.executors import LocalExecutor

    store = fresh_store(tmp, f"engine{sampler}{i}")
    t0 = time.perf_counter()
    summary = run_study(quadratic_spec(f"bench{i}", sampler), store, LocalExecutor())
    elapsed = time.perf_counter() - t0
    assert summary.n_run == N_TRIALS, summary
    store.close()
    return elapsed


def time_plain_optuna(tmp: Path, i: int) -> float:
    from workers.trial import run_trial

    store = fresh_store(tmp, f"plain{i}")
    storage = optuna.storages.RDBStorage(store.url, engine_kwargs=engine_kwargs(store.url))
    t0 = time.perf_counter()
    study = optuna.create_study(storage=storage, study_name=f"plain{i}")
    for n in range(N_TRIALS):
        trial = study.ask()
        lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
        result = run_trial("quadratic", "adamw", {"lr": lr}, n % 2, Budget(**QUAD_BUDGET))
        value = result.metrics.get("val_loss", result.initial_metrics.get("val_loss"))
        study.tell(trial, value if value == value else result.initial_metrics["val_loss"])
    elapsed = time.perf_counter() - t0
    storage.engine.dispose()
    store.close()
    return elapsed


def bench_overhead(repeats: int) -> dict[str, float]:
    from workers.trial import run_trial

    run_trial("quadratic", "adamw", {"lr": 0.1}, 0, Budget(1))  # warm-up: imports, first call
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        time_engine(tmp, -1)
        engine, plain, live = [], [], []
        for i in range(repeats):
            plain.append(time_plain_optuna(tmp, i))
            engine.append(time_engine(tmp, i))
            live.append(time_engine(tmp, i, "tpe"))
    e, p, t = statistics.median(engine), statistics.median(plain), statistics.median(live)
    ms = 1000 / N_TRIALS
    print(f"[overhead] {N_TRIALS} quadratic trials (median of {repeats}):")
    print(f"[overhead]   plain Optuna ask/run_trial/tell: {p:.2f}s ({p * ms:.1f} ms/trial)")
    print(f"[overhead]   engine, grid (local executor):   {e:.2f}s ({e * ms:.1f} ms/trial)")
    print(f"[overhead]   engine, tpe (live Optuna trials): {t:.2f}s ({t * ms:.1f} ms/trial)")
    print(f"[overhead] ratio engine/plain = {e / p:.2f} grid, {t / p:.2f} tpe (target <= 1.3)")
    return {"engine_s": e, "plain_s": p, "tpe_s": t, "ratio": e / p, "ratio_tpe": t / p}


def bench_ray(n_trials: int, epochs: int) -> dict[str, float]:
    import ray

    from workers.executors.base import TrialRequest
    from workers.executors.ray_executor import RayExecutor
    from workers.trial import run_trial

    t0 = time.perf_counter()
    run_trial("digits_cnn", "adamw", {"lr": 1e-3}, 0, Budget(epochs))
    t0 = time.perf_counter()
    run_trial("digits_cnn", "adamw", {"lr": 1e-3}, 1, Budget(epochs))
    single = time.perf_counter() - t0
    print(f"[ray] one digits_cnn trial ({epochs} epochs) in-process: {single:.2f}s")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        requests = [
            TrialRequest(
                "digits_cnn", "adamw", {"lr": 1e-3 * (1 + i)}, i, Budget(epochs), key=str(i)
            )
            for i in range(n_trials)
        ]
        times = {}
        for conc in (1, 2):
            with RayExecutor(max_concurrent=conc, cpus_per_trial=1) as ex:
                list(ex.run(requests[:2]))  # warm-up: Tune start, worker imports
                t0 = time.perf_counter()
                outs = list(ex.run(requests))
                times[conc] = time.perf_counter() - t0
            assert all(o.result.outcome == "complete" for o in outs), outs
            print(f"[ray] {n_trials} trials at concurrency {conc}: {times[conc]:.2f}s")
    finally:
        ray.shutdown()
    speedup = times[1] / times[2]
    print(f"[ray] speed-up 1 -> 2 = {speedup:.2f} (target >= 1.6)")
    return {"ray_c1_s": times[1], "ray_c2_s": times[2], "speedup": speedup}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--ray-trials", type=int, default=10)
    parser.add_argument("--ray-epochs", type=int, default=24, help="~2 s per trial here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import torch

    torch.set_num_threads(1)
    bench_overhead(args.repeats)
    if not args.skip_ray:
        bench_ray(args.ray_trials, args.ray_epochs)


if __name__ == "__main__":
    main()
