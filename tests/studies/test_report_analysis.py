"""Every robustness figure against hand-computed values (DESIGN.md section 5)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from labcore.errors import SpecError
from studies.report import Report, analyze, render, report_json_schema
from studies.report.model import OptimizerReport, TaskReport
from studies.report.stats import (
    bootstrap_mean_ci,
    stratified_bootstrap_ci,
    t_interval,
    t_quantile_975,
    win_rate,
)
from tests.studies.report_fixtures import main_trials, make_spec, run

T1 = 12.706204736  # t_{0.975, 1}


def opt_report(report: Report, opt: str, task: str = "t") -> OptimizerReport:
    t = next(t for t in report.tasks if t.task == task)
    return next(o for o in t.optimizers if o.optimizer == opt)


def task_report(report: Report, task: str = "t") -> TaskReport:
    return next(t for t in report.tasks if t.task == task)


def basin_widths(o: OptimizerReport) -> dict[float, tuple[float, bool, bool]]:
    return {b.delta: (round(b.width, 12), b.open_low, b.open_high) for b in o.basins}


# ---------------------------------------------------------------- statistics
def test_t_quantile_matches_table_and_scipy() -> None:
    assert t_quantile_975(1) == pytest.approx(T1)
    assert t_quantile_975(2) == pytest.approx(4.30265273)
    from scipy import stats  # installed with scikit-learn (the workers extra)

    for df in (1, 3, 10, 29, 30, 31, 45, 100, 1000):
        assert t_quantile_975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=1e-6)
    with pytest.raises(ValueError):
        t_quantile_975(0)


def test_t_interval_by_hand() -> None:
    iv = t_interval(np.array([0.4, 0.6]))
    half = T1 * math.sqrt(0.02) / math.sqrt(2)  # sd = sqrt(0.02)
    assert (iv.mean, iv.n) == (pytest.approx(0.5), 2)
    assert iv.lo == pytest.approx(0.5 - half) and iv.hi == pytest.approx(0.5 + half)
    single = t_interval(np.array([3.0]))
    assert (single.mean, single.lo, single.hi, single.n) == (3.0, None, None, 1)


def test_bootstrap_is_seeded_percentile_of_resampled_means() -> None:
    d = np.array([0.1, 0.2, 0.1, -0.1, -0.2, -0.2, -1.4, 0.0])
    lo, hi = bootstrap_mean_ci(d, seed=7, resamples=500)
    rng = np.random.default_rng(7)
    means = d[rng.integers(0, d.size, size=(500, d.size))].mean(axis=1)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))
    assert bootstrap_mean_ci(d, seed=7, resamples=500) == (lo, hi)
    assert bootstrap_mean_ci(d, seed=8, resamples=500) != (lo, hi)
    assert bootstrap_mean_ci(np.array([0.3, 0.3]), seed=1) == (0.3, 0.3)


def test_stratified_bootstrap_resamples_within_groups() -> None:
    a, b = np.array([0.1, 0.3, -0.2]), np.array([1.0, 2.0])
    cis, pooled = stratified_bootstrap_ci([a, b], seed=3, resamples=400)
    rng = np.random.default_rng(3)
    sa = a[rng.integers(0, 3, size=(400, 3))].sum(axis=1)
    sb = b[rng.integers(0, 2, size=(400, 2))].sum(axis=1)
    assert cis[0] == pytest.approx(tuple(np.quantile(sa / 3, [0.025, 0.975])))
    assert cis[1] == pytest.approx(tuple(np.quantile(sb / 2, [0.025, 0.975])))
    assert pooled == pytest.approx(tuple(np.quantile((sa + sb) / 5, [0.025, 0.975])))
    # A constant group adds its sum to every resample and a degenerate interval.
    cis, pooled = stratified_bootstrap_ci([np.array([0.5, 0.5]), np.array([1.0])], seed=0)
    assert cis == [(0.5, 0.5), (1.0, 1.0)] and pooled == pytest.approx((2 / 3, 2 / 3))
    with pytest.raises(ValueError):
        stratified_bootstrap_ci([np.array([])], seed=0)


def test_win_rate_counts_ties_half() -> None:
    assert win_rate(np.array([-1.0, 0.0, 1.0, -2.0])) == pytest.approx(0.625)


# ---------------------------------------------------------------- main study
@pytest.fixture(scope="module")
def main() -> Report:
    return analyze(main_trials(), make_spec(), baseline="adamw")


def test_curve_means_intervals_and_diverged_marks(main: Report) -> None:
    a = opt_report(main, "adamw")
    assert [p.lr for p in a.curve] == [1e-3, 1e-2, 1e-1, 1.0]
    assert [p.estimate.mean for p in a.curve] == pytest.approx([0.85, 0.5, 0.6, 2.0])
    p = a.curve[1]
    assert p.estimate.lo == pytest.approx(0.5 - T1 * 0.1) and p.estimate.hi == pytest.approx(
        0.5 + T1 * 0.1
    )
    assert a.curve[3].diverged_seeds == [0, 1] and a.curve[3].values == [2.0, 2.0]
    v = opt_report(main, "vradam")
    assert v.curve[3].diverged_seeds == [1] and v.curve[3].values == [0.6, 2.0]
    assert task_report(main).l0 == 2.0 and task_report(main).l0_source == "initial_metrics"


def test_best_lr_basins_sensitivity_divergence(main: Report) -> None:
    a = opt_report(main, "adamw")
    assert a.lr_star == 1e-2 and a.best is not None and a.best.mean == pytest.approx(0.5)
    # ℓ* = 0.5, ℓ0 - ℓ* = 1.5: thresholds 0.575, 0.65, 0.875
    assert basin_widths(a) == {
        0.05: (0.0, False, False),
        0.1: (1.0, False, False),
        0.25: (2.0, True, False),
    }
    assert [b.threshold for b in a.basins] == pytest.approx([0.575, 0.65, 0.875])
    assert a.basins[2].open_ended and not a.basins[1].open_ended
    assert a.sensitivity == pytest.approx((0.35 + 0 + 0.1 + 1.5) / 4)
    assert a.sensitivity_normalised == pytest.approx(0.4875 / 1.5)
    assert a.divergence_lr == 1.0 and not a.all_diverged
    v = opt_report(main, "vradam")
    assert v.lr_star == 1e-1 and v.best is not None and v.best.mean == pytest.approx(0.4)
    assert basin_widths(v) == {
        0.05: (0.0, False, False),
        0.1: (1.0, False, False),
        0.25: (1.0, False, False),
    }
    assert v.sensitivity == pytest.approx(0.4)
    assert v.divergence_lr == 1.0  # one of two seeds: "at least half"


def test_paired_differences_against_baseline(main: Report) -> None:
    assert opt_report(main, "adamw").paired is None
    pc = opt_report(main, "vradam").paired
    assert pc is not None and pc.baseline == "adamw" and pc.overall is not None
    diffs = [0.1, 0.2, 0.1, -0.1, -0.2, -0.2, -1.4, 0.0]
    assert pc.overall.n_pairs == 8
    assert pc.overall.mean_diff == pytest.approx(np.mean(diffs))
    assert pc.overall.win_rate == pytest.approx(4.5 / 8)
    assert min(diffs) <= pc.overall.ci_lo < pc.overall.mean_diff < pc.overall.ci_hi <= max(diffs)
    at_1 = next(x for x in pc.per_lr if x.lr == 1.0).diff
    assert (at_1.n_pairs, at_1.mean_diff, at_1.win_rate) == (2, pytest.approx(-0.7), 0.75)
    # At own best: vradam @ 0.1 (0.3, 0.5) vs adamw @ 0.01 (0.4, 0.6).
    assert (pc.lr_best, pc.lr_best_baseline) == (1e-1, 1e-2)
    assert pc.at_best is not None and pc.at_best.mean_diff == pytest.approx(-0.1)
    assert (pc.at_best.ci_lo, pc.at_best.ci_hi) == pytest.approx((-0.1, -0.1))
    assert pc.at_best.win_rate == 1.0
    # Deterministic: the same trials give the same intervals.
    again = opt_report(analyze(main_trials(), make_spec()), "vradam").paired
    assert again is not None and again.overall == pc.overall


def test_test_metrics_are_those_of_the_selected_configuration(main: Report) -> None:
    a = opt_report(main, "adamw")
    assert [m.name for m in a.test_metrics] == ["test_loss"]
    assert a.test_metrics[0].estimate.mean == pytest.approx(0.55)  # (0.45 + 0.65) / 2
    assert a.test_metrics[0].estimate.n == 2


def test_aggregate_and_completeness(main: Report) -> None:
    rows = {r.optimizer: r for r in main.aggregate}
    a, v = rows["adamw"], rows["vradam"]
    assert a.basin_width_normalised == pytest.approx({"0.05": 0.0, "0.1": 1 / 3, "0.25": 2 / 3})
    assert v.basin_width_normalised == pytest.approx({"0.05": 0.0, "0.1": 1 / 3, "0.25": 1 / 3})
    assert v.sensitivity_normalised == pytest.approx(0.25)
    assert v.win_rate == pytest.approx(4.5 / 8) and v.tasks_better_at_best == 1
    assert a.win_rate is None and a.tasks_better_at_best is None
    assert not main.partial and all(o.complete for o in task_report(main).optimizers)
    assert main.n_trials == 16


def test_json_round_trip_and_schema(main: Report) -> None:
    assert Report.model_validate_json(render(main, "json")) == main
    schema = report_json_schema()
    assert {"tasks", "aggregate", "disclosures", "partial"} <= set(schema["properties"])


# ---------------------------------------------------------------- edge cases
def test_every_run_diverged() -> None:
    trials = [run("adamw", lr, s, 0.5 + lr) for lr in (0.01, 0.1) for s in (0, 1)]
    trials += [run("vradam", lr, s, None) for lr in (0.01, 0.1) for s in (0, 1)]
    rep = analyze(trials, make_spec())
    v = opt_report(rep, "vradam")
    assert v.all_diverged and v.lr_star is None and v.best is None and v.basins == []
    assert v.sensitivity is None and v.sensitivity_normalised == 1.0
    assert v.divergence_lr == 0.01
    assert [p.estimate.mean for p in v.curve] == [2.0, 2.0]
    assert v.paired is not None and v.paired.at_best is None
    assert v.paired.overall is not None and v.paired.overall.win_rate == 0.0
    row = next(r for r in rep.aggregate if r.optimizer == "vradam")
    assert row.basin_width_normalised == {"0.05": 0.0, "0.1": 0.0, "0.25": 0.0}
    assert row.sensitivity_normalised == 1.0 and row.tasks_better_at_best == 0


def test_single_learning_rate() -> None:
    trials = [run(o, 0.01, s, v) for o, v in (("adamw", 0.5), ("vradam", 0.4)) for s in (0, 1)]
    rep = analyze(trials, make_spec(sampler={"name": "grid", "points": {"lr": 1}}))
    a = opt_report(rep, "adamw")
    assert a.lr_star == 0.01 and a.sensitivity == 0.0 and a.divergence_lr is None
    assert all(b.width == 0.0 and b.open_low and b.open_high for b in a.basins)
    row = next(r for r in rep.aggregate if r.optimizer == "adamw")
    assert row.basin_width_normalised == {"0.05": None, "0.1": None, "0.25": None}


def test_ties_pick_the_smallest_lr_and_count_half() -> None:
    trials = [
        run("adamw", 1e-3, 0, 0.25),
        run("adamw", 1e-3, 1, 0.75),
        run("adamw", 1e-2, 0, 0.5),
        run("adamw", 1e-2, 1, 0.5),
        run("adamw", 1e-1, 0, 1.0),
        run("adamw", 1e-1, 1, 1.0),
    ]
    trials += [run("vradam", t.hparams["lr"], t.seed, t.metrics["val_loss"]) for t in trials]
    rep = analyze(trials, make_spec(sampler={"name": "grid", "points": {"lr": 3}}))
    a = opt_report(rep, "adamw")
    assert a.lr_star == 1e-3  # 1e-3 and 1e-2 tie at 0.5
    assert basin_widths(a)[0.05] == (1.0, True, False)  # the tied neighbour is in the basin
    pc = opt_report(rep, "vradam").paired
    assert pc is not None and pc.overall is not None
    assert pc.overall.win_rate == 0.5 and pc.overall.mean_diff == 0.0


def test_tied_configurations_pick_the_first_canonical_one() -> None:
    trials = [run("adamw", 0.01, s, 0.5, extra={"beta3": b}) for b in (2.0, 1.0) for s in (0, 1)]
    rep = analyze(trials, make_spec(opts=("adamw",)))
    p = opt_report(rep, "adamw").curve[0]
    assert p.config == {"beta3": 1.0} and p.n_configs == 2


def test_missing_seed_is_partial_and_pairs_only_shared_seeds() -> None:
    trials = [run("adamw", 0.01, s, 0.5 + 0.1 * s) for s in (0, 1)]  # seed 2 missing
    trials += [run("vradam", 0.01, s, 0.4) for s in (0, 1, 2)]
    rep = analyze(trials, make_spec(seeds=(0, 1, 2), sampler={"name": "grid"}))
    a, v = opt_report(rep, "adamw"), opt_report(rep, "vradam")
    assert rep.partial and not a.complete and v.complete
    assert a.curve[0].seeds == [0, 1] and a.curve[0].estimate.n == 2
    assert v.paired is not None and v.paired.overall is not None
    assert v.paired.overall.n_pairs == 2
    assert v.paired.overall.mean_diff == pytest.approx(((0.4 - 0.5) + (0.4 - 0.6)) / 2)


def test_best_lr_at_the_grid_edge_gives_an_open_ended_basin() -> None:
    vals = {1e-4: 0.3, 1e-3: 0.32, 1e-2: 0.9, 1e-1: 1.5}
    trials = [run("adamw", lr, s, v) for lr, v in vals.items() for s in (0, 1)]
    rep = analyze(trials, make_spec(opts=("adamw",)))
    a = opt_report(rep, "adamw")
    assert a.lr_star == 1e-4
    # ℓ* = 0.3, ℓ0 - ℓ* = 1.7: δ=0.05 -> 0.385 keeps 1e-3; δ=0.25 -> 0.725 the same
    assert basin_widths(a) == {d: (1.0, True, False) for d in (0.05, 0.1, 0.25)}
    assert "≥1.00" in render(rep, "md")


def test_maximize_direction() -> None:
    grid = {
        "adamw": {1e-3: (0.6, 0.8), 1e-2: (0.8, 0.9), 1e-1: (None, None)},
        "vradam": {1e-3: (0.7, 0.9), 1e-2: (0.9, 0.9), 1e-1: (0.5, None)},
    }
    trials = [
        run(o, lr, s, v, metric="val_acc", init=0.1, test=None if v is None else v - 0.05)
        for o, g in grid.items()
        for lr, vs in g.items()
        for s, v in enumerate(vs)
    ]
    rep = analyze(trials, make_spec(metric="val_acc", direction="maximize"))
    t = task_report(rep)
    assert (t.l0, t.direction) == (pytest.approx(0.1), "maximize")
    a = opt_report(rep, "adamw")
    assert a.lr_star == 1e-2 and a.best is not None and a.best.mean == pytest.approx(0.85)
    assert a.best.lo is not None and a.best.hi is not None and a.best.lo < 0.85 < a.best.hi
    assert a.curve[2].estimate.mean == pytest.approx(0.1)  # diverged runs count as ℓ0
    assert [b.threshold for b in a.basins] == pytest.approx([0.8125, 0.775, 0.6625])
    assert basin_widths(a) == {
        0.05: (0.0, False, False),
        0.1: (0.0, False, False),
        0.25: (1.0, True, False),
    }
    assert a.sensitivity == pytest.approx(0.3) and a.sensitivity_normalised == pytest.approx(0.4)
    assert a.divergence_lr == 1e-1
    assert a.test_metrics[0].name == "test_acc"
    assert a.test_metrics[0].estimate.mean == pytest.approx(0.8)
    pc = opt_report(rep, "vradam").paired
    assert pc is not None and pc.overall is not None and pc.at_best is not None
    assert pc.overall.mean_diff == pytest.approx(0.7 / 6)  # positive = better here
    assert pc.overall.win_rate == pytest.approx(5 / 6)
    assert pc.overall.ci_lo <= pc.overall.mean_diff <= pc.overall.ci_hi
    assert pc.at_best.mean_diff == pytest.approx(0.05) and pc.at_best.win_rate == 0.75
    assert next(r for r in rep.aggregate if r.optimizer == "vradam").tasks_better_at_best == 1


def test_l0_is_the_task_mean_of_initial_metrics_and_falls_back() -> None:
    trials = [run("adamw", 0.01, 0, 0.5, init=2.0), run("adamw", 0.1, 1, None, init=3.0)]
    a = opt_report(analyze(trials, make_spec(opts=("adamw",))), "adamw")
    assert a.curve[1].values == [2.5]  # ℓ0 = mean(2.0, 3.0), not the run's own 3.0
    trials = [
        run("adamw", 0.01, 0, 0.5, init=None),
        run("adamw", 0.1, 0, 0.9, init=None),
        run("adamw", 1.0, 0, None, init=None),
    ]
    rep = analyze(trials, make_spec(opts=("adamw",), seeds=(0,)))
    assert (task_report(rep).l0, task_report(rep).l0_source) == (0.9, "worst_observed")
    assert opt_report(rep, "adamw").curve[2].values == [0.9]


def test_pruned_failed_nonfinite_and_planned_counts() -> None:
    trials = [
        run("adamw", 0.01, 0, 0.5),
        run("adamw", 0.01, 1, 0.7, outcome="pruned"),
        run("adamw", 0.1, 0, None, outcome="failed"),
        run("adamw", 0.1, 1, float("nan")),
    ]
    spec = make_spec(opts=("adamw",), pruning={"name": "median", "n_startup_trials": 5})
    rep = analyze(trials, spec)
    a = opt_report(rep, "adamw")
    assert a.outcomes == {"complete": 2, "pruned": 1, "failed": 1}
    assert a.curve[0].seeds == [0] and a.curve[0].n_pruned == 1
    assert a.curve[1].diverged_seeds == [1] and a.curve[1].n_failed == 1  # NaN = diverged
    assert rep.partial and not a.complete
    d = rep.disclosures
    assert d.pruning == "median" and any("Pruning (median)" in n for n in d.notes)
    assert any("non-finite" in n for n in d.notes) and any("failed" in n for n in d.notes)
    full = [run("adamw", 0.01, s, 0.5) for s in (0, 1)]
    assert not analyze(full, make_spec(opts=("adamw",), sampler={})).partial
    assert analyze(full, make_spec(opts=("adamw",), sampler={}), partial=True).partial
    planned = {("t", "adamw"): 4}
    assert analyze(full, make_spec(opts=("adamw",), sampler={}), planned=planned).partial


def test_extra_search_dimensions_pick_the_best_configuration_per_lr() -> None:
    trials = [run("adamw", lr, s, 0.5) for lr in (0.01, 0.1) for s in (0, 1)]
    for beta3, v in ((0.5, 0.45), (1.0, 0.35)):
        trials += [run("vradam", 0.01, s, v, extra={"beta3": beta3}) for s in (0, 1)]
    for beta3, v in ((0.5, 0.30), (1.0, 0.60)):
        trials += [run("vradam", 0.1, s, v, extra={"beta3": beta3}) for s in (0, 1)]
    spec = make_spec(sampler={"name": "grid", "points": {"lr": 2}})
    spec["optimizers"][1]["search_space"] = {"beta3": {"type": "categorical", "choices": [0.5, 1]}}
    spec["optimizers"][1]["fixed"] = {"alpha1": 10.0}
    rep = analyze(trials, spec)
    v = opt_report(rep, "vradam")
    assert [(p.config, p.estimate.mean, p.n_configs) for p in v.curve] == [
        ({"beta3": 1.0}, pytest.approx(0.35), 2),
        ({"beta3": 0.5}, pytest.approx(0.30), 2),
    ]
    assert rep.disclosures.extra_search_dimensions == {"vradam": ["beta3"]}
    assert rep.disclosures.fixed["vradam"] == {"alpha1": 10.0}
    assert any("Extra dimensions" in n for n in rep.disclosures.notes)
    assert any("Fixed hyperparameters differ" in n for n in rep.disclosures.notes)


def test_effective_learning_rate_per_epoch() -> None:
    trials = [
        run("vradam", 0.01, 0, 0.5, ratios=(0.9, 0.8)),
        run("vradam", 0.01, 1, 0.5, ratios=(0.7, 0.6)),
        run("vradam", 0.1, 0, None, ratios=(0.4,)),  # diverged after one epoch
        run("vradam", 0.1, 1, 0.9, ratios=(0.2, 0.1)),
        run("adamw", 0.01, 0, 0.5),
        run("adamw", 0.01, 1, 0.5),
    ]
    rep = analyze(trials, make_spec())
    curves = {c.lr: c for c in opt_report(rep, "vradam").effective_lr}
    assert curves[0.01].epochs == [1, 2] and curves[0.01].mean_ratio == pytest.approx([0.8, 0.7])
    assert curves[0.1].n == [2, 1] and curves[0.1].mean_ratio == pytest.approx([0.3, 0.1])
    assert opt_report(rep, "adamw").effective_lr == []


def test_missing_baseline_and_unplanned_cells() -> None:
    trials = [run("vradam", 0.01, s, 0.5) for s in (0, 1)]
    rep = analyze(trials, make_spec(), baseline="adamw")
    assert opt_report(rep, "vradam").paired is None
    assert any("baseline 'adamw' has no trials" in n for n in rep.disclosures.notes)
    a = opt_report(rep, "adamw")  # listed in the spec, nothing ran yet
    assert a.curve == [] and not a.complete and rep.partial and a.sensitivity_normalised is None


def test_lr_float_noise_still_pairs() -> None:
    trials = [run("adamw", 0.1, s, 0.5) for s in (0, 1)]
    trials += [run("vradam", 0.1 + 1e-17, s, 0.4) for s in (0, 1)]
    trials += [run("vradam", 0.30000000000000004, 0, 0.4)]
    pc = opt_report(analyze(trials, make_spec()), "vradam").paired
    assert pc is not None and pc.overall is not None and pc.overall.n_pairs == 2


def test_trials_without_a_usable_lr_are_left_out_with_a_note() -> None:
    bad_lr: object = "fast"
    trials = [run("adamw", 0.01, 0, 0.5), run("adamw", bad_lr, 1, 0.4), run("adamw", 0.0, 1, 0.4)]
    rep = analyze(trials, make_spec(opts=("adamw",)))
    assert [p.lr for p in opt_report(rep, "adamw").curve] == [0.01]
    assert any("2 trial(s) without a positive 'lr'" in n for n in rep.disclosures.notes)


def test_invalid_direction_is_a_spec_error() -> None:
    with pytest.raises(SpecError) as e:
        analyze([], make_spec(direction="up"))
    assert e.value.errors[0][0] == "objective.direction"


def test_unset_budget_is_disclosed_as_the_task_default() -> None:
    from workers.tasks.registry import TASKS

    spec = make_spec()
    spec["tasks"] = [{"name": "quadratic"}]
    trials = [dataclasses.replace(t, task="quadratic") for t in main_trials()]
    report = analyze(trials, spec)
    default = TASKS["quadratic"].default_budget
    assert report.disclosures.budgets["quadratic"]["epochs"] == default.epochs
    assert report.tasks[0].budget["epochs"] == default.epochs
