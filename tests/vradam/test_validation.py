"""Bad hyperparameters and unsupported gradients fail early and say what is wrong."""

import re
from typing import Any

import pytest
import torch

from vradam import VRAdam, vradam


def params() -> list[torch.Tensor]:
    return [torch.zeros(3, requires_grad=True)]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lr": -1e-3}, "lr"),
        ({"lr": torch.tensor([1e-3, 2e-3])}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"betas": (1.0, 0.999)}, "betas[0]"),
        ({"betas": (0.9, -0.1)}, "betas[1]"),
        ({"betas": (0.9,)}, "betas"),
        ({"eps": -1e-8}, "eps"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"beta3": -1.0}, "beta3"),
        ({"alpha1": -2.0}, "alpha1"),
        ({"power": 0.0}, "power"),
        ({"power": float("inf")}, "power"),
        ({"norm_scope": "layer"}, "norm_scope"),
        ({"penalize": "momentum"}, "penalize"),
    ],
)
def test_bad_hyperparameters_raise_value_error_naming_them(
    kwargs: dict[str, Any], name: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(f"Invalid {name} value")) as info:
        VRAdam(params(), **kwargs)
    value = next(iter(kwargs.values()))
    if not isinstance(value, torch.Tensor) and name != "betas":
        shown = value if not isinstance(value, tuple) else value[int(name[-2])]
        assert repr(shown) in str(info.value)


def test_group_overrides_are_validated_too() -> None:
    with pytest.raises(ValueError, match=r"Invalid beta3 value: -0\.5"):
        VRAdam([{"params": params()}, {"params": params(), "beta3": -0.5}])
    opt = VRAdam(params())
    with pytest.raises(ValueError, match=r"Invalid lr value: -1"):
        opt.add_param_group({"params": params(), "lr": -1})
    assert len(opt.param_groups) == 1


def test_global_groups_must_agree_on_how_v_is_defined() -> None:
    with pytest.raises(ValueError, match="norm_scope='global'"):
        VRAdam([{"params": params()}, {"params": params(), "power": 3.0}])
    with pytest.raises(ValueError, match="norm_scope='global'"):
        VRAdam([{"params": params()}, {"params": params(), "penalize": "gradient"}])
    # Per-group scope may mix them.
    VRAdam([{"params": params()}, {"params": params(), "power": 3.0}], norm_scope="group")


def test_defaults_are_documented_values() -> None:
    group = VRAdam(params()).param_groups[0]
    assert group["lr"] == 1e-3 and group["betas"] == (0.9, 0.999) and group["eps"] == 1e-8
    assert group["weight_decay"] == 1e-2
    assert (group["beta3"], group["alpha1"], group["power"]) == (1.0, 10.0, 2.0)
    assert (group["norm_scope"], group["penalize"]) == ("global", "velocity")
    assert torch.equal(group["effective_lr"], torch.tensor(1e-3))


@pytest.mark.parametrize("foreach", [False, True])
def test_sparse_gradients_are_rejected_naming_the_parameter(foreach: bool) -> None:
    embedding = torch.nn.Embedding(10, 3, sparse=True)
    opt = VRAdam(embedding.named_parameters(), foreach=foreach)
    embedding(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match=r"sparse gradients: parameter 'weight'"):
        opt.step()


@pytest.mark.parametrize("foreach", [False, True])
def test_complex_parameters_are_rejected_naming_the_parameter(foreach: bool) -> None:
    real = torch.zeros(2, requires_grad=True)
    z = torch.zeros(2, dtype=torch.complex64, requires_grad=True)
    opt = VRAdam([real, z], foreach=foreach)
    real.grad = torch.ones(2)
    z.grad = torch.ones(2, dtype=torch.complex64)
    with pytest.raises(
        RuntimeError, match=r"complex parameters: .*\['params'\]\[1\] \(shape \(2,\)\)"
    ):
        opt.step()
    assert len(opt.state) in (0, 1) and float(real.detach().abs().sum()) == 0.0


def test_functional_rejects_bad_input() -> None:
    p = torch.zeros(2)
    common = {
        "beta1": 0.9,
        "beta2": 0.999,
        "beta3": 1.0,
        "alpha1": 10.0,
        "lr": 1e-3,
        "weight_decay": 0.0,
        "eps": 1e-8,
        "maximize": False,
    }
    state = ([torch.zeros(2)], [torch.zeros(2)], [torch.tensor(0.0)])
    with pytest.raises(ValueError, match="penalize"):
        vradam([p], [torch.ones(2)], *state, penalize="both", **common)
    with pytest.raises(ValueError, match="differ in length"):
        vradam([p, p], [torch.ones(2)], *state, **common)
    with pytest.raises(RuntimeError, match="complex"):
        vradam([p], [torch.ones(2, dtype=torch.complex64)], *state, **common)
