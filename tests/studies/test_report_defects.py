"""The defects measured on the demo report, each as a hand-computed fixture; confirmation runs,
the declared learning-rate range, multiplicity and the across-task aggregate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from studies.report import analyze, render, select_for_confirmation
from studies.report.model import OptimizerReport, Report
from tests.studies.report_fixtures import MAIN, confirm_trials, main_trials, make_spec, run

T4 = 2.7764451051977987  # t_{0.975, 4}


def opt_report(report: Report, opt: str, task: str = "t") -> OptimizerReport:
    t = next(t for t in report.tasks if t.task == task)
    return next(o for o in t.optimizers if o.optimizer == opt)


def test_three_seeds_give_labelled_ranges_not_95_percent_intervals() -> None:
    vals = {"adamw": (0.5, 0.6, 0.7), "vradam": (0.45, 0.5, 0.8)}
    trials = [run(o, 0.01, s, v) for o, vs in vals.items() for s, v in enumerate(vs)]
    rep = analyze(trials, make_spec(seeds=(0, 1, 2), sampler={"name": "grid"}))
    v = opt_report(rep, "vradam")
    assert v.curve[0].estimate.kind == "range"
    assert (v.curve[0].estimate.lo, v.curve[0].estimate.hi) == (0.45, 0.8)
    d = v.paired.at_best if v.paired else None
    assert d is not None and d.kind == "range" and (d.lo, d.hi) == pytest.approx((-0.1, 0.1))
    md = render(rep, "md")
    assert "range -0.1…+0.1" in md and "95%" not in md.split("## Task")[1].split("###")[0]


def test_grid_delta_resamples_seeds_not_points() -> None:
    # 5 seeds x 2 learning rates; one seed is bad at every η (a shared initialisation).
    d = {0.01: [-0.1, -0.1, -0.1, -0.1, 0.4], 0.1: [-0.2, -0.2, -0.2, -0.2, 0.3]}
    trials = []
    for lr, diffs in d.items():
        for s, x in enumerate(diffs):
            trials += [run("adamw", lr, s, 1.0), run("vradam", lr, s, 1.0 + x)]
    spec = make_spec(seeds=tuple(range(5)), sampler={"name": "grid", "points": {"lr": 2}})
    pc = opt_report(analyze(trials, spec), "vradam").paired
    assert pc is not None and pc.overall is not None
    per_seed = np.array([-0.15, -0.15, -0.15, -0.15, 0.35])
    assert pc.overall.values == pytest.approx(per_seed)
    half = T4 * per_seed.std(ddof=1) / math.sqrt(5)
    assert pc.overall.kind == "t95"
    assert (pc.overall.lo, pc.overall.hi) == pytest.approx((-0.05 - half, -0.05 + half))
    assert pc.overall.p_value == pytest.approx(stats.ttest_1samp(per_seed, 0).pvalue)


def test_bimodal_curve_band_stays_inside_zero_and_l0() -> None:
    vals = (0.1, 0.1, 0.1, None, None)  # two of five seeds diverged (ℓ0 = 2)
    trials = [run("adamw", 0.1, s, v) for s, v in enumerate(vals)]
    rep = analyze(trials, make_spec(opts=("adamw",), seeds=tuple(range(5)), sampler={}))
    e = opt_report(rep, "adamw").curve[0].estimate
    assert (e.lo, e.hi, e.kind, e.clipped) == (0.0, 2.0, "t95", True)
    assert e.median == pytest.approx(0.1) and e.mean == pytest.approx(0.86)


def test_a_run_worse_than_l0_is_capped_like_a_diverged_one() -> None:
    # Char LM case: ℓ0 = 5.355; VRAdam at lr 1 completes at 6.83, AdamW diverges there.
    trials = [run("adamw", 1.0, s, None, init=5.355) for s in (0, 1)]
    trials += [run("vradam", 1.0, s, 6.83, init=5.355) for s in (0, 1)]
    trials += [run(o, 0.01, s, 3.0, init=5.355) for o in ("adamw", "vradam") for s in (0, 1)]
    rep = analyze(trials, make_spec(sampler={"name": "grid", "points": {"lr": 2}}))
    v = opt_report(rep, "vradam")
    assert v.curve[1].values == pytest.approx([5.355, 5.355])
    assert v.curve[1].failed_seeds == [0, 1] and v.curve[1].diverged_seeds == []
    assert v.sensitivity == pytest.approx((5.355 - 3.0) / 2)
    at_1 = next(x for x in v.paired.per_lr if x.lr == 1.0).diff  # type: ignore[union-attr]
    assert (at_1.mean_diff, at_1.wins, at_1.ties, at_1.losses) == (0.0, 0, 2, 0)
    assert at_1.win_rate is None  # ties are not half wins
    assert v.paired.overall.win_rate is None  # type: ignore[union-attr]


def test_declared_range_drives_sensitivity_and_grid_delta() -> None:
    whole = analyze(main_trials(), make_spec())
    spec = make_spec(analysis={"lr_range": [1e-3, 1e-1]})
    rep = analyze(main_trials(), spec)
    a, v = opt_report(rep, "adamw"), opt_report(rep, "vradam")
    assert a.sensitivity == pytest.approx((0.35 + 0 + 0.1) / 3)
    assert v.sensitivity == pytest.approx((0.6 + 0.1 + 0) / 3)
    pc = v.paired
    assert pc is not None and pc.overall is not None and pc.n_lrs == 3
    # seed 0: (0.1 + 0.1 - 0.2)/3 = 0; seed 1: (0.2 - 0.1 - 0.2)/3
    assert pc.overall.values == pytest.approx([0.0, -0.1 / 3])
    assert opt_report(whole, "vradam").paired.overall.mean_diff == pytest.approx(-0.1875)  # type: ignore[union-attr]
    assert [p.in_range for p in v.curve] == [True, True, True, False]
    assert rep.tasks[0].lr_range == [1e-3, 1e-1]
    assert "| 1* |" in render(rep, "md")


# ---------------------------------------------------------------- confirmation runs
CONFIRM = (10, 11, 12, 13, 14)


@pytest.fixture(scope="module")
def confirmed() -> Report:
    spec = make_spec(confirmation={"seeds": list(CONFIRM)})
    return analyze(main_trials() + confirm_trials(CONFIRM), spec)


def test_best_and_test_metrics_come_from_confirmation_runs_only(confirmed: Report) -> None:
    a, v = opt_report(confirmed, "adamw"), opt_report(confirmed, "vradam")
    assert a.best_source == v.best_source == "confirmation"
    assert a.best is not None and (a.best.mean, a.best.lo, a.best.hi, a.best.n) == (
        pytest.approx(0.5),
        pytest.approx(0.5),
        pytest.approx(0.5),
        5,
    )
    half = T4 * float(np.std([0.40, 0.42, 0.44, 0.46, 0.48], ddof=1)) / math.sqrt(5)
    assert v.best is not None and v.best.kind == "t95"
    assert (v.best.mean, v.best.lo, v.best.hi) == pytest.approx((0.44, 0.44 - half, 0.44 + half))
    assert v.best_search is not None and v.best_search.mean == pytest.approx(0.4)
    assert v.test_metrics[0].source == "confirmation"
    assert v.test_metrics[0].estimate.mean == pytest.approx(0.49)
    assert v.confirmation_config == {"lr": 0.1}


def test_curves_never_mix_search_and_confirmation(confirmed: Report) -> None:
    a, v = opt_report(confirmed, "adamw"), opt_report(confirmed, "vradam")
    assert all(p.seeds == [0, 1] for p in a.curve + v.curve)
    assert [p.estimate.mean for p in a.curve] == pytest.approx([0.85, 0.5, 0.6, 2.0])
    assert v.lr_star == 1e-1 and v.stability is not None and v.stability.left_out == [0, 1]
    assert a.tunability[0].expected_best == pytest.approx(0.9875)


def test_headline_pairs_confirmation_seeds_and_is_holm_adjusted(confirmed: Report) -> None:
    h = opt_report(confirmed, "vradam").headline
    assert h is not None and h.source == "confirmation" and h.diff.seeds == list(CONFIRM)
    d = np.array([-0.1, -0.08, -0.06, -0.04, -0.02])
    assert h.diff.values == pytest.approx(d)
    assert h.diff.p_value == pytest.approx(stats.ttest_1samp(d, 0).pvalue)
    assert h.diff.p_holm == pytest.approx(h.diff.p_value)  # a family of one
    assert "confirmation seeds 10, 11, 12, 13, 14" in " ".join(m.text for m in confirmed.methods)


def test_holm_over_the_primary_family_of_two_tasks() -> None:
    trials = []
    for task, gap in (("t", 0.1), ("u", 0.02)):
        for s in range(5):
            noise = 0.01 * (s - 2) * (1 if task == "t" else 3)
            trials.append(run("adamw", 0.01, s, 1.0, task=task, test=1.0))
            trials.append(run("vradam", 0.01, s, 0.9, task=task, test=1.0 - gap + noise))
    spec = make_spec(tasks=("t", "u"), seeds=tuple(range(5)), sampler={})
    rep = analyze(trials, spec)
    hs = [opt_report(rep, "vradam", t).headline for t in ("t", "u")]
    p = [h.diff.p_value for h in hs if h]  # type: ignore[union-attr]
    assert len(p) == 2 and p[0] < p[1]
    assert [h.diff.p_holm for h in hs if h] == pytest.approx([2 * p[0], max(2 * p[0], p[1])])


def test_select_for_confirmation_uses_the_report_scoring() -> None:
    spec = make_spec(confirmation={"seeds": [10]})
    cell = [t for t in main_trials() if t.optimizer == "vradam"]
    assert select_for_confirmation(spec, cell) == {"lr": 1e-1}
    # Confirmation runs already recorded do not move the choice.
    cell += [run("vradam", 1e-3, 10, 0.01)]
    assert select_for_confirmation(spec, cell) == {"lr": 1e-1}
    # Capping decides: uncapped, lr 0.1 averages (0.1 + 9)/2 = 4.55 > 1.1; scored, it
    # averages (0.1 + 2)/2 = 1.05 < 1.1 and wins, as in the report.
    capped = [run("adamw", 0.1, 0, 0.1), run("adamw", 0.1, 1, 9.0)]
    capped += [run("adamw", 0.01, s, v) for s, v in ((0, 1.0), (1, 1.2))]
    assert select_for_confirmation(spec, capped) == {"lr": 0.1}
    rep = analyze(capped, make_spec(opts=("adamw",)))
    assert opt_report(rep, "adamw").lr_star == 0.1
    # Extra searched dimensions come back with lr; nothing usable gives None.
    extra = [run("vradam", 0.1, s, 0.3, extra={"beta3": 2.0}) for s in (0, 1)]
    extra += [run("vradam", 0.1, s, 0.4, extra={"beta3": 1.0}) for s in (0, 1)]
    assert select_for_confirmation(spec, extra) == {"lr": 0.1, "beta3": 2.0}
    assert select_for_confirmation(spec, [run("adamw", 0.1, 0, 0.5, outcome="failed")]) is None
    assert select_for_confirmation(spec, []) is None
    with pytest.raises(ValueError, match="one cell"):
        select_for_confirmation(spec, main_trials())


def test_select_for_confirmation_accepts_a_study_spec() -> None:
    from studies.spec import load_spec

    spec = load_spec(
        {
            "name": "c",
            "tasks": [{"name": "quadratic"}],
            "optimizers": [{"name": "adamw"}],
            "seeds": [0, 1],
            "confirmation": {"seeds": [5, 6]},
        }
    )
    cell = [run("adamw", lr, s, v) for lr, vs in MAIN["adamw"].items() for s, v in enumerate(vs)]
    assert select_for_confirmation(spec, cell) == {"lr": 1e-2}


# ---------------------------------------------------------------- across tasks
def test_across_tasks_iqm_only_from_three_tasks() -> None:
    def trials(tasks: tuple[str, ...]) -> list:
        out = [run("adamw", 0.01, s, 1.0, task=t) for t in tasks for s in (0, 1)]
        return out + [run("vradam", 0.01, s, 0.5, task=t) for t in tasks for s in (0, 1)]

    two = analyze(trials(("a", "b")), make_spec(tasks=("a", "b"), sampler={}))
    assert not two.across_tasks.shown and two.across_tasks.rows == []
    assert "none is shown" in render(two, "md")
    three = analyze(trials(("a", "b", "c")), make_spec(tasks=("a", "b", "c"), sampler={}))
    rows = {r.optimizer: r for r in three.across_tasks.rows}
    assert three.across_tasks.shown and rows["vradam"].n_runs == 6
    # normalised score (ℓ0 − score)/(ℓ0 − ℓ*_task): vradam 1, adamw (2 − 1)/1.5
    assert (rows["vradam"].iqm, rows["vradam"].lo, rows["vradam"].hi) == (1.0, 1.0, 1.0)
    assert rows["adamw"].iqm == pytest.approx(2 / 3)
    assert "IQM of normalised score" in render(three, "md")
