"""Time a robustness report over a synthetic study of 10,000 trials with 20 epochs each.

2 tasks x 4 optimizers x 25 learning rates x 50 seeds = 10,000 in-memory ``TrialRecord`` s,
each with epochs 0..20 (VRAdam's carry an effective-learning-rate ratio), about 8% diverged.
Times ``analyze`` + Markdown + JSON (target: under 2 s) and, separately, the figures (PNG,
SVG) and the HTML page. Prints the trial count and the median of ``--repeat`` runs.

    .venv/bin/python benchmarks/report.py
    .venv/bin/python benchmarks/report.py --repeat 5 --out /tmp/report   # also write the files
    .venv/bin/python benchmarks/report.py --from-store   # also through a SQLite store
"""

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labcore.outcomes import Outcome
from labcore.results import EpochMetrics, TrialResult
from studies.report import analyze, build_report, render, write_report
from studies.store import SQLStore, StudyStatus
from studies.store.records import TrialRecord

TASKS = ("digits_cnn", "stdlib_char_lm")
OPTIMIZERS = {"adamw": 0.0, "vradam": 0.4, "sgd": 1.2, "lion": -0.8}  # log10 shift of η*
N_LR, N_SEEDS, N_EPOCHS = 25, 50, 20


def synthetic_trials(seed: int = 0) -> tuple[list[TrialRecord], dict]:
    """Return the synthetic study's trials and spec (a U-shaped loss in log10 lr)."""
    rng = np.random.default_rng(seed)
    lrs = np.logspace(-5, 1, N_LR)
    now = datetime.now(UTC)
    trials: list[TrialRecord] = []
    for task in TASKS:
        for opt, shift in OPTIMIZERS.items():
            for lr in lrs:
                x = np.log10(lr) + 2.5 - shift
                finals = 0.3 + 0.12 * x**2 + 0.03 * rng.standard_normal(N_SEEDS)
                diverged = rng.random(N_SEEDS) < 1 / (1 + np.exp(-4 * (x - 2.2)))
                for s in range(N_SEEDS):
                    curve = 2.3 + (finals[s] - 2.3) * (1 - np.exp(-np.arange(N_EPOCHS + 1) / 4))
                    eff = opt == "vradam"
                    epochs = tuple(
                        EpochMetrics(
                            epoch=e,
                            step=50 * e,
                            metrics={"val_loss": float(curve[e])},
                            effective_lr_ratio=float(1 / (1 + 0.05 * e)) if eff and e else None,
                        )
                        for e in range(N_EPOCHS + 1)
                    )
                    div = bool(diverged[s])
                    final = float(finals[s])
                    trials.append(
                        TrialRecord(
                            id=len(trials) + 1,
                            study_id="bench",
                            cell_id=0,
                            task=task,
                            optimizer=opt,
                            key=f"{task}/{opt}/{lr:.6g}/{s}",
                            hparams={"lr": float(lr), "weight_decay": 1e-4},
                            seed=s,
                            outcome="diverged" if div else "complete",
                            value=2.3 if div else final,
                            metrics={"val_loss": final, "test_loss": final + 0.01},
                            initial_metrics={"val_loss": 2.3, "test_loss": 2.3},
                            diverged_at_step=120 if div else None,
                            effective_lr={},
                            wall_time_s=1.0,
                            attempts=1,
                            error=None,
                            optuna_trial_number=s,
                            finished_at=now,
                            epochs=epochs,
                        )
                    )
    spec = {
        "name": "bench-10k",
        "tasks": [{"name": t, "budget": {"epochs": N_EPOCHS}} for t in TASKS],
        "optimizers": [{"name": o, "fixed": {"weight_decay": 1e-4}} for o in OPTIMIZERS],
        "search_space": {"lr": {"type": "float", "low": 1e-5, "high": 10.0, "log": True}},
        "sampler": {"name": "grid", "points": {"lr": N_LR}},
        "seeds": list(range(N_SEEDS)),
        "objective": {"metric": "val_loss", "direction": "minimize"},
    }
    return trials, spec


def fill_store(url: str, trials: list[TrialRecord], spec: dict) -> tuple[SQLStore, str]:
    """Write the synthetic trials into a fresh store (one record_trial each) and return it."""
    store = SQLStore(url)
    store.create_schema()
    study = store.create_study(spec["name"], spec)
    cells: dict[tuple[str, str], int] = {}
    for t in trials:
        key = (t.task, t.optimizer)
        if key not in cells:
            name = f"{spec['name']}.{study.id}/{t.task}/{t.optimizer}"
            cells[key] = store.ensure_cell(study.id, t.task, t.optimizer, name, N_LR * N_SEEDS).id
        result = TrialResult(
            outcome=Outcome(t.outcome),
            metrics=t.metrics,
            initial_metrics=t.initial_metrics,
            epochs=t.epochs,
            diverged_at_step=t.diverged_at_step,
            wall_time_s=t.wall_time_s,
        )
        store.record_trial(cells[key], t.key, t.hparams, t.seed, result, t.value, None)
    store.set_status(study.id, StudyStatus.RUNNING)
    store.set_status(study.id, StudyStatus.COMPLETED)
    return store, study.id


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="also write the report files here")
    ap.add_argument(
        "--from-store",
        action="store_true",
        help="also write the trials to a SQLite store and time build_report reading them back",
    )
    args = ap.parse_args()

    t0 = time.perf_counter()
    trials, spec = synthetic_trials()
    n_epochs = sum(len(t.epochs) for t in trials)
    print(f"built {len(trials)} trials ({n_epochs} epoch rows) in {time.perf_counter() - t0:.2f} s")

    core, figs = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        report = analyze(trials, spec, baseline="adamw")
        t1 = time.perf_counter()
        md, js = render(report, "md"), render(report, "json")
        t2 = time.perf_counter()
        png, svg, html = render(report, "png"), render(report, "svg"), render(report, "html")
        t3 = time.perf_counter()
        core.append((t1 - t0, t2 - t1))
        figs.append(t3 - t2)
    a = statistics.median(c[0] for c in core)
    r = statistics.median(c[1] for c in core)
    print(f"trials analysed: {report.n_trials}")
    print(f"analyze: {a:.3f} s   md + json: {r:.3f} s   total: {a + r:.3f} s (target < 2 s)")
    print(f"figures png + svg + html page: {statistics.median(figs):.3f} s")
    print(f"sizes: md {len(md)} chars, json {len(js)} chars, png {len(png)} B, svg {len(svg)} B,")
    print(f"       html {len(html)} chars; median of {args.repeat} runs")
    if args.from_store:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            store, study_id = fill_store(f"sqlite:///{tmp}/bench.db", trials, spec)
            print(f"store: wrote {len(trials)} trials in {time.perf_counter() - t0:.1f} s")
            loads = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                report = build_report(store, study_id, baseline="adamw")
                render(report, "md"), render(report, "json")
                loads.append(time.perf_counter() - t0)
            store.close()
            print(
                f"store: build_report (read {report.n_trials} trials + epochs, analyze, md, "
                f"json): {statistics.median(loads):.3f} s (target < 2 s)"
            )
    if args.out is not None:
        for fmt, path in write_report(report, args.out).items():
            print(f"wrote {fmt}: {path}")


if __name__ == "__main__":
    main()
