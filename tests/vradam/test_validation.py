"""Bad hyperparameters and unsupported gradients fail early and say what is wrong."""

import re
from fractions import Fraction
from typing import Any

import numpy as np
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
    assert len(opt.state) == 0 and float(real.detach().abs().sum()) == 0.0


@pytest.mark.parametrize("foreach", [False, True])
def test_unsupported_gradient_in_a_later_group_leaves_every_group_untouched(
    foreach: bool,
) -> None:
    dense = torch.randn(4, requires_grad=True)
    embedding = torch.nn.Embedding(10, 3, sparse=True)
    opt = VRAdam([{"params": [dense]}, {"params": embedding.parameters()}], foreach=foreach)
    dense.grad = torch.randn(4)
    opt.step()  # the embedding has no gradient yet: skipped
    state = {k: v.clone() for k, v in opt.state[dense].items()}
    before = (dense.detach().clone(), opt.param_groups[0]["effective_lr"].clone())

    dense.grad = torch.randn(4)
    embedding(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match=r"sparse gradients: .*\[1\]\['params'\]\[0\]"):
        opt.step()
    assert opt.state[dense].keys() == state.keys()
    assert all(torch.equal(opt.state[dense][k], v) for k, v in state.items())
    assert float(opt.state[dense]["step"]) == 1.0
    assert torch.equal(dense, before[0])
    assert torch.equal(opt.param_groups[0]["effective_lr"], before[1])
    assert embedding.weight not in opt.state

    # On a first step too: no state is created at all.
    fresh = VRAdam([{"params": [dense]}, {"params": embedding.parameters()}], foreach=foreach)
    with pytest.raises(RuntimeError, match="sparse gradients"):
        fresh.step()
    assert len(fresh.state) == 0 and torch.equal(dense, before[0])


def test_differentiable_foreach_fails_before_any_group_steps() -> None:
    first, second = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    opt = VRAdam([{"params": [first]}, {"params": [second], "foreach": True}], differentiable=True)
    first.grad, second.grad = torch.ones(2), torch.ones(2)
    with pytest.raises(RuntimeError, match="does not support differentiable=True"):
        opt.step()
    assert len(opt.state) == 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lr": "1e-3"}, "lr"),
        ({"lr": True}, "lr"),
        ({"lr": torch.tensor(1e-3j)}, "lr"),
        ({"betas": (0.9, None)}, "betas[1]"),
        ({"eps": np.float32(1e-8).tobytes()}, "eps"),
        ({"eps": 1e-8j}, "eps"),
        ({"weight_decay": [0.1]}, "weight_decay"),
        ({"beta3": False}, "beta3"),
        ({"alpha1": "10"}, "alpha1"),
        ({"power": None}, "power"),
    ],
)
def test_non_numbers_are_rejected_as_such(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"Invalid {name} value")) as info:
        VRAdam(params(), **kwargs)
    assert str(info.value).endswith("(must be a real number)")


NUMPY_AND_FRIENDS: dict[str, Any] = {
    "lr": np.float32(1e-2),
    "betas": (np.float32(0.9), np.float64(0.99)),
    "eps": np.float32(1e-8),
    "weight_decay": np.float16(0.1),
    "beta3": Fraction(1, 2),
    "alpha1": np.int64(3),
    "power": np.float32(2.0),
}


@pytest.mark.parametrize("foreach", [False, True])
def test_numpy_scalars_and_other_reals_are_accepted_and_stored_as_floats(foreach: bool) -> None:
    as_float = {
        k: tuple(float(b) for b in v) if k == "betas" else float(v)
        for k, v in NUMPY_AND_FRIENDS.items()
    }
    p, q, r = (torch.tensor([1.0, 0.0, -2.0], requires_grad=True) for _ in range(3))
    opt = VRAdam([p], foreach=foreach, **NUMPY_AND_FRIENDS)
    reference = VRAdam([q], foreach=foreach, **as_float)
    late = {"params": [r], "lr": np.float64(1e-3), "betas": [np.float32(0.5), 0]}
    opt.add_param_group({**late, "norm_scope": "group"})  # its own V: p's η is untouched
    for group in (opt.defaults, *opt.param_groups):
        for key in ("lr", "eps", "weight_decay", "beta3", "alpha1", "power"):
            assert type(group[key]) is float, key
        assert type(group["betas"]) is tuple and {type(b) for b in group["betas"]} == {float}
    for t in range(3):
        for x in (p, q, r):
            x.grad = torch.tensor([1.0, 0.0, 2.0]) * (t + 1)
        opt.step()
        reference.step()
    assert torch.equal(p, q) and torch.isfinite(r).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eps": np.float32(-1e-8)}, "Invalid eps value: np.float32(-1e-08) (must be >= 0)"),
        ({"lr": np.float64(-1.0)}, "Invalid lr value: np.float64(-1.0) (must be >= 0)"),
        ({"betas": (np.float32(1.0), 0.9)}, "(must be a float in [0, 1))"),
        ({"power": np.float32("inf")}, "(must be a finite number > 0)"),
    ],
)
def test_numpy_values_out_of_range_name_the_range(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        VRAdam(params(), **kwargs)


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
