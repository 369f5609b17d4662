"""Grid expansion, trial keys, seeded samplers and pruners."""

from __future__ import annotations

import optuna
import pytest

from studies.sampling import (
    build_pruner,
    build_sampler,
    distributions,
    expand_grid,
    grid_values,
    trial_key,
)
from studies.spec import ParamSpec, PruningSpec, SamplerSpec

LR = ParamSpec(type="float", low=1e-4, high=1.0, log=True)


def test_log_grid_is_log_spaced_with_exact_ends() -> None:
    assert grid_values(LR, 5) == [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    assert grid_values(ParamSpec(type="float", low=1e-5, high=10.0, log=True), 13)[
        6
    ] == pytest.approx(10**-2)


def test_linear_int_categorical_and_single_point_grids() -> None:
    assert grid_values(ParamSpec(type="float", low=0.0, high=1.0), 3) == [0.0, 0.5, 1.0]
    assert grid_values(ParamSpec(type="int", low=1, high=4), 3) == [1, 2, 4]
    assert grid_values(ParamSpec(type="categorical", choices=["a", "b"]), None) == ["a", "b"]
    assert grid_values(LR, 1) == [1e-4]
    with pytest.raises(ValueError):
        grid_values(LR, None)


def test_expand_grid_is_the_product_in_a_stable_order() -> None:
    space = {"lr": LR, "beta3": ParamSpec(type="float", low=0.5, high=1.5)}
    grid = expand_grid(space, {"lr": 3, "beta3": 2})
    assert len(grid) == 6 and grid[0] == {"beta3": 0.5, "lr": 1e-4}
    assert {tuple(sorted(p.items())) for p in grid} == {
        (("beta3", b), ("lr", lr)) for b in (0.5, 1.5) for lr in (1e-4, 1e-2, 1.0)
    }


def test_trial_keys_are_canonical() -> None:
    a = trial_key({"lr": 0.1, "weight_decay": 0.0}, 0)
    assert a == trial_key({"weight_decay": 0.0, "lr": 0.1}, 0)
    assert a != trial_key({"lr": 0.1, "weight_decay": 0.0}, 1)
    assert a != trial_key({"lr": 0.1000001, "weight_decay": 0.0}, 0)
    assert len(a) == 32


def _first_values(sampler: optuna.samplers.BaseSampler, n: int = 6) -> list[float]:
    study = optuna.create_study(sampler=sampler)
    dists = distributions({"lr": LR, "beta3": ParamSpec(type="float", low=0.1, high=2.0)})
    out = []
    for _ in range(n):
        t = study.ask(dists)
        study.tell(t, t.params["lr"])
        out.append(t.params["lr"])
    return out


@pytest.mark.parametrize("name", ["random", "tpe", "qmc", "cmaes"])
def test_samplers_are_seeded(name: str) -> None:
    if name == "cmaes":
        pytest.importorskip("cmaes")
    a = _first_values(build_sampler(SamplerSpec(name=name, n_trials=6, seed=3), {}))
    b = _first_values(build_sampler(SamplerSpec(name=name, n_trials=6, seed=3), {}))
    c = _first_values(build_sampler(SamplerSpec(name=name, n_trials=6, seed=4), {}))
    assert a == b and a != c
    assert all(1e-4 <= v <= 1.0 for v in a)


def test_grid_sampler_covers_exactly_the_expanded_grid() -> None:
    space = {"lr": LR}
    sampler = build_sampler(SamplerSpec(name="grid", points={"lr": 5}), space)
    assert isinstance(sampler, optuna.samplers.GridSampler)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1.0, log=True), n_trials=20)
    assert sorted(t.params["lr"] for t in study.trials) == [1e-4, 1e-3, 1e-2, 1e-1, 1.0]


def test_pruners() -> None:
    assert isinstance(build_pruner(PruningSpec()), optuna.pruners.NopPruner)
    assert isinstance(build_pruner(PruningSpec(name="median")), optuna.pruners.MedianPruner)
    asha = build_pruner(PruningSpec(name="asha"))
    assert isinstance(asha, optuna.pruners.SuccessiveHalvingPruner)
