"""Four defects that PyTorch's generic optimizer tests found in VRAdam (each failed before)."""

import copy

import pytest
import torch

from tests.vradam.test_equivalence import KERNELS, make_params, set_grads
from vradam import VRAdam

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated")


def test_multi_element_tensor_lr_raises_pytorchs_message() -> None:
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        VRAdam(make_params(), lr=torch.tensor([1e-3, 2e-3]))


@pytest.mark.parametrize("off", [{"beta3": 0.0}, {"alpha1": 0.0}])
def test_differentiable_step_reaches_a_tensor_lr_with_the_penalty_off(
    off: dict[str, float],
) -> None:
    lr = torch.tensor(0.01, dtype=torch.float64, requires_grad=True)
    leaf = torch.randn(4, dtype=torch.float64, requires_grad=True)
    p = leaf.clone()
    p.grad = torch.randn(4, dtype=torch.float64)
    opt = VRAdam([p], lr=lr, differentiable=True, weight_decay=0.1, **off)
    opt.step()
    (grad_lr,) = torch.autograd.grad(p.sum(), lr)
    assert grad_lr is not None and float(grad_lr.abs()) > 0
    (grad_eta,) = torch.autograd.grad(opt.param_groups[0]["effective_lr"], lr)
    assert float(grad_eta) == pytest.approx(1.0)


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_compiled_step_leaves_capturable_off(kernel: str) -> None:
    params = make_params()
    opt = VRAdam(params, lr=1e-2, **KERNELS[kernel])
    step = torch.compile(opt.step, backend="eager")
    for t in range(2):
        set_grads(params, t)
        step()
    assert all(group["capturable"] is False for group in opt.param_groups)
    assert opt.param_groups[0]["effective_lr"].dim() == 0


def test_deepcopy_of_a_dynamo_traced_optimizer_keeps_its_groups_and_state() -> None:
    params = make_params()
    opt = VRAdam(params, lr=1e-2, foreach=False)
    set_grads(params, 0)
    opt.step()

    @torch.compile(backend="eager")
    def clone() -> VRAdam:
        return copy.deepcopy(opt)

    twin = clone()
    assert len(twin.param_groups) == 1 and len(twin.param_groups[0]["params"]) == len(params)
    assert len(twin.state) == len(params)
    torch.testing.assert_close(
        twin.param_groups[0]["effective_lr"], opt.param_groups[0]["effective_lr"]
    )
    assert twin.param_groups[0]["effective_lr"] is not opt.param_groups[0]["effective_lr"]
