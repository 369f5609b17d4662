"""Every robustness figure of the main fixture against hand-computed values (docs/report.md)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from labcore.errors import SpecError
from studies.report import Report, analyze, render, report_json_schema
from studies.report.model import OptimizerReport, TaskReport
from studies.report.stats import (
    binomial_ci,
    expected_best,
    holm,
    seed_interval,
    stratified_bootstrap_iqm,
)
from tests.studies.report_fixtures import main_trials, make_spec, run

T4 = 2.7764451051977987  # t_{0.975, 4}


def opt_report(report: Report, opt: str, task: str = "t") -> OptimizerReport:
    t = next(t for t in report.tasks if t.task == task)
    return next(o for o in t.optimizers if o.optimizer == opt)


def task_report(report: Report, task: str = "t") -> TaskReport:
    return next(t for t in report.tasks if t.task == task)


def widths(o: OptimizerReport) -> dict[float, tuple[float, float, float | None, bool]]:
    return {b.delta: (round(b.width, 6), b.width_min, b.width_max, b.reached) for b in o.basins}


# ---------------------------------------------------------------- statistics
def test_seed_interval_t_with_n_minus_one_df_from_five_seeds() -> None:
    iv = seed_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    half = T4 * math.sqrt(2.5) / math.sqrt(5)  # sd² = 2.5
    assert (iv.mean, iv.median, iv.n, iv.kind) == (3.0, 3.0, 5, "t95")
    assert (iv.lo, iv.hi) == pytest.approx((3 - half, 3 + half))
    assert not iv.clipped


def test_below_five_seeds_the_interval_is_the_range() -> None:
    iv = seed_interval([0.3, 0.9, 0.6])
    assert (iv.lo, iv.hi, iv.kind) == (0.3, 0.9, "range")
    assert seed_interval([2.0]).kind == "single" and seed_interval([2.0]).lo is None
    with pytest.raises(ValueError):
        seed_interval([])


def test_bimodal_t_interval_is_cut_to_the_possible_range() -> None:
    # Three seeds trained (0.1), two diverged (ℓ0 = 5): the raw t band leaves [0, 5].
    vals = [0.1, 0.1, 0.1, 5.0, 5.0]
    raw_half = T4 * float(np.std(vals, ddof=1)) / math.sqrt(5)
    assert np.mean(vals) - raw_half < 0 and np.mean(vals) + raw_half > 5
    iv = seed_interval(vals, bounds=(0.0, 5.0))
    assert (iv.lo, iv.hi, iv.clipped) == (0.0, 5.0, True)
    assert iv.median == 0.1


def test_exact_binomial_interval_by_hand() -> None:
    lo, hi = binomial_ci(1, 3)  # Clopper-Pearson: lo = 1 - 0.975^(1/3)
    assert lo == pytest.approx(1 - 0.975 ** (1 / 3)) and hi == pytest.approx(0.905700675949)
    assert binomial_ci(0, 3) == pytest.approx((0.0, 1 - 0.025 ** (1 / 3)))
    assert binomial_ci(3, 3) == pytest.approx((0.025 ** (1 / 3), 1.0))
    with pytest.raises(ValueError):
        binomial_ci(4, 3)


def test_holm_by_hand() -> None:
    assert holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_expected_best_after_k_draws_by_hand() -> None:
    # min of 2 draws from {1, 2, 3}: P(1) = 5/9, P(2) = 3/9, P(3) = 1/9
    assert expected_best([3.0, 1.0, 2.0], 2) == pytest.approx(14 / 9)
    assert expected_best([3.0, 1.0, 2.0], 1) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        expected_best([], 1)


def test_stratified_bootstrap_iqm_resamples_within_tasks() -> None:
    groups = [np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0, 7.0, 8.0])]
    point, lo, hi = stratified_bootstrap_iqm(groups, seed=1, resamples=2000)
    assert point == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert lo < point < hi and (lo, hi) == stratified_bootstrap_iqm(groups, 1, 2000)[1:]
    # Stratified: every resample keeps 3 values from the first task, so the IQM stays
    # well inside the pooled range.
    assert lo > 2.5 and hi < 6.5
    assert stratified_bootstrap_iqm([np.array([1.0, 1.0])] * 2, 0) == (1.0, 1.0, 1.0)


# ---------------------------------------------------------------- main study
@pytest.fixture(scope="module")
def main() -> Report:
    return analyze(main_trials(), make_spec(), baseline="adamw")


def test_curve_scores_ranges_and_failures(main: Report) -> None:
    a = opt_report(main, "adamw")
    assert [p.lr for p in a.curve] == [1e-3, 1e-2, 1e-1, 1.0]
    assert [p.estimate.mean for p in a.curve] == pytest.approx([0.85, 0.5, 0.6, 2.0])
    p = a.curve[1]
    assert (p.estimate.lo, p.estimate.hi, p.estimate.kind) == (0.4, 0.6, "range")
    assert a.curve[3].diverged_seeds == [0, 1] and a.curve[3].values == [2.0, 2.0]
    assert (a.curve[3].failed.k, a.curve[3].failed.n) == (2, 2)
    assert a.curve[3].failed.lo == pytest.approx(0.025**0.5) and a.curve[3].failed.hi == 1.0
    v = opt_report(main, "vradam")
    assert v.curve[3].failed_seeds == [1] and v.curve[3].values == [0.6, 2.0]
    assert task_report(main).l0 == 2.0 and task_report(main).l0_source == "initial_metrics"
    assert task_report(main).grid_step == pytest.approx(1.0)


def test_best_lr_and_leave_one_seed_out(main: Report) -> None:
    a, v = opt_report(main, "adamw"), opt_report(main, "vradam")
    assert a.lr_star == 1e-2 and a.best is not None and a.best.mean == pytest.approx(0.5)
    assert a.best_source == "search" and a.stability is not None and a.stability.stable
    # vradam without seed 0: 1e-2 and 1e-1 tie at 0.5, the smaller wins.
    assert v.lr_star == 1e-1 and v.stability is not None
    assert v.stability.lr_star == [1e-2, 1e-1] and v.stability.share_same == 0.5
    assert not v.stability.stable


def test_basins_share_one_threshold_and_interpolate(main: Report) -> None:
    assert task_report(main).l_star_task == pytest.approx(0.4)  # vradam's ℓ*
    a, v = opt_report(main, "adamw"), opt_report(main, "vradam")
    # thresholds 0.4 + δ·1.6: 0.48, 0.56, 0.8 for both optimizers
    assert [b.threshold for b in a.basins] == pytest.approx([0.48, 0.56, 0.8])
    assert [b.threshold for b in v.basins] == pytest.approx([0.48, 0.56, 0.8])
    # adamw δ=0.1: crossings -2 - 0.06/0.35 and -2 + 0.06/0.1 (log10 lr)
    assert widths(a) == {
        0.05: (0.0, 0.0, 0.0, False),  # 0.5 > 0.48: not reached
        0.1: (round(0.6 + 0.06 / 0.35, 6), 0.0, 2.0, True),
        0.25: (round(0.2 / 1.4 + 1 + 0.3 / 0.35, 6), 1.0, 3.0, True),
    }
    assert a.basins[1].lr_lo == pytest.approx(10 ** (-2 - 0.06 / 0.35))
    # vradam δ=0.05: only η* qualifies, yet the width is not 0: 0.8 + 0.08/0.9 decades
    assert widths(v)[0.05] == (round(0.8 + 0.08 / 0.9, 6), 0.0, 2.0, True)
    assert widths(v)[0.1] == (round(0.12 + 1 + 0.16 / 0.9, 6), 1.0, 3.0, True)
    assert "0.77 (0–2)" in render(main, "md") and "0 (not reached)" in render(main, "md")


def test_sensitivity_per_seed(main: Report) -> None:
    a, v = opt_report(main, "adamw"), opt_report(main, "vradam")
    assert a.sensitivity == pytest.approx((0.35 + 0 + 0.1 + 1.5) / 4)
    assert a.sensitivity_normalised == pytest.approx(0.4875 / 1.5)
    assert v.sensitivity == pytest.approx(0.4)
    s = v.sensitivity_seeds
    assert s is not None and s.kind == "range"
    assert (s.lo, s.hi) == pytest.approx((0.575 - 0.4, 1.025 - 0.4))
    assert a.divergence_lr == 1.0 and v.divergence_lr == 1.0


def test_paired_differences_over_seeds(main: Report) -> None:
    assert opt_report(main, "adamw").paired is None
    pc = opt_report(main, "vradam").paired
    assert pc is not None and pc.overall is not None and pc.n_lrs == 4
    # per seed, mean over η of vradam - adamw: seed 0 -> -0.35, seed 1 -> -0.025
    assert pc.overall.values == pytest.approx([-0.35, -0.025])
    assert pc.overall.mean_diff == pytest.approx(-0.1875)
    assert (pc.overall.lo, pc.overall.hi, pc.overall.kind) == pytest.approx(
        (-0.35, -0.025, "range")
    )
    # (η, seed) diffs 0.1 0.2 | 0.1 -0.1 | -0.2 -0.2 | -1.4 0.0: 4 wins, 1 tie, 3 losses
    assert (pc.overall.wins, pc.overall.ties, pc.overall.losses) == (4, 1, 3)
    assert pc.overall.win_rate == pytest.approx(4 / 7)
    at_1 = next(x for x in pc.per_lr if x.lr == 1.0).diff
    assert (at_1.mean_diff, at_1.wins, at_1.ties) == (pytest.approx(-0.7), 1, 1)
    assert pc.at_best is not None and pc.at_best.values == pytest.approx([-0.1, -0.1])


def test_headline_is_the_test_delta_at_each_own_best(main: Report) -> None:
    h = opt_report(main, "vradam").headline
    assert h is not None and (h.metric, h.source, h.lr, h.lr_baseline) == (
        "test_loss",
        "search",
        1e-1,
        1e-2,
    )
    assert h.diff.values == pytest.approx([-0.1, -0.1])  # (0.35, 0.55) - (0.45, 0.65)
    assert h.diff.p_value is None  # below 5 seeds: no test
    assert opt_report(main, "adamw").test_metrics[0].estimate.mean == pytest.approx(0.55)


def test_tunability_from_stored_runs(main: Report) -> None:
    a = opt_report(main, "adamw")
    scores = [0.8, 0.9, 0.4, 0.6, 0.5, 0.7, 2.0, 2.0]
    assert [t.k for t in a.tunability] == [1, 2, 4]
    assert a.tunability[0].expected_best == pytest.approx(np.mean(scores))
    assert a.tunability[2].expected_best == pytest.approx(expected_best(scores, 4))


def test_methods_section_and_completeness(main: Report) -> None:
    topics = [m.topic for m in main.methods]
    for want in (
        "Seeds",
        "Resampling design",
        "Scoring rule",
        "Divergence rule",
        "Task t",
        "Schedules",
        "Fixed settings",
        "Compute time",
        "Devices",
        "Primary and descriptive",
        "Multiplicity",
    ):
        assert want in topics
    text = " ".join(m.text for m in main.methods)
    assert "with 2 seeds (< 5)" in text and "Holm" in text and "10 × its initial loss" in text
    md = render(main, "md")
    assert "## Methods" in md and "## Legend" in md and "### Headline (primary)" in md
    assert not main.partial and main.n_trials == 16
    assert not main.across_tasks.shown and "at least 3" in main.across_tasks.reason


def test_methods_say_which_devices_each_cell_used() -> None:
    trials = [
        run("adamw", 0.1, 0, 0.5, device="cuda"),
        run("adamw", 0.1, 1, 0.6, device="cuda"),
        run("vradam", 0.1, 0, 0.4, device="cuda"),
        run("vradam", 0.1, 1, 0.45, device="cpu"),
    ]
    report = analyze(trials, make_spec(), baseline="adamw")
    line = next(m.text for m in report.methods if m.topic == "Devices")
    assert "t/adamw: cuda ×2" in line and "t/vradam: cpu ×1, cuda ×1" in line
    assert "mixed devices" in line
    same = analyze(trials[:2], make_spec(opts=("adamw",)), baseline="adamw")
    line = next(m.text for m in same.methods if m.topic == "Devices")
    assert line == "t/adamw: cuda ×2."
    assert "**Devices**: t/adamw: cuda ×2." in render(same, "md")


def test_json_round_trip_and_schema(main: Report) -> None:
    assert Report.model_validate_json(render(main, "json")) == main
    schema = report_json_schema()
    assert {"tasks", "across_tasks", "methods", "disclosures"} <= set(schema["properties"])


# ---------------------------------------------------------------- edge cases
def test_every_run_failed_to_train() -> None:
    trials = [run("adamw", lr, s, 0.5 + lr) for lr in (0.01, 0.1) for s in (0, 1)]
    trials += [run("vradam", 0.01, s, None) for s in (0, 1)]
    trials += [run("vradam", 0.1, s, 2.5) for s in (0, 1)]  # completed, worse than ℓ0
    rep = analyze(trials, make_spec())
    v = opt_report(rep, "vradam")
    assert v.all_diverged and v.lr_star is None and v.best is None and v.basins == []
    assert v.sensitivity is None and v.sensitivity_normalised == 1.0
    assert [p.estimate.mean for p in v.curve] == [2.0, 2.0]
    assert v.curve[1].failed_seeds == [0, 1] and v.curve[1].diverged_seeds == []
    assert v.paired is not None and v.paired.at_best is None and v.headline is None
    assert v.paired.overall is not None and v.paired.overall.win_rate == 0.0


def test_single_learning_rate() -> None:
    trials = [run(o, 0.01, s, v) for o, v in (("adamw", 0.5), ("vradam", 0.4)) for s in (0, 1)]
    rep = analyze(trials, make_spec(sampler={"name": "grid", "points": {"lr": 1}}))
    a = opt_report(rep, "adamw")
    assert a.lr_star == 0.01 and a.sensitivity == 0.0 and a.divergence_lr is None
    assert all(b.width == 0.0 for b in a.basins)  # not reached: vradam set ℓ*_task
    v = opt_report(rep, "vradam")
    assert all(b.width == 0.0 and b.open_low and b.open_high for b in v.basins)


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
    assert v.paired.overall.n == 2 and v.paired.overall.seeds == [0, 1]
    assert v.paired.overall.mean_diff == pytest.approx(((0.4 - 0.5) + (0.4 - 0.6)) / 2)


def test_maximize_direction() -> None:
    grid = {
        "adamw": {1e-3: (0.6, 0.8), 1e-2: (0.8, 0.9), 1e-1: (None, None)},
        "vradam": {1e-3: (0.7, 0.9), 1e-2: (0.9, 0.9), 1e-1: (0.5, 0.05)},
    }
    trials = [
        run(o, lr, s, v, metric="val_acc", init=0.1, test=None if v is None else v - 0.05)
        for o, g in grid.items()
        for lr, vs in g.items()
        for s, v in enumerate(vs)
    ]
    rep = analyze(trials, make_spec(metric="val_acc", direction="maximize"))
    t = task_report(rep)
    assert (t.l0, t.direction, t.l_star_task) == (pytest.approx(0.1), "maximize", 0.9)
    a = opt_report(rep, "adamw")
    assert a.lr_star == 1e-2 and a.best is not None and a.best.mean == pytest.approx(0.85)
    assert a.curve[2].estimate.mean == pytest.approx(0.1)  # diverged runs score ℓ0
    v = opt_report(rep, "vradam")
    assert v.curve[2].values == pytest.approx([0.5, 0.1])  # 0.05 < ℓ0: scored max(ℓ, ℓ0)
    assert v.curve[2].failed_seeds == [1]
    # thresholds 0.9 - δ·0.8
    assert [b.threshold for b in a.basins] == pytest.approx([0.86, 0.82, 0.7])
    assert a.test_metrics[0].name == "test_acc"
    assert a.test_metrics[0].estimate.mean == pytest.approx(0.8)
    h = v.headline
    assert h is not None and h.diff.mean_diff == pytest.approx(0.05)  # positive = better
    assert (h.diff.wins, h.diff.ties, h.diff.losses) == (1, 1, 0)  # 0.85-0.75, 0.85-0.85


def test_l0_is_the_mean_over_seeds_and_falls_back() -> None:
    trials = [
        run("adamw", 0.01, 0, 0.5, init=2.0),
        run("adamw", 0.1, 0, 0.6, init=2.0),
        run("adamw", 0.1, 1, None, init=3.0),
    ]
    a = opt_report(analyze(trials, make_spec(opts=("adamw",))), "adamw")
    assert a.curve[1].values == [0.6, 2.5]  # mean over seeds (2, 3), not over trials
    trials = [
        run("adamw", 0.01, 0, 0.5, init=None),
        run("adamw", 0.1, 0, 0.9, init=None),
        run("adamw", 1.0, 0, None, init=None),
    ]
    rep = analyze(trials, make_spec(opts=("adamw",), seeds=(0,)))
    assert (task_report(rep).l0, task_report(rep).l0_source) == (0.9, "worst_observed")


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
    full = [run("adamw", 0.01, s, 0.5) for s in (0, 1)]
    assert not analyze(full, make_spec(opts=("adamw",), sampler={})).partial
    planned = {("t", "adamw"): 4}
    assert analyze(full, make_spec(opts=("adamw",), sampler={}), planned=planned).partial


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


def test_missing_baseline_and_unusable_lrs() -> None:
    trials = [run("vradam", 0.01, s, 0.5) for s in (0, 1)]
    trials += [run("vradam", "fast", 1, 0.4), run("vradam", 0.0, 1, 0.4)]
    rep = analyze(trials, make_spec(), baseline="adamw")
    assert opt_report(rep, "vradam").paired is None
    assert any("baseline 'adamw' has no trials" in n for n in rep.disclosures.notes)
    assert any("2 trial(s) without a positive 'lr'" in n for n in rep.disclosures.notes)
    assert opt_report(rep, "adamw").curve == [] and rep.partial


def test_invalid_direction_is_a_spec_error() -> None:
    with pytest.raises(SpecError) as e:
        analyze([], make_spec(direction="up"))
    assert e.value.errors[0][0] == "objective.direction"


def test_unset_budget_is_the_task_default_and_methods_show_batch_size() -> None:
    from workers.tasks.registry import TASKS

    spec = make_spec()
    spec["tasks"] = [{"name": "quadratic"}]
    trials = [dataclasses.replace(t, task="quadratic", wall_time_s=1.5) for t in main_trials()]
    report = analyze(trials, spec)
    default = TASKS["quadratic"].default_budget
    assert report.tasks[0].budget["epochs"] == default.epochs
    task_line = next(m.text for m in report.methods if m.topic == "Task quadratic")
    assert "batch_size=1" in task_line and "compute: 24 s" in task_line
    assert opt_report(report, "adamw", "quadratic").compute_s == pytest.approx(12.0)
