"""lr = 0 (a warm-up from 0) and vanishing lr: exactly AdamW's no-op, never NaN.

η_t is folded into the update's denominator (``sqrt(v)/a + b`` with ``a ∝ -η_t`` and
``b = ε/(-η_t/(1-β1^t))``); at η_t = 0 that was 0/0 = NaN wherever v = 0.
"""

import pytest
import torch

from tests.vradam.test_equivalence import assert_state_close, make_params, set_grads
from vradam import VRAdam

BITS = {
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
    torch.float32: torch.int32,
    torch.float64: torch.int64,
}

# Zeros of both signs, and coordinates whose gradient is always zero (v = 0, m = 0).
START = [1.0, 0.0, -0.0, 2.0, -3.0, 0.5]
GRAD = [1.0, 0.0, 0.0, -2.0, 0.0, 1e-3]


def name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal bit for bit (so NaN != NaN and the sign of zero counts)."""
    return torch.equal(a.view(BITS[a.dtype]), b.view(BITS[b.dtype]))


def steps(opt: torch.optim.Optimizer, p: torch.Tensor, n: int = 3) -> None:
    for t in range(n):
        p.grad = torch.tensor(GRAD, dtype=p.dtype) * (t + 1)
        opt.step()


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("dtype", list(BITS), ids=name)
@pytest.mark.parametrize("tensor_lr", [False, True], ids=["float-lr", "tensor-lr"])
@pytest.mark.parametrize("beta3", [0.0, 1.0])
def test_zero_lr_is_exactly_adamw_params_unchanged(
    foreach: bool, dtype: torch.dtype, tensor_lr: bool, beta3: float
) -> None:
    # float16 cannot hold eps=1e-8 (it rounds to 0 and AdamW itself gives 0/0 there).
    eps = 1e-4 if dtype == torch.float16 else 1e-8
    p = torch.tensor(START, dtype=dtype, requires_grad=True)
    q = torch.tensor(START, dtype=dtype, requires_grad=True)
    lr = torch.tensor(0.0) if tensor_lr else 0.0
    vr = VRAdam([p], lr=lr, eps=eps, weight_decay=0.1, beta3=beta3, foreach=foreach)
    aw = torch.optim.AdamW([q], lr=0.0, eps=eps, weight_decay=0.1, foreach=foreach)
    steps(vr, p)
    steps(aw, q)
    assert same_bits(p.detach(), q.detach())
    assert same_bits(p.detach(), torch.tensor(START, dtype=dtype))
    assert_state_close(vr, aw, rtol=0, atol=0)  # moments and step counters advance alike
    assert float(vr.param_groups[0]["effective_lr"]) == 0.0


@pytest.mark.parametrize("foreach", [False, True])
def test_zero_lr_with_zero_eps_stays_finite(foreach: bool) -> None:
    # AdamW gives 0·(0/0) = NaN on the zero-gradient coordinates here; VRAdam leaves them.
    p = torch.tensor(START, requires_grad=True)
    steps(VRAdam([p], lr=0.0, eps=0.0, foreach=foreach), p)
    assert same_bits(p.detach(), torch.tensor(START))


def test_zero_lr_functional_form() -> None:
    from vradam import vradam

    p, g = torch.tensor(START), torch.tensor(GRAD)
    m, v, step = torch.zeros(6), torch.zeros(6), torch.tensor(0.0)
    for foreach in (False, True):
        eta = vradam(
            [p],
            [g],
            [m],
            [v],
            [step],
            foreach=foreach,
            beta1=0.9,
            beta2=0.999,
            beta3=1.0,
            alpha1=10.0,
            lr=0.0,
            weight_decay=0.1,
            eps=1e-8,
            maximize=False,
        )
        assert float(eta) == 0.0
    assert same_bits(p, torch.tensor(START)) and float(step) == 2.0


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=name)
def test_tiny_lr_matches_adamw(foreach: bool, dtype: torch.dtype) -> None:
    # Params at zero, so the 1e-30-sized moves are visible (atol=0).
    p = torch.zeros(6, dtype=dtype, requires_grad=True)
    q = torch.zeros(6, dtype=dtype, requires_grad=True)
    steps(VRAdam([p], lr=1e-30, beta3=0.0, foreach=foreach), p)
    steps(torch.optim.AdamW([q], lr=1e-30, foreach=foreach), q)
    assert (p[[0, 3, 5]] != 0).all()
    torch.testing.assert_close(p, q, rtol=1e-5, atol=0)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize(
    ("dtype", "lr"),
    [
        (torch.float32, 1e-45),  # η_t a float32 subnormal: sqrt(1-β2^t)·η_t/(1-β1^t) underflows
        (torch.float32, 1e-50),  # η_t rounds to 0 in float32
        (torch.bfloat16, 1e-45),
        (torch.float64, 5e-324),  # the smallest float64 subnormal
    ],
    ids=["float32-subnormal", "float32-underflow", "bfloat16-subnormal", "float64-subnormal"],
)
@pytest.mark.parametrize("beta3", [0.0, 1.0])
def test_vanishing_lr_stays_finite(
    foreach: bool, dtype: torch.dtype, lr: float, beta3: float
) -> None:
    p = torch.tensor(START, dtype=dtype, requires_grad=True)
    steps(VRAdam([p], lr=lr, beta3=beta3, foreach=foreach), p)
    assert torch.isfinite(p).all()
    tiny = torch.finfo(dtype).tiny
    torch.testing.assert_close(p.detach(), torch.tensor(START, dtype=dtype), rtol=0, atol=tiny)


def warmup(epoch: int) -> float:
    return min(1.0, epoch / 4)  # lr = 0 on the first step


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=name)
def test_warmup_from_zero_matches_adamw(foreach: bool, dtype: torch.dtype) -> None:
    params_vr, params_aw = make_params(dtype), make_params(dtype)
    start = [p.detach().clone() for p in params_vr]
    vr = VRAdam(params_vr, lr=2e-2, weight_decay=0.1, beta3=0.0, foreach=foreach)
    aw = torch.optim.AdamW(params_aw, lr=2e-2, weight_decay=0.1, foreach=foreach)
    schedulers = [torch.optim.lr_scheduler.LambdaLR(o, warmup) for o in (vr, aw)]
    for t in range(12):
        set_grads(params_vr, t)
        set_grads(params_aw, t)
        for g in (*params_vr, *params_aw):
            g.grad[..., 0] = 0.0  # some coordinates never see a gradient (v = 0)
        vr.step()
        aw.step()
        if t == 0:
            assert all(torch.equal(p, s) for p, s in zip(params_vr, start, strict=True))
        for s in schedulers:
            s.step()
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {}
    assert_state_close(vr, aw, **tol)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("tensor_lr", [False, True], ids=["float-lr", "tensor-lr"])
def test_warmup_from_zero_with_the_penalty_stays_finite(foreach: bool, tensor_lr: bool) -> None:
    params = make_params()
    start = [p.detach().clone() for p in params]
    lr = torch.tensor(2e-2) if tensor_lr else 2e-2
    opt = VRAdam(params, lr=lr, beta3=0.5, foreach=foreach)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, warmup)
    etas = []
    for t in range(8):
        set_grads(params, t)
        for p in params:
            p.grad[..., 0] = 0.0
        opt.step()
        etas.append(float(opt.param_groups[0]["effective_lr"]))
        if t == 0:
            assert all(torch.equal(p, s) for p, s in zip(params, start, strict=True))
        scheduler.step()
        assert all(torch.isfinite(p).all() for p in params)
    assert etas[0] == 0.0 and all(0 < e <= 2e-2 for e in etas[1:])
    assert not any(torch.equal(p, s) for p, s in zip(params, start, strict=True))
