"""Checks of a :class:`~studies.spec.StudySpec` against the registries and the samplers.

Collects every problem as ``(field_path, message)`` instead of stopping at the first, so
a user fixes a definition in one pass. Torch-free: the registries hold import strings.
"""

from __future__ import annotations

from typing import Any

from labcore.errors import NotFoundError
from studies.spec import OptimizerSpec, ParamSpec, StudySpec
from workers.optimizers.info import HParam, OptimizerInfo

Errors = list[tuple[str, str]]


def check_spec(spec: StudySpec) -> Errors:
    """Return every problem of ``spec`` (empty when it is valid)."""
    errors: Errors = []
    _check_objective(spec, errors)
    _check_tasks(spec, errors)
    infos = _check_optimizers(spec, errors)
    _check_shared_space(spec, infos, errors)
    _check_sampler(spec, errors)
    return errors


def _check_objective(spec: StudySpec, errors: Errors) -> None:
    metric = spec.objective.metric
    if metric.startswith("test_"):
        errors.append(
            (
                "objective.metric",
                f"{metric!r} is a test metric: select on a validation metric (val_*); "
                "test metrics are only reported",
            )
        )


def _check_tasks(spec: StudySpec, errors: Errors) -> None:
    from workers.tasks.registry import get_task_info

    seen: set[str] = set()
    for i, t in enumerate(spec.tasks):
        if t.name in seen:
            errors.append((f"tasks.{i}.name", f"task {t.name!r} is listed twice"))
        seen.add(t.name)
        try:
            info = get_task_info(t.name)
        except NotFoundError as e:
            errors.append((f"tasks.{i}.name", str(e)))
            continue
        if spec.objective.metric not in info.metrics:
            errors.append(
                (
                    "objective.metric",
                    f"task {t.name!r} does not report {spec.objective.metric!r}; "
                    f"it reports {list(info.metrics)}",
                )
            )
        budget = t.budget or info.default_budget
        if spec.schedule.name != "constant" and budget.steps_per_epoch is None:
            errors.append(
                (
                    f"tasks.{i}.budget.steps_per_epoch",
                    f"a {spec.schedule.name} schedule needs the total number of steps: "
                    "set steps_per_epoch",
                )
            )
        for opt in t.options:
            if opt not in info.options:
                known = sorted(info.options) or "none"
                errors.append(
                    (f"tasks.{i}.options.{opt}", f"unknown option of {t.name!r} (known: {known})")
                )


def _check_optimizers(spec: StudySpec, errors: Errors) -> dict[str, OptimizerInfo]:
    from workers.optimizers.registry import get_optimizer_info

    infos: dict[str, OptimizerInfo] = {}  # by arm (OptimizerSpec.key)
    for i, o in enumerate(spec.optimizers):
        if o.key in infos:
            field = "label" if o.label else "name"
            errors.append(
                (
                    f"optimizers.{i}.{field}",
                    f"optimizer {o.key!r} is listed twice (give each entry its own `label`)",
                )
            )
            continue
        try:
            info = get_optimizer_info(o.name)
        except NotFoundError as e:
            errors.append((f"optimizers.{i}.name", str(e)))
            continue
        except Exception as e:  # a user import string that does not import
            errors.append((f"optimizers.{i}.name", f"cannot load optimizer {o.name!r}: {e}"))
            continue
        infos[o.key] = info
        _check_one_optimizer(spec, i, o, info, errors)
    return infos


def _check_one_optimizer(
    spec: StudySpec, i: int, o: OptimizerSpec, info: OptimizerInfo, errors: Errors
) -> None:
    base = f"optimizers.{i}"
    for name, value in o.fixed.items():
        path = f"{base}.fixed.{name}"
        if name in spec.search_space:
            errors.append((path, f"{name!r} is also in the shared search_space"))
        _check_value(info, name, value, path, errors)
    for name, dim in o.search_space.items():
        path = f"{base}.search_space.{name}"
        if name in spec.search_space:
            errors.append((path, f"{name!r} is already in the shared search_space"))
        if name in o.fixed:
            errors.append((path, f"{name!r} is also fixed"))
        _check_dimension(info, name, dim, path, errors)


