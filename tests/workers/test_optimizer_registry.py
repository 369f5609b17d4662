"""The optimizer registry: records, validation, construction, weight-decay groups."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from labcore.errors import NotFoundError, SpecError
from workers.optimizers.groups import param_groups
from workers.optimizers.info import OptimizerInfo
from workers.optimizers.registry import (
    OPTIMIZERS,
    build_optimizer,
    constructor_kwargs,
    get_optimizer_info,
    list_optimizers,
    resolve_hparams,
)

EXPECTED = {"vradam", "adamw", "adam", "sgd", "rmsprop", "radam", "nadam", "adagrad", "lion"}
NAMES = [o.name for o in list_optimizers()]


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(5, 4)
        self.fc = nn.Linear(4, 3)
        self.norm = nn.LayerNorm(3)
        self.log_z = nn.Parameter(torch.zeros(()))
        self.frozen = nn.Parameter(torch.ones(2, 2), requires_grad=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.norm(self.fc(self.emb(idx))).sum() + self.log_z


def test_registry_holds_exactly_the_contract_names() -> None:
    assert set(OPTIMIZERS) == EXPECTED
    assert list(OPTIMIZERS) == NAMES
    assert all(isinstance(o, OptimizerInfo) and o.name == k for k, o in OPTIMIZERS.items())


def test_registry_import_does_not_import_torch() -> None:
    code = (
        "import sys, workers.optimizers.registry as r\n"
        "r.list_optimizers(); r.get_optimizer_info('vradam'); r.get_optimizer_info('a.b:C')\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", NAMES)
def test_every_entry_declares_lr_and_valid_defaults(name: str) -> None:
    info = get_optimizer_info(name)
    assert info.hparam("lr") is not None and info.hparam("lr").log
    assert info.description
    for hp in info.hparams:
        assert hp.check(hp.default) is None, (hp.name, hp.default)
        assert hp.doc
    assert resolve_hparams(info, {}) == info.defaults()


@pytest.mark.parametrize("name", NAMES)
def test_every_entry_builds_with_defaults_and_two_groups(name: str) -> None:
    model = TinyNet()
    opt = build_optimizer(name, model, {"lr": 0.01, "weight_decay": 0.1})
    assert isinstance(opt, torch.optim.Optimizer)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert decay["lr"] == no_decay["lr"] == 0.01
    if "beta1" in {h.name for h in get_optimizer_info(name).hparams}:
        b2 = get_optimizer_info(name).hparam("beta2").default
        assert decay["betas"] == (0.9, b2)


def test_shared_names_map_to_constructor_arguments() -> None:
    info = get_optimizer_info("adamw")
    kwargs = constructor_kwargs(info, {"lr": 0.1, "beta1": 0.8, "beta2": 0.95, "weight_decay": 1})
    assert kwargs == {"lr": 0.1, "betas": (0.8, 0.95)}
    opt = build_optimizer("sgd", TinyNet(), {"lr": 0.1, "momentum": 0.5, "nesterov": False})
    assert opt.defaults["momentum"] == 0.5 and opt.defaults["nesterov"] is False
    opt = build_optimizer("rmsprop", TinyNet(), {"alpha": 0.9, "momentum": 0.2})
    assert opt.defaults["alpha"] == 0.9 and opt.defaults["momentum"] == 0.2
    opt = build_optimizer("nadam", TinyNet(), {"decoupled_weight_decay": True})
    assert opt.defaults["decoupled_weight_decay"] is True


@pytest.mark.parametrize(
    ("name", "hparams", "path"),
    [
        ("adamw", {"lr": -1.0}, "hparams.lr"),
        ("adamw", {"beta1": 1.0}, "hparams.beta1"),
        ("adamw", {"momentum": 0.9}, "hparams.momentum"),
        ("adamw", {"lr": float("nan")}, "hparams.lr"),
        ("adamw", {"lr": "big"}, "hparams.lr"),
        ("sgd", {"nesterov": "yes"}, "hparams.nesterov"),
        ("sgd", {"momentum": 0.0}, "hparams.nesterov"),
        ("vradam", {"norm_scope": "tensor"}, "hparams.norm_scope"),
        ("vradam", {"alpha1": -1}, "hparams.alpha1"),
        ("vradam", {"power": 0}, "hparams.power"),
    ],
)
def test_invalid_hparams_raise_spec_error_naming_the_field(
    name: str, hparams: dict, path: str
) -> None:
    with pytest.raises(SpecError) as info:
        resolve_hparams(get_optimizer_info(name), hparams)
    assert [p for p, _ in info.value.errors] == [path]


def test_spec_error_lists_every_problem() -> None:
    with pytest.raises(SpecError) as info:
        build_optimizer("adam", TinyNet(), {"lr": -1, "foo": 1})
    assert sorted(p for p, _ in info.value.errors) == ["hparams.foo", "hparams.lr"]


def test_unknown_optimizer_is_not_found_and_lists_names() -> None:
    with pytest.raises(NotFoundError, match="adamw"):
        get_optimizer_info("adamx")
    with pytest.raises(NotFoundError):
        get_optimizer_info("not an import:string")


def test_user_import_string_is_open_and_builds() -> None:
    info = get_optimizer_info("torch.optim:SGD")
    assert info.open_hparams and info.import_path == "torch.optim:SGD" and info.hparams == ()
    assert resolve_hparams(info, {"anything": 1}) == {"anything": 1}
    opt = build_optimizer("torch.optim:SGD", TinyNet(), {"lr": 0.1, "momentum": 0.9})
    assert type(opt) is torch.optim.SGD and opt.defaults["momentum"] == 0.9
    # no weight_decay given: the decayed group keeps the class default (AdamW: 0.01)
    opt = build_optimizer("torch.optim:AdamW", TinyNet(), {"beta2": 0.9})
    assert opt.param_groups[0]["weight_decay"] == 0.01 and opt.defaults["betas"] == (0.9, 0.9)


def test_user_import_string_errors() -> None:
    with pytest.raises(NotFoundError, match="no_such_module"):
        build_optimizer("no_such_module:Opt", TinyNet(), {})
    with pytest.raises(NotFoundError, match="Nope"):
        build_optimizer("torch.optim:Nope", TinyNet(), {})
    with pytest.raises(TypeError, match=r"not a torch\.optim\.Optimizer"):
        build_optimizer("torch.nn:Linear", TinyNet(), {})
    with pytest.raises(TypeError):
        build_optimizer("torch.optim:SGD", TinyNet(), {"lr": 0.1, "bogus": 1})


def test_param_groups_rule() -> None:
    model = TinyNet()
    decay, no_decay = param_groups(model, 0.5)
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in decay["params"]} == {"emb.weight", "fc.weight"}
    assert {names[id(p)] for p in no_decay["params"]} == {
        "fc.bias",
        "norm.weight",
        "norm.bias",
        "log_z",
    }
    assert decay["weight_decay"] == 0.5 and no_decay["weight_decay"] == 0.0
    groups = param_groups(model, 0.5, decay_embeddings=False)
    assert {names[id(p)] for p in groups[0]["params"]} == {"fc.weight"}
    # weight decay 0 keeps the same two groups; None leaves the decayed one to the class
    assert len(param_groups(model, 0.0)) == 2
    assert "weight_decay" not in param_groups(model, None)[0]


def test_param_groups_omits_empty_groups_and_dedups_tied_weights() -> None:
    lin = nn.Linear(3, 3, bias=False)
    tied = nn.Sequential(lin, nn.Linear(3, 3, bias=False))
    tied[1].weight = lin.weight
    groups = param_groups(tied, 0.1)
    assert len(groups) == 1 and len(groups[0]["params"]) == 1
    with pytest.raises(ValueError, match="no trainable parameter"):
        param_groups(nn.ReLU(), 0.1)


# Registry defaults that deliberately differ from the constructor's: SGD defaults to the
# paper's baseline (Nesterov, momentum 0.9) rather than torch's plain SGD.
DELIBERATE = {("sgd", "momentum"), ("sgd", "nesterov")}


@pytest.mark.parametrize("name", NAMES)
def test_registry_defaults_match_the_constructor(name: str) -> None:
    import importlib
    import inspect

    info = get_optimizer_info(name)
    module, _, attr = info.import_path.partition(":")
    params = inspect.signature(getattr(importlib.import_module(module), attr)).parameters
    for hp in info.hparams:
        if (name, hp.name) in DELIBERATE:
            continue
        if hp.name in ("beta1", "beta2"):
            default = params["betas"].default[0 if hp.name == "beta1" else 1]
        else:
            assert hp.name in params, f"{name} takes no argument {hp.name!r}"
            default = params[hp.name].default
        assert hp.default == default, (name, hp.name, hp.default, default)
