"""Study limits: every oversized field is refused with its path and the limit."""

from __future__ import annotations

from typing import Any

import pytest

from labcore.errors import SpecError
from studies.limits import INT32_MAX, Limits, check_limits, limit_errors
from studies.spec import load_spec


def spec(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "lim",
        "tasks": [{"name": "quadratic", "budget": {"epochs": 2}}],
        "optimizers": [{"name": "adamw"}, {"name": "vradam"}],
        "search_space": {"lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True}},
        "sampler": {"name": "grid", "points": {"lr": 3}},
        "seeds": [0, 1],
    }
    base.update(over)
    return base


def errors(data: dict[str, Any], limits: Limits | None = None) -> dict[str, str]:
    return dict(limit_errors(load_spec(data), limits or Limits()))


def test_a_normal_study_passes() -> None:
    check_limits(load_spec(spec()))
    check_limits(load_spec("studies/definitions/demo.yaml"))


def test_n_trials_names_field_and_limit() -> None:
    with pytest.raises(SpecError) as e:
        check_limits(load_spec(spec(sampler={"name": "random", "n_trials": 1_000_000_000})))
    assert e.value.errors == [
        ("sampler.n_trials", "1000000000 exceeds the limit of 10000 trials per study")
    ]


def test_grid_points_per_dimension_and_total() -> None:
    got = errors(spec(sampler={"name": "grid", "points": {"lr": 10_000_000}}))
    assert got == {
        "sampler.points.lr": "10000000 exceeds the limit of 1000 grid points per dimension"
    }
    two = spec(
        search_space={
            "lr": {"type": "float", "low": 1e-3, "high": 1.0},
            "weight_decay": {"type": "float", "low": 0.0, "high": 0.1},
        },
        sampler={"name": "grid", "points": {"lr": 1000, "weight_decay": 1000}},
    )
    assert errors(two) == {"sampler.points": "a grid of 1000000 points exceeds the limit of 10000"}


def test_planned_trials_over_cells_and_seeds() -> None:
    got = errors(spec(sampler={"name": "grid", "points": {"lr": 100}}, seeds=list(range(60))))
    assert "over the limit of 10000 trials per study" in got["sampler"]
    assert "12000 trials" in got["sampler"]  # 100 points x 60 seeds x 2 optimizers


def test_seeds_count_and_range() -> None:
    assert errors(spec(seeds=list(range(101)))) == {
        "seeds": "101 exceeds the limit of 100 seeds per study"
    }
    got = errors(spec(seeds=[0, INT32_MAX + 1, -1], sampler={"name": "grid", "points": {"lr": 2},
                                                              "seed": 2**40}))  # fmt: skip
    assert got["seeds.1"] == f"{INT32_MAX + 1} is outside the range 0..{INT32_MAX}"
    assert got["seeds.2"].startswith("-1 is outside")
    assert got["sampler.seed"].startswith(f"{2**40} is outside")


def test_budget_retries_and_concurrency() -> None:
    got = errors(
        spec(
            tasks=[{"name": "quadratic", "budget": {"epochs": 10**6, "steps_per_epoch": 10**9}}],
            max_retries=10**9,
            executor={"name": "local", "max_concurrent": 10**6},
        )
    )
    assert got == {
        "tasks.0.budget.epochs": "1000000 exceeds the limit of 10000 epochs",
        "tasks.0.budget.steps_per_epoch": "1000000000 exceeds the limit of 1000000 steps per epoch",
        "max_retries": "1000000000 exceeds the limit of 10 retries",
        "executor.max_concurrent": "1000000 exceeds the limit of 1024 concurrent trials",
    }


@pytest.mark.parametrize("dim", [1e9, "1e9", 10**9, -5, float("inf")])
def test_task_size_options(dim: Any) -> None:
    got = errors(spec(tasks=[{"name": "quadratic", "options": {"dim": dim}}]))
    assert set(got) == {"tasks.0.options.dim"}
    assert "outside the allowed range 0..100000" in got["tasks.0.options.dim"]


def test_definition_size() -> None:
    big = spec(description="x" * 300_000)
    assert "over the limit of 262144" in errors(big)[""]


def test_operator_limits_are_configurable() -> None:
    tight = Limits(trials_per_study=5, task_option_max={"quadratic": {"dim": 10}})
    got = errors(spec(tasks=[{"name": "quadratic", "options": {"dim": 11}}]), tight)
    assert got["tasks.0.options.dim"] == "11 is outside the allowed range 0..10"
    assert "over the limit of 5 trials per study" in got["sampler"]
    with pytest.raises(ValueError):
        Limits(seed_max=2**31)  # seeds are 32-bit columns
