"""VRAdam's behaviour as a torch.optim optimizer: η_t, groups, state, closures, dtypes, AMP."""

import io
import itertools

import pytest
import torch

from tests.vradam.test_equivalence import KERNELS, make_params, run, set_grads, split_groups
from vradam import VRAdam
from vradam._functional import _for_bucket


def test_effective_lr_is_bounded_and_falls_as_gradients_grow() -> None:
    lr, alpha1 = 0.1, 4.0
    params = make_params()
    opt = VRAdam(params, lr=lr, alpha1=alpha1, beta3=0.05, foreach=False)
    direction = [torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) for p in params]
    etas = []
    for t in range(60):
        for p, d in zip(params, direction, strict=True):
            p.grad = d * 1.1**t  # growing gradients: the velocity grows every step
        opt.step()
        eta = opt.param_groups[0]["effective_lr"]
        assert eta.dim() == 0 and eta.device == params[0].device
        etas.append(float(eta))
    assert all(lr / (1 + alpha1) - 1e-9 <= e <= lr for e in etas)
    assert all(b <= a for a, b in itertools.pairwise(etas))  # falls (never rises)
    assert etas[0] > 0.5 * lr and etas[-1] == pytest.approx(lr / (1 + alpha1))

    # Tiny gradients leave the step at lr.
    opt = VRAdam(make_params(), lr=lr, foreach=True)
    for t in range(3):
        set_grads(opt.param_groups[0]["params"], t, scale=1e-6)
        opt.step()
    assert float(opt.param_groups[0]["effective_lr"]) == pytest.approx(lr, rel=1e-6)


def test_global_norm_spans_groups_and_group_scope_does_not() -> None:
    # Global: every group sees the same V, so η/lr is the same factor when beta3/alpha1 agree.
    opt = run(
        lambda ps: VRAdam(split_groups(ps, lr=0.004, weight_decay=0.0), lr=0.02, beta3=0.1),
        make_params(),
        5,
    )
    g0, g1 = opt.param_groups
    factor0 = float(g0["effective_lr"]) / 0.02
    assert factor0 < 0.95
    assert float(g1["effective_lr"]) / 0.004 == pytest.approx(factor0, rel=1e-6)

    # Group scope: each group its own V, so the factors differ.
    opt = run(
        lambda ps: VRAdam(split_groups(ps, lr=0.004), lr=0.02, beta3=0.1, norm_scope="group"),
        make_params(),
        5,
    )
    g0, g1 = opt.param_groups
    assert float(g1["effective_lr"]) / 0.004 != pytest.approx(float(g0["effective_lr"]) / 0.02)


@pytest.mark.parametrize("foreach", [False, True])
def test_params_without_grad_are_skipped_and_not_counted(foreach: bool) -> None:
    params = make_params()
    frozen = torch.randn(100, requires_grad=True)  # large: would dominate V if counted
    before = frozen.detach().clone()
    opt = VRAdam([*params, frozen], lr=1e-2, beta3=0.5, foreach=foreach)
    reference = VRAdam(make_params(), lr=1e-2, beta3=0.5, foreach=foreach)
    for t in range(10):
        set_grads(params, t)
        set_grads(reference.param_groups[0]["params"], t)
        opt.step()
        reference.step()
    assert torch.equal(frozen, before)
    assert len(opt.state[frozen]) == 0
    torch.testing.assert_close(
        opt.param_groups[0]["effective_lr"], reference.param_groups[0]["effective_lr"]
    )
    for p, q in zip(params, reference.param_groups[0]["params"], strict=True):
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize("foreach", [False, True])
def test_state_dict_round_trip_resumes_identically(foreach: bool) -> None:
    def make(ps: list[torch.Tensor]) -> VRAdam:
        return VRAdam(split_groups(ps, lr=3e-3, weight_decay=0.0), lr=1e-2, foreach=foreach)

    params = make_params()
    opt = run(make, params, 7)
    buffer = io.BytesIO()
    torch.save({"params": [p.detach() for p in params], "opt": opt.state_dict()}, buffer)

    for t in range(7, 20):  # the uninterrupted run
        set_grads(params, t)
        opt.step()

    buffer.seek(0)
    saved = torch.load(buffer)  # weights_only=True: the state dict holds plain types only
    resumed_params = [p.clone().requires_grad_() for p in saved["params"]]
    resumed = make(resumed_params)
    resumed.load_state_dict(saved["opt"])
    for t in range(7, 20):
        set_grads(resumed_params, t)
        resumed.step()

    for p, q in zip(params, resumed_params, strict=True):
        assert torch.equal(p, q)
    for ga, gb in zip(opt.param_groups, resumed.param_groups, strict=True):
        assert torch.equal(ga["effective_lr"], gb["effective_lr"])
        assert {k: v for k, v in ga.items() if k not in ("params", "effective_lr")} == {
            k: v for k, v in gb.items() if k not in ("params", "effective_lr")
        }