def _check_shared_space(spec: StudySpec, infos: dict[str, OptimizerInfo], errors: Errors) -> None:
    for name, dim in spec.search_space.items():
        for info in infos.values():
            _check_dimension(info, name, dim, f"search_space.{name}", errors)


def _check_value(info: OptimizerInfo, name: str, value: Any, path: str, errors: Errors) -> None:
    hp = _hparam(info, name, path, errors)
    if hp is not None:
        msg = hp.check(value)
        if msg:
            errors.append((path, f"{info.name}: {name} {msg}"))


def _check_dimension(
    info: OptimizerInfo, name: str, dim: ParamSpec, path: str, errors: Errors
) -> None:
    hp = _hparam(info, name, path, errors)
    if hp is None:
        return
    values = list(dim.choices or []) if dim.type == "categorical" else [dim.low, dim.high]
    if dim.type == "int":
        values = [int(v) for v in values if v is not None]
    for v in values:
        msg = hp.check(v)
        if msg:
            what = "a choice" if dim.type == "categorical" else "the range"
            errors.append((path, f"{what} lies outside {info.name}'s valid values: {name} {msg}"))
            return


def _hparam(info: OptimizerInfo, name: str, path: str, errors: Errors) -> HParam | None:
    if info.open_hparams:
        return None
    hp = info.hparam(name)
    if hp is None:
        known = ", ".join(h.name for h in info.hparams)
        errors.append((path, f"optimizer {info.name!r} has no hyperparameter {name!r} ({known})"))
    return hp


def _check_sampler(spec: StudySpec, errors: Errors) -> None:
    s = spec.sampler
    dims: dict[str, ParamSpec] = dict(spec.search_space)
    for o in spec.optimizers:
        dims.update(o.search_space)
    if s.name == "grid":
        if s.n_trials is not None:
            errors.append(("sampler.n_trials", "the grid sampler takes `points`, not n_trials"))
        if not dims:
            errors.append(("search_space", "a grid needs at least one search dimension"))
        for name, dim in dims.items():
            if dim.type == "categorical":
                if name in s.points and s.points[name] != len(dim.choices or ()):
                    errors.append(
                        (f"sampler.points.{name}", "a categorical grid takes every choice")
                    )
                continue
            if name not in s.points:
                errors.append((f"sampler.points.{name}", f"the grid needs points for {name!r}"))
            elif dim.type == "int" and s.points[name] > int(dim.high or 0) - int(dim.low or 0) + 1:
                errors.append(
                    (
                        f"sampler.points.{name}",
                        f"more points than integers in [{dim.low}, {dim.high}]",
                    )
                )
        for name in s.points:
            if name not in dims:
                errors.append((f"sampler.points.{name}", f"no search dimension {name!r}"))
        return
    if s.points:
        errors.append(("sampler.points", f"the {s.name} sampler takes n_trials, not points"))
    if s.n_trials is None:
        errors.append(("sampler.n_trials", f"the {s.name} sampler needs n_trials"))
    if not dims:
        errors.append(("search_space", f"the {s.name} sampler needs at least one dimension"))
    if s.name in ("cmaes", "qmc"):
        for name, dim in dims.items():
            if dim.type == "categorical":
                errors.append(
                    (f"search_space.{name}", f"the {s.name} sampler cannot search categoricals")
                )
    if s.name == "cmaes":
        for o in spec.optimizers:
            numeric = [n for n, d in spec.space_for(o.name).items() if d.type != "categorical"]
            if len(numeric) < 2:
                errors.append(
                    (
                        "sampler.name",
                        f"CMA-ES needs at least two numeric dimensions (optimizer {o.name!r} "
                        f"has {len(numeric)}); use tpe, random, qmc or grid",
                    )
                )
                break
