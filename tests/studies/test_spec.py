"""Study definitions: parsing, field-path errors, registry validation, fairness disclosures."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pydantic
import pytest

from labcore.errors import SpecError
from studies.spec import StudySpec, load_spec, parse_spec

DEFINITIONS = sorted((Path(__file__).parents[2] / "studies" / "definitions").glob("*.yaml"))

BASE: dict[str, Any] = {
    "name": "t",
    "tasks": [{"name": "quadratic", "budget": {"epochs": 2}}],
    "optimizers": [
        {"name": "adamw", "fixed": {"weight_decay": 0.0}},
        {"name": "vradam", "fixed": {"beta3": 1.0, "alpha1": 10.0}},
    ],
    "search_space": {"lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True}},
    "sampler": {"name": "grid", "points": {"lr": 5}},
    "seeds": [0, 1],
}


def spec(**changes: Any) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    d.update(changes)
    return d


def errors_of(data: Any) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    return dict(info.value.errors)


def test_defaults_and_frozen() -> None:
    s = parse_spec(spec())
    assert s.objective.metric == "val_loss" and s.pruning.name == "none"
    assert s.executor.name == "local" and s.max_retries == 2 and s.divergence.loss_factor == 10
    assert s.space_for("vradam") == s.search_space
    with pytest.raises(pydantic.ValidationError):
        s.name = "other"  # type: ignore[misc]
    assert StudySpec.model_validate(s.to_dict()) == s  # JSON round trip


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_every_ready_made_definition_is_valid(path: Path) -> None:
    s = parse_spec(path)
    assert s.sampler.name == "grid" and len(s.seeds) >= 2
    assert {"adamw", "vradam"} <= {o.name for o in s.optimizers}
    assert s.search_space["lr"].log


def test_demo_definition_is_the_issue_s_demo() -> None:
    s = parse_spec(Path(__file__).parents[2] / "studies" / "definitions" / "demo.yaml")
    assert [t.name for t in s.tasks] == ["digits_cnn", "stdlib_char_lm"]
    assert [o.name for o in s.optimizers] == ["adamw", "vradam"]
    assert s.executor.name == "local" and 2 <= len(s.seeds) <= 3 and len(s.tasks) == 2


def test_quick_definition_is_small_and_beside_the_demo() -> None:
    s = parse_spec(Path(__file__).parents[2] / "studies" / "definitions" / "quick.yaml")
    assert s.name == "quick-lr-robustness" and s.executor.name == "local"
    assert [t.name for t in s.tasks] == ["quadratic", "digits_cnn"]
    n_trials = len(s.tasks) * len(s.optimizers) * s.sampler.points["lr"] * len(s.seeds)
    assert n_trials == 60  # about 30 s on 2 cores: `vradam-hpo run .../quick.yaml`
    assert all(t.budget.epochs <= 10 for t in s.tasks)


def test_executor_concurrency_is_omitted_by_default() -> None:
    s = parse_spec(spec())
    assert s.executor.max_concurrent is None  # local: 1; ray: what the cluster holds
    assert (
        parse_spec(spec(executor={"name": "ray", "max_concurrent": 3})).executor.max_concurrent == 3
    )
    assert "executor.max_concurrent" in errors_of(spec(executor={"max_concurrent": 0}))


def test_yaml_json_text_and_missing_file() -> None:
    text = json.dumps(spec())
    assert load_spec(text) == load_spec(spec())
    yaml_text = (
        "name: y\ntasks: [{name: quadratic}]\n"
        "optimizers: [{name: adamw, fixed: {weight_decay: 1e-4}}]\n"
    )
    loaded = load_spec(yaml_text)
    assert loaded.optimizers[0].fixed == {"weight_decay": 1e-4}  # YAML's "1e-4" string coerced
    with pytest.raises(SpecError, match="cannot read"):
        load_spec("/nonexistent/study.yaml")
    with pytest.raises(SpecError, match="mapping"):
        load_spec("- a\n- b\n")


def test_structural_errors_name_their_field_paths() -> None:
    errs = errors_of(
        spec(
            surprise=1,
            tasks=[{"name": "quadratic", "budget": {"epochs": 0}}],
            search_space={"lr": {"type": "float", "low": 1.0, "high": 0.1}},
            sampler={"name": "grid", "points": {"lr": 0}},
            seeds=[1, 1],
        )
    )
    assert "surprise" in errs and "Extra inputs" in errs["surprise"]
    assert "tasks.0.budget.epochs" in errs
    assert "must be < `high`" in errs["search_space.lr"]
    assert "sampler.points" in errs
    assert "unique" in errs["seeds"]


@pytest.mark.parametrize(
    ("dim", "message"),
    [
        ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "log-scaled"),
        ({"type": "categorical"}, "choices"),
        ({"type": "categorical", "choices": [1, 1]}, "duplicates"),
        ({"type": "float", "low": 0.1, "high": 1.0, "choices": [1]}, "not `choices`"),
        ({"type": "int", "low": 1.5, "high": 4}, "integer"),
    ],
)
def test_dimension_errors(dim: dict[str, Any], message: str) -> None:
    errs = errors_of(spec(search_space={"lr": dim}))
    assert message in errs["search_space.lr"]


def test_registry_errors_name_their_field_paths() -> None:
    errs = errors_of(
        spec(
            tasks=[{"name": "nope"}, {"name": "quadratic", "options": {"colour": 1}}],
            optimizers=[
                {"name": "adamw", "fixed": {"beta3": 1.0}},
                {"name": "vradam", "fixed": {"beta3": -1.0, "beta1": 1.5}},
                {"name": "notanoptimizer"},
            ],
        )
    )
    assert "tasks.0.name" in errs and "quadratic" in errs["tasks.0.name"]  # names the known ones
    assert "tasks.1.options.colour" in errs
    assert "has no hyperparameter 'beta3'" in errs["optimizers.0.fixed.beta3"]
    assert ">= 0" in errs["optimizers.1.fixed.beta3"]
    assert "optimizers.1.fixed.beta1" in errs
    assert "optimizers.2.name" in errs


def test_search_space_must_lie_inside_every_optimizer_s_valid_range() -> None:
    errs = errors_of(
        spec(
            search_space={
                "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
                "beta1": {"type": "float", "low": 0.5, "high": 1.0},  # beta1 < 1 required
            },
            sampler={"name": "grid", "points": {"lr": 3, "beta1": 2}},
        )
    )
    assert "outside" in errs["search_space.beta1"]
    errs = errors_of(
        spec(
            search_space={"beta3": {"type": "float", "low": 0.1, "high": 2.0}},
            sampler={"name": "grid", "points": {"beta3": 2}},
        )
    )
    assert "'adamw' has no hyperparameter 'beta3'" in errs["search_space.beta3"]


def test_metric_must_be_reported_by_every_task() -> None:
    errs = errors_of(spec(objective={"metric": "val_acc"}))
    assert "quadratic" in errs["objective.metric"] and "val_acc" in errs["objective.metric"]
    objective = {"metric": "val_acc", "direction": "maximize"}
    ok = parse_spec(spec(tasks=[{"name": "digits_cnn"}], objective=objective))
    assert ok.objective.direction == "maximize"


def test_objective_must_be_a_validation_metric() -> None:
    errs = errors_of(spec(objective={"metric": "test_loss"}))
    assert "validation metric" in errs["objective.metric"]  # selection never sees test data
    errs = errors_of(spec(tasks=[{"name": "digits_cnn"}], objective={"metric": "test_acc"}))
    assert "test_acc" in errs["objective.metric"]


def test_sampler_rules() -> None:
    assert "sampler.points.lr" in errors_of(spec(sampler={"name": "grid"}))
    assert "search_space" in errors_of(spec(search_space={}, sampler={"name": "grid"}))
    errs = errors_of(
        spec(sampler={"name": "grid", "points": {"lr": 3, "momentum": 2}, "n_trials": 4})
    )
    assert "sampler.points.momentum" in errs and "sampler.n_trials" in errs
    assert "sampler.n_trials" in errors_of(spec(sampler={"name": "tpe"}))
    assert "sampler.points" in errors_of(
        spec(sampler={"name": "random", "points": {"lr": 3}, "n_trials": 3})
    )
    assert "CMA-ES" in errors_of(spec(sampler={"name": "cmaes", "n_trials": 4}))["sampler.name"]
    cat = {
        "lr": BASE["search_space"]["lr"],
        "eps": {"type": "categorical", "choices": [1e-8, 1e-6]},
    }
    assert "search_space.eps" in errors_of(
        spec(search_space=cat, sampler={"name": "qmc", "n_trials": 4})
    )
    for name in ("random", "tpe", "qmc"):
        assert parse_spec(spec(sampler={"name": name, "n_trials": 4})).sampler.name == name


def test_per_optimizer_dimensions_are_allowed_and_disclosed() -> None:
    extra = {"beta3": {"type": "float", "low": 0.1, "high": 2.0}}
    s = parse_spec(
        spec(
            optimizers=[
                {"name": "adamw", "fixed": {"weight_decay": 0.0}},
                {"name": "vradam", "fixed": {"alpha1": 10.0}, "search_space": extra},
            ],
            sampler={"name": "grid", "points": {"lr": 3, "beta3": 2}},
            pruning={"name": "median"},
        )
    )
    assert s.extra_dimensions() == {"vradam": ["beta3"]}
    assert set(s.space_for("vradam")) == {"lr", "beta3"} and set(s.space_for("adamw")) == {"lr"}
    text = " ".join(s.disclosures())
    assert "vradam also searched beta3" in text and "pruning (median)" in text
    clash = errors_of(
        spec(optimizers=[{"name": "vradam", "fixed": {"beta3": 1.0}, "search_space": extra}])
    )
    assert "optimizers.0.search_space.beta3" in clash


def test_executor_rules() -> None:
    # which Ray cluster is the worker's setting: a study cannot choose it
    errs = errors_of(spec(executor={"name": "ray", "ray_address": "ray://x:10001"}))
    assert "executor.ray_address" in errs
    ok = parse_spec(
        spec(
            executor={
                "name": "ray",
                "resources_per_trial": {"cpu": 1, "gpu": 0.25},
                "max_concurrent": 4,
            }
        )
    )
    assert ok.executor.resources_per_trial.gpu == 0.25
    assert ok.executor.resources_per_trial.custom == {}


def test_custom_resources_per_trial() -> None:
    ok = parse_spec(
        spec(executor={"name": "ray", "resources_per_trial": {"custom": {"gpu_node": 0.5}}})
    )
    assert ok.executor.resources_per_trial.custom == {"gpu_node": 0.5}
    assert load_spec(ok.to_dict()) == ok
    path = "executor.resources_per_trial.custom"
    for bad in ({"CPU": 1}, {"gpu": 1}, {"node:10.0.0.1": 1}, {"": 1}, {"a b": 1}):
        assert path in errors_of(
            spec(executor={"name": "ray", "resources_per_trial": {"custom": bad}})
        )
    for amount in (0, -1, 1.5, float("inf")):
        errs = errors_of(
            spec(executor={"name": "ray", "resources_per_trial": {"custom": {"x": amount}}})
        )
        assert path in errs
    assert (
        "whole"
        in errors_of(spec(executor={"name": "ray", "resources_per_trial": {"custom": {"x": 2.5}}}))[
            path
        ]
    )
    assert parse_spec(
        spec(executor={"name": "ray", "resources_per_trial": {"custom": {"x": 2}}})
    ).executor.resources_per_trial.custom == {"x": 2.0}
    local = errors_of(spec(executor={"resources_per_trial": {"custom": {"gpu_node": 1}}}))
    assert "needs the `ray` executor" in " ".join(local.values())


def test_build_executor_passes_custom_resources_to_ray() -> None:
    from studies.executors import build_executor

    s = parse_spec(
        spec(executor={"name": "ray", "resources_per_trial": {"gpu": 0.5, "custom": {"n": 1}}})
    )
    ex = build_executor(s.executor, ray_address="10.0.0.1:6379")
    try:
        assert (ex.gpus_per_trial, ex.custom_resources, ex.address) == (
            0.5, {"n": 1.0}, "10.0.0.1:6379"
        )  # fmt: skip
    finally:
        ex.close()


def test_analysis_and_confirmation_default_off_and_keep_old_definitions_valid() -> None:
    s = parse_spec(spec())
    assert s.analysis.lr_range is None and s.confirmation is None
    assert s.to_dict()["analysis"] == {"lr_range": None} and s.to_dict()["confirmation"] is None
    both = parse_spec(spec(analysis={"lr_range": [1e-3, 0.1]}, confirmation={"seeds": [10, 11]}))
    assert both.analysis.lr_range == (1e-3, 0.1) and both.confirmation is not None
    assert both.confirmation.seeds == [10, 11]
    assert load_spec(both.to_dict()) == both  # round-trips through the stored dict


def test_analysis_and_confirmation_errors_name_their_field_paths() -> None:
    assert "disjoint" in errors_of(spec(confirmation={"seeds": [1, 7]}))["confirmation.seeds"]
    assert "unique" in errors_of(spec(confirmation={"seeds": [7, 7]}))["confirmation.seeds"]
    assert "confirmation.seeds" in errors_of(spec(confirmation={"seeds": []}))
    assert "confirmation.extra" in errors_of(spec(confirmation={"seeds": [5], "extra": 1}))
    assert "0 < lo < hi" in errors_of(spec(analysis={"lr_range": [0.1, 1e-3]}))["analysis.lr_range"]
    assert "analysis.lr_range" in errors_of(spec(analysis={"lr_range": [0.0, 1.0]}))


def test_one_optimizer_can_be_listed_twice_under_labels() -> None:
    twice = [
        {"name": "vradam", "fixed": {"beta3": 1.0}},
        {"name": "vradam", "label": "vradam-b10", "fixed": {"beta3": 10.0}},
    ]
    s = parse_spec(spec(optimizers=twice))
    assert [o.key for o in s.optimizers] == ["vradam", "vradam-b10"]
    assert s.optimizer("vradam-b10").fixed == {"beta3": 10.0}
    assert "beta3 is fixed to different values per optimizer (vradam=1.0, vradam-b10=10.0)" in (
        s.disclosures()
    )
    unlabelled = errors_of(spec(optimizers=[twice[0], {"name": "vradam"}]))
    assert (
        "listed twice" in unlabelled["optimizers.1.name"]
        and "label" in unlabelled["optimizers.1.name"]
    )
    clash = errors_of(spec(optimizers=[twice[1], {**twice[1], "fixed": {}}]))
    assert "listed twice" in clash["optimizers.1.label"]
    assert "optimizers.0.label" in errors_of(spec(optimizers=[{"name": "adamw", "label": "a/b"}]))


def test_a_schedule_needs_every_task_s_step_count() -> None:
    sched = {"name": "warmup_cosine", "warmup_fraction": 0.1}
    tasks = [
        {"name": "quadratic", "budget": {"epochs": 2, "steps_per_epoch": 5}},
        {"name": "digits_cnn", "budget": {"epochs": 2}},
    ]
    errs = errors_of(spec(tasks=tasks, schedule=sched))
    assert (
        list(errs) == ["tasks.1.budget.steps_per_epoch"]
        and "warmup_cosine" in errs["tasks.1.budget.steps_per_epoch"]
    )
    ok = parse_spec(spec(tasks=tasks[:1], schedule=sched))
    assert (
        ok.schedule.to_schedule() is not None and parse_spec(spec()).schedule.to_schedule() is None
    )
    assert "schedule.warmup_fraction" in errors_of(
        spec(tasks=tasks[:1], schedule={"name": "warmup_cosine", "warmup_fraction": 1.5})
    )