def test_closure_runs_with_grad_enabled() -> None:
    model = torch.nn.Linear(3, 1)
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    opt = VRAdam(model.parameters(), lr=1e-2)
    calls = []

    def closure() -> torch.Tensor:
        calls.append(torch.is_grad_enabled())
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    with torch.no_grad():
        first = opt.step(closure)
    losses = [float(opt.step(closure).detach()) for _ in range(30)]
    assert calls == [True] * 31
    assert isinstance(first, torch.Tensor) and losses[-1] < float(first.detach())


@pytest.mark.parametrize("kernel", ["loop", "foreach", "fused"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_low_and_high_precision_follow_float64(kernel: str, dtype: torch.dtype) -> None:
    def make(ps: list[torch.Tensor]) -> VRAdam:
        return VRAdam(ps, lr=1e-2, beta3=0.2, **KERNELS[kernel])

    reference = run(make, make_params(torch.float64), 30)
    params = make_params(dtype)
    opt = run(make, params, 30)
    for p, q in zip(params, reference.param_groups[0]["params"], strict=True):
        assert p.dtype == dtype and opt.state[p]["exp_avg"].dtype == dtype
        tol = {torch.float32: 1e-4, torch.float64: 1e-12}.get(dtype, 5e-2)
        torch.testing.assert_close(p.double(), q, rtol=tol, atol=tol)
    eta = opt.param_groups[0]["effective_lr"]
    assert eta.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)


@pytest.mark.parametrize("kernel", ["loop", "foreach", "fused"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_norm_accumulates_in_float32(kernel: str, dtype: torch.dtype) -> None:
    # Σ v² = 10_000 · (0.1·300)² = 9e6 overflows float16 (max 65504); float32 holds it.
    p = torch.zeros(10_000, dtype=dtype, requires_grad=True)
    p.grad = torch.full_like(p, 300.0)
    opt = VRAdam([p], lr=1.0, beta3=1e-7, alpha1=10.0, weight_decay=0.0, **KERNELS[kernel])
    opt.step()
    expected = 1.0 / (1 + 1e-7 * 10_000 * 30.0**2)  # = 1/1.9, far from the floor 1/11
    assert float(opt.param_groups[0]["effective_lr"]) == pytest.approx(expected, rel=1e-2)


@pytest.mark.parametrize("foreach", [False, True])
def test_float16_tiny_lr_large_grads_do_not_overflow(foreach: bool) -> None:
    # sqrt(v)/(η·...) would be ~1e5: beyond float16's range if η were folded into the divisor.
    p16 = torch.zeros(8, dtype=torch.float16, requires_grad=True)
    p32 = torch.zeros(8, dtype=torch.float32, requires_grad=True)
    opts = [VRAdam([p], lr=1e-4, beta3=0.0, foreach=foreach) for p in (p16, p32)]
    for _ in range(3):
        for p, opt in zip((p16, p32), opts, strict=True):
            p.grad = torch.full_like(p, 200.0)
            opt.step()
    assert torch.isfinite(p16).all() and (p16 != 0).all()
    torch.testing.assert_close(p16.float(), p32, rtol=2e-3, atol=0)


def test_lr_scheduler_drives_group_lr() -> None:
    params = make_params()
    opt = VRAdam(params, lr=0.1, beta3=0.0)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for t in range(4):
        set_grads(params, t)
        lr_now = opt.param_groups[0]["lr"]
        opt.step()
        assert float(opt.param_groups[0]["effective_lr"]) == pytest.approx(lr_now)
        scheduler.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 / 16)
    assert opt.param_groups[0]["initial_lr"] == 0.1

    # With the penalty on, η_t stays below the scheduled lr and follows it down.
    opt = VRAdam(make_params(), lr=0.1, beta3=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0 / (1 + epoch))
    for t in range(4):
        set_grads(opt.param_groups[0]["params"], t)
        opt.step()
        assert float(opt.param_groups[0]["effective_lr"]) <= opt.param_groups[0]["lr"]
        assert float(opt.param_groups[0]["effective_lr"]) >= opt.param_groups[0]["lr"] / 11
        scheduler.step()


@pytest.mark.parametrize("foreach", [False, True])
def test_state_memory_equals_adamw_plus_one_scalar_per_group(foreach: bool) -> None:
    vr = run(lambda ps: VRAdam(split_groups(ps), foreach=foreach), make_params(), 3)
    aw = run(lambda ps: torch.optim.AdamW(split_groups(ps), foreach=foreach), make_params(), 3)

    def layout(opt: torch.optim.Optimizer) -> list[list[tuple[str, tuple[int, ...], torch.dtype]]]:
        return [
            sorted((k, tuple(v.shape), v.dtype) for k, v in opt.state[p].items())
            for g in opt.param_groups
            for p in g["params"]
        ]

    assert layout(vr) == layout(aw)
    for group in vr.param_groups:
        tensors = {k: v for k, v in group.items() if k != "params" and torch.is_tensor(v)}
        assert list(tensors) == ["effective_lr"] and tensors["effective_lr"].numel() == 1


def quadratic_loss(params: list[torch.Tensor], t: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(10_000 + t)
    terms = [(0.25 * p * p + torch.randn(p.shape, generator=gen) * p).sum() for p in params]
    return torch.stack(terms).sum()


def test_grad_scaler_unscales_and_skips_non_finite_steps() -> None:
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    params, reference = make_params(), make_params()
    opt = VRAdam(params, lr=1e-2, foreach=True)
    ref_opt = VRAdam(reference, lr=1e-2, foreach=True)
    for t in range(5):
        ref_opt.zero_grad()
        quadratic_loss(reference, t).backward()
        ref_opt.step()
        opt.zero_grad()
        scaler.scale(quadratic_loss(params, t)).backward()
        assert params[1].grad.abs().max() > 100  # really scaled
        scaler.step(opt)
        scaler.update()
    for p, q in zip(params, reference, strict=True):
        torch.testing.assert_close(p, q)

    before = [p.detach().clone() for p in params]
    steps_before = float(opt.state[params[0]]["step"])
    opt.zero_grad()
    scaler.scale(quadratic_loss(params, 5)).backward()
    params[0].grad[0, 0] = float("inf")
    scale = scaler.get_scale()
    scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() < scale
    assert all(torch.equal(p, b) for p, b in zip(params, before, strict=True))
    assert float(opt.state[params[0]]["step"]) == steps_before


def test_maximize_is_minimize_of_the_negative() -> None:
    a = run(lambda ps: VRAdam(ps, lr=1e-2, maximize=True), make_params(), 10)
    params = make_params()
    opt = VRAdam(params, lr=1e-2)
    for t in range(10):
        set_grads(params, t)
        for p in params:
            p.grad.neg_()
        opt.step()
    for p, q in zip(a.param_groups[0]["params"], params, strict=True):
        torch.testing.assert_close(p, q)


def test_differentiable_step_passes_gradcheck() -> None:
    def one_step(
        p: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        q = p.clone()
        q.grad = grad
        opt = VRAdam([q], lr=0.1, beta3=0.5, weight_decay=0.1, differentiable=True)
        opt.state[q] = {
            "step": torch.tensor(3.0),
            "exp_avg": exp_avg.clone(),
            "exp_avg_sq": exp_avg_sq.clone(),
        }
        opt.step()
        state = opt.state[q]
        return q, state["exp_avg"], state["exp_avg_sq"], opt.param_groups[0]["effective_lr"]

    gen = torch.Generator().manual_seed(0)
    inputs = [
        torch.randn(3, 2, generator=gen, dtype=torch.float64).requires_grad_(),
        torch.randn(3, 2, generator=gen, dtype=torch.float64).requires_grad_(),
        torch.randn(3, 2, generator=gen, dtype=torch.float64).requires_grad_(),
        (torch.rand(3, 2, generator=gen, dtype=torch.float64) + 0.1).requires_grad_(),
    ]
    assert torch.autograd.gradcheck(one_step, inputs)


def test_scalar_operands_match_the_bucket_dtype_on_accelerators_only() -> None:
    eta = torch.tensor(1e-3)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")  # only the type is inspected
    assert _for_bucket(eta, cuda, torch.bfloat16).dtype == torch.bfloat16
    assert _for_bucket(eta, cuda, torch.float64).dtype == torch.float64
    assert _for_bucket(eta, cuda, torch.float16) is eta  # range: keep float32
    assert _for_bucket(eta, cpu, torch.bfloat16) is eta  # CPU reads it at full precision
    assert _for_bucket(eta, None, None) is eta  # torch.compile: inductor decides
    assert _for_bucket([eta], cuda, torch.bfloat16) == [eta]  # per-tensor lists stay
