"""The fused kernel: what fused=None picks, errors, GradScaler, the compiled norm pass, CUDA."""

import io
import logging

import pytest
import torch

import vradam._fused as fused_module
from tests.vradam.test_correctness import quadratic_loss
from tests.vradam.test_equivalence import (
    KERNELS,
    assert_state_close,
    make_params,
    run,
    set_grads,
    split_groups,
)
from vradam import VRAdam, vradam

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated")


def kernel_of(opt: VRAdam) -> str:
    return opt._kernel(opt.param_groups[0])


def test_fused_none_picks_fused_where_correct_and_respects_foreach() -> None:
    params = make_params()
    set_grads(params, 0)
    assert kernel_of(VRAdam(params)) == "fused"
    assert kernel_of(VRAdam(params, foreach=False)) == "loop"
    assert kernel_of(VRAdam(params, foreach=True)) == "foreach"
    assert kernel_of(VRAdam(params, eps=0.0)) == "loop"  # fused AdamW: 0·(0/0) there
    assert kernel_of(VRAdam(params, differentiable=True)) == "loop"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"differentiable": True}, "fused=True does not support differentiable=True"),
        ({"foreach": True}, "fused=True and foreach=True cannot both be set"),
    ],
)
def test_fused_rejects_what_it_cannot_do(kwargs: dict[str, bool], message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        VRAdam(make_params(), fused=True, **kwargs)


def test_fused_rejects_unsupported_devices_naming_the_argument() -> None:
    meta = torch.zeros(3, device="meta", requires_grad=True)
    with pytest.raises(RuntimeError, match=r"fused=True needs floating-point .* on meta"):
        VRAdam([meta], fused=True)
    with pytest.raises(ValueError, match="Invalid fused value"):
        VRAdam(make_params(), fused="yes")
    with pytest.raises(ValueError, match="Invalid compile_norm value"):
        VRAdam(make_params(), compile_norm=1)


@pytest.mark.parametrize("kernel", ["loop", "foreach", "fused"])
def test_amsgrad_with_the_penalty_off_is_adamw_amsgrad(kernel: str) -> None:
    def make_vr(ps: list[torch.Tensor]) -> VRAdam:
        return VRAdam(
            split_groups(ps, lr=3e-3), lr=2e-2, beta3=0.0, amsgrad=True, **KERNELS[kernel]
        )

    def make_aw(ps: list[torch.Tensor]) -> torch.optim.AdamW:
        return torch.optim.AdamW(split_groups(ps, lr=3e-3), lr=2e-2, amsgrad=True, foreach=False)

    # Shrinking gradients, so that the maximum of v really differs from v.
    vr = run(make_vr, make_params(), 40, scale=lambda t: 0.9**t)
    aw = run(make_aw, make_params(), 40, scale=lambda t: 0.9**t)
    assert_state_close(vr, aw, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("config", [{}, {"maximize": True}, {"penalize": "gradient"}])
def test_grad_scaler_hands_scale_and_found_inf_to_the_fused_kernel(
    config: dict[str, object],
) -> None:
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    params, reference = make_params(), make_params()
    opt = VRAdam(params, lr=1e-2, beta3=0.5, fused=True, **config)
    ref_opt = VRAdam(reference, lr=1e-2, beta3=0.5, foreach=False, **config)
    assert opt._step_supports_amp_scaling
    for t in range(5):
        ref_opt.zero_grad()
        quadratic_loss(reference, t).backward()
        ref_opt.step()
        opt.zero_grad()
        scaler.scale(quadratic_loss(params, t)).backward()
        assert params[1].grad.abs().max() > 100  # still scaled: the kernel unscales
        scaler.step(opt)
        scaler.update()
    assert_state_close(opt, ref_opt, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        opt.param_groups[0]["effective_lr"], ref_opt.param_groups[0]["effective_lr"]
    )

    before = [p.detach().clone() for p in params]
    eta_before = opt.param_groups[0]["effective_lr"].clone()
    opt.zero_grad()
    scaler.scale(quadratic_loss(params, 5)).backward()
    params[0].grad[0, 0] = float("inf")
    scaler.step(opt)
    scaler.update()
    assert all(torch.equal(p, b) for p, b in zip(params, before, strict=True))
    assert float(opt.state[params[0]]["step"]) == 5.0
    assert torch.equal(opt.param_groups[0]["effective_lr"], eta_before)


def test_grad_scale_on_a_group_that_is_not_fused_raises() -> None:
    params = make_params()
    opt = VRAdam([{"params": params[:2]}, {"params": params[2:], "fused": False}], fused=True)
    set_grads(params, 0)
    opt.grad_scale, opt.found_inf = torch.tensor(2.0), torch.tensor(0.0)
    with pytest.raises(RuntimeError, match=r"param_groups\[1\] does not run the fused kernel"):
        opt.step()
    assert len(opt.state) == 0


@pytest.mark.parametrize(
    "config", [{}, {"maximize": True}, {"power": 3.0}, {"penalize": "gradient"}]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_compiled_norm_pass_matches_the_eager_one(
    config: dict[str, object], dtype: torch.dtype
) -> None:
    eager = run(
        lambda ps: VRAdam(ps, fused=True, compile_norm=False, **config), make_params(dtype), 5
    )
    compiled = run(
        lambda ps: VRAdam(ps, fused=True, compile_norm=True, **config), make_params(dtype), 5
    )
    low = dtype == torch.bfloat16
    assert_state_close(eager, compiled, rtol=1e-2 if low else 1e-5, atol=1e-3 if low else 1e-6)
    torch.testing.assert_close(
        eager.param_groups[0]["effective_lr"], compiled.param_groups[0]["effective_lr"]
    )


def test_a_failing_compiler_falls_back_to_the_eager_pass(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(fused_module, "_compiled_penalty", broken)
    monkeypatch.setattr(fused_module, "_compile_failed", set())
    with caplog.at_level(logging.WARNING, logger="vradam._fused"):
        got = run(lambda ps: VRAdam(ps, fused=True, compile_norm=True), make_params(), 5)
    assert "compiling the fused norm pass failed" in caplog.text
    expected = run(lambda ps: VRAdam(ps, foreach=False), make_params(), 5)
    assert_state_close(got, expected, rtol=1e-5, atol=1e-6)


def test_large_tensors_take_the_blocked_eager_pass() -> None:
    shapes = [(fused_module.BLOCK * 2 + 7,), (3, fused_module.SMALL + 1), (5,)]
    a = run(lambda ps: VRAdam(ps, beta3=1e-6, foreach=False), make_params(shapes=shapes), 3)
    b = run(
        lambda ps: VRAdam(ps, beta3=1e-6, fused=True, compile_norm=False, maximize=False),
        make_params(shapes=shapes),
        3,
    )
    assert float(a.param_groups[0]["effective_lr"]) < 0.99e-3  # the penalty is active
    assert_state_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("first", "second"), [("loop", "fused"), ("fused", "foreach")])
def test_state_dict_moves_between_kernels(first: str, second: str) -> None:
    def make(kernel: str):
        return lambda ps: VRAdam(split_groups(ps, lr=3e-3), lr=1e-2, **KERNELS[kernel])

    params = make_params()
    opt = run(make(first), params, 6)
    buffer = io.BytesIO()
    torch.save({"params": [p.detach() for p in params], "opt": opt.state_dict()}, buffer)
    for t in range(6, 12):
        set_grads(params, t)
        opt.step()
    buffer.seek(0)
    saved = torch.load(buffer)
    resumed_params = [p.clone().requires_grad_() for p in saved["params"]]
    resumed = make(second)(resumed_params)
    resumed.load_state_dict(saved["opt"])
    for t in range(6, 12):
        set_grads(resumed_params, t)
        resumed.step()
    for p, q in zip(params, resumed_params, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert all(float(s["step"]) == 12.0 for s in resumed.state.values())


def test_functional_fused_matches_the_for_loop() -> None:
    def one_run(fused: bool) -> tuple[list[torch.Tensor], torch.Tensor]:
        params = make_params()
        state = [(torch.zeros_like(p), torch.zeros_like(p), torch.tensor(0.0)) for p in params]
        for t in range(10):
            set_grads(params, t)
            with torch.no_grad():
                eta = vradam(
                    params,
                    [p.grad for p in params],
                    *map(list, zip(*state, strict=True)),
                    fused=fused,
                    foreach=None if fused else False,
                    beta1=0.9,
                    beta2=0.999,
                    beta3=0.5,
                    alpha1=10.0,
                    lr=1e-2,
                    weight_decay=1e-2,
                    eps=1e-8,
                    maximize=False,
                )
        return params, eta

    (p_fused, eta_fused), (p_loop, eta_loop) = one_run(True), one_run(False)
    torch.testing.assert_close(eta_fused, eta_loop)
    for p, q in zip(p_fused, p_loop, strict=True):
        torch.testing.assert_close(p, q)


# --------------------------------------------------------------------------------------------
# CUDA: deselected (not skipped, not passed) where there is no CUDA device.
# --------------------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.parametrize("kernel", ["foreach", "fused"])
@pytest.mark.parametrize("compile_norm", [False, True])
def test_cuda_matches_the_cpu_for_loop_without_host_sync(kernel: str, compile_norm: bool) -> None:
    cpu = run(lambda ps: VRAdam(split_groups(ps, lr=3e-3), foreach=False), make_params(), 10)
    params = [p.detach().cuda().requires_grad_() for p in make_params()]
    options = dict(KERNELS[kernel])
    if kernel == "fused":
        options["compile_norm"] = compile_norm
    opt = VRAdam(split_groups(params, lr=3e-3), **options)
    grads = [cuda_grads(params, t) for t in range(10)]  # host-to-device copies first
    for p, g in zip(params, grads[0], strict=True):
        p.grad = (0.5 * p.detach().double() + g).to(p.dtype)
    opt.step()  # the first step creates state (and compiles)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for t in range(1, 10):
            for p, g in zip(params, grads[t], strict=True):
                p.grad = (0.5 * p.detach().double() + g).to(p.dtype)
            opt.step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    for p, q in zip(params, [p for g in cpu.param_groups for p in g["params"]], strict=True):
        torch.testing.assert_close(p.cpu(), q, rtol=1e-4, atol=1e-5)


@pytest.mark.cuda
def test_cuda_grad_scaler_fused_does_not_sync() -> None:
    params = [p.detach().cuda().requires_grad_() for p in make_params()]
    opt = VRAdam(params, fused=True)
    scaler = torch.amp.GradScaler("cuda")
    for t in range(3):
        opt.zero_grad()
        scaler.scale(quadratic_loss(params, t)).backward()
        scaler.step(opt)
        scaler.update()
    assert all(torch.isfinite(p).all() for p in params)
    assert all(s["step"].device.type == "cuda" for s in opt.state.values())


def cuda_grads(params: list[torch.Tensor], step: int) -> list[torch.Tensor]:
    """set_grads' noise on the device (set_grads adds 0.5·p, done on the device here)."""
    gen = torch.Generator().manual_seed(10_000 + step)
    return [torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.device) for p in params]
