"""Lion against a plain reference written from the paper's Algorithm 2."""

from __future__ import annotations

import pytest
import torch

from workers.optimizers.lion import Lion


def reference_lion(
    params: list[torch.Tensor],
    grads_per_step: list[list[torch.Tensor]],
    lr: float,
    betas: tuple[float, float],
    wd: float,
) -> list[torch.Tensor]:
    """Chen et al. 2023, Algorithm 2, one tensor at a time, in float64."""
    beta1, beta2 = betas
    theta = [p.detach().double().clone() for p in params]
    m = [torch.zeros_like(t) for t in theta]
    for grads in grads_per_step:
        for i, g in enumerate(grads):
            g = g.double()
            c = beta1 * m[i] + (1 - beta1) * g
            theta[i] = theta[i] - lr * (torch.sign(c) + wd * theta[i])
            m[i] = beta2 * m[i] + (1 - beta2) * g
    return theta


def _run(foreach: bool, wd: float, maximize: bool = False, steps: int = 25) -> tuple:
    gen = torch.Generator().manual_seed(0)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    params = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    ref_start = [p.clone() for p in params]
    grads = [
        [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes] for _ in range(steps)
    ]
    leaves = [torch.nn.Parameter(p) for p in params]
    opt = Lion(
        [{"params": leaves[:2]}, {"params": leaves[2:], "lr": 0.01}],
        lr=0.03,
        betas=(0.9, 0.99),
        weight_decay=wd,
        foreach=foreach,
        maximize=maximize,
    )
    for step_grads in grads:
        for leaf, g in zip(leaves, step_grads, strict=True):
            leaf.grad = g.clone()
        opt.step()
    sign = -1.0 if maximize else 1.0
    signed = [[sign * g for g in step] for step in grads]
    expected = reference_lion(ref_start[:2], [s[:2] for s in signed], 0.03, (0.9, 0.99), wd)
    expected += reference_lion(ref_start[2:], [s[2:] for s in signed], 0.01, (0.9, 0.99), wd)
    return leaves, expected


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("wd", [0.0, 0.1])
@pytest.mark.parametrize("maximize", [False, True])
def test_lion_matches_reference(foreach: bool, wd: float, maximize: bool) -> None:
    leaves, expected = _run(foreach, wd, maximize)
    for leaf, exp in zip(leaves, expected, strict=True):
        torch.testing.assert_close(leaf.detach(), exp, rtol=1e-12, atol=1e-12)


def test_lion_foreach_matches_for_loop_in_float32() -> None:
    torch.manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(5, 5)), torch.nn.Parameter(torch.randn(5))]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    opt_a = Lion(a, lr=1e-2, weight_decay=0.1, foreach=False)
    opt_b = Lion(b, lr=1e-2, weight_decay=0.1, foreach=True)
    for _ in range(10):
        grads = [torch.randn_like(p) for p in a]
        for pa, pb, g in zip(a, b, grads, strict=True):
            pa.grad, pb.grad = g.clone(), g.clone()
        opt_a.step()
        opt_b.step()
    for pa, pb in zip(a, b, strict=True):
        torch.testing.assert_close(pa, pb)
        torch.testing.assert_close(opt_a.state[pa]["exp_avg"], opt_b.state[pb]["exp_avg"])


def test_lion_skips_params_without_grad_and_moves_by_lr() -> None:
    p, q = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.ones(2))
    opt = Lion([p, q], lr=0.5)
    p.grad = torch.tensor([1.0, -2.0, 0.0])
    opt.step()
    # first step: c = (1 - beta1) * g, so the update is -lr * sign(g)
    assert p.tolist() == [-0.5, 0.5, 0.0]
    assert q.tolist() == [1.0, 1.0] and q not in opt.state


def test_lion_closure_runs_with_grad_enabled() -> None:
    p = torch.nn.Parameter(torch.tensor([2.0]))
    opt = Lion([p], lr=0.1)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (p**2).sum()
        loss.backward()
        return loss

    with torch.no_grad():
        loss = opt.step(closure)
    assert float(loss.detach()) == 4.0 and float(p.detach()) == pytest.approx(1.9)


def test_lion_state_dict_round_trip_resumes_identically() -> None:
    torch.manual_seed(1)
    p = torch.nn.Parameter(torch.randn(4))
    opt = Lion([p], lr=0.05, weight_decay=0.01)
    grads = [torch.randn(4) for _ in range(6)]
    for g in grads[:3]:
        p.grad = g.clone()
        opt.step()
    q = torch.nn.Parameter(p.detach().clone())
    opt2 = Lion([q], lr=0.05, weight_decay=0.01)
    opt2.load_state_dict(opt.state_dict())
    for g in grads[3:]:
        p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        opt2.step()
    torch.testing.assert_close(p, q)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": -1.0}, "lr=-1.0"),
        ({"betas": (1.0, 0.99)}, r"betas\[0\]=1.0"),
        ({"betas": (0.9, -0.1)}, r"betas\[1\]=-0.1"),
        ({"weight_decay": -0.1}, "weight_decay=-0.1"),
    ],
)
def test_lion_rejects_bad_hyperparameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Lion([torch.nn.Parameter(torch.zeros(1))], **kwargs)


def test_lion_rejects_sparse_gradients() -> None:
    emb = torch.nn.Embedding(5, 2, sparse=True)
    opt = Lion(emb.parameters(), lr=0.1)
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse"):
        opt.step()
