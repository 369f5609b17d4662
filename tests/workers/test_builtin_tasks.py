"""Task-specific checks of the four built-in synthetic/offline tasks (beyond conformance)."""

from __future__ import annotations

import math

import pytest
import torch

from workers.tasks.diffusion import DigitsDiffusionTask
from workers.tasks.digits import digits_splits
from workers.tasks.gflownet import HyperGridTask, hypergrid_rewards
from workers.tasks.quadratic import QuadraticTask


def test_quadratic_known_optimum_and_spectrum() -> None:
    task = QuadraticTask(dim=10, condition_number=1000.0, noise=0.0)
    assert task.curvature.max() == pytest.approx(1.0)
    assert task.curvature.min() == pytest.approx(1e-3)
    model = task.build_model(0)
    with torch.no_grad():
        model.x.copy_(task.optimum)
    assert task.evaluate(model, "val") == {"loss": 0.0}
    assert torch.equal(task.optimum, QuadraticTask(dim=10).optimum)  # seed-independent x*
    # noise 0: every batch is x*, so the batch loss is the objective
    model = task.build_model(1)
    batch = next(iter(task.train_batches(1, 1)))
    assert float(task.loss(model, batch).detach()) == pytest.approx(
        task.evaluate(model, "val")["loss"]
    )


def test_quadratic_gradient_noise_is_unbiased_with_covariance_sigma2_h_over_b() -> None:
    task = QuadraticTask(
        dim=4, condition_number=16.0, noise=0.5, batch_size=4, steps_per_epoch=4000
    )
    targets = torch.stack(list(task.train_batches(0, 1)))
    noise = (targets - task.optimum) * task.curvature  # gradient noise H (c - x*)
    assert noise.mean(0).abs().max() < 0.02
    expected = 0.5**2 * task.curvature / 4
    torch.testing.assert_close(noise.var(0), expected, rtol=0.1, atol=0.0)


def test_digits_split_is_fixed_stratified_and_disjoint() -> None:
    splits = digits_splits()
    sizes = {k: len(v[1]) for k, v in splits.items()}
    assert sizes == {"train": 1077, "val": 360, "test": 360}
    for _, labels in splits.values():
        counts = torch.bincount(labels, minlength=10)
        assert counts.min() >= 0.09 * len(labels)  # every class ~10%
    flat = {k: {tuple(img.flatten().tolist()) for img in v[0]} for k, v in splits.items()}
    # the raw data holds a few exact duplicate images; the split itself shares none by index
    assert len(flat["val"] & flat["test"]) <= 2
    assert float(splits["train"][0].min()) == 0.0 and float(splits["train"][0].max()) == 1.0


def test_diffusion_schedule_and_fixed_eval_noise() -> None:
    task = DigitsDiffusionTask(hidden=32, depth=1)
    model = task.build_model(0)
    ab = model.alpha_bar
    assert torch.all(ab[1:] < ab[:-1]) and ab[0] > 0.999 and ab[-1] < 1e-3
    a, b = task.eval_batch("val"), DigitsDiffusionTask(hidden=32, depth=1).eval_batch("val")
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[2][:10], task.eval_batch("test")[2][:10])
    assert len(a[0]) == 360 * 4
    x0, _, noise = a
    at_t0 = model.noisy(x0[:3], torch.zeros(3, dtype=torch.long), noise[:3])
    assert torch.allclose(at_t0, x0[:3], atol=0.1)  # sqrt(beta_0) = 0.022


def test_hypergrid_rewards_follow_the_formula() -> None:
    r = hypergrid_rewards(2, 8, 0.1, 0.5, 2.0)
    assert r.shape == (8, 8)
    assert float(r[0, 0]) == pytest.approx(0.6)  # outer band only (|0 - 0.5| = 0.5)
    assert float(r[1, 1]) == pytest.approx(2.6)  # |1/7 - 0.5| = 0.357: both bands
    assert float(r[3, 4]) == pytest.approx(0.1)  # centre: R0
    assert float(r[1, 3]) == pytest.approx(0.1)  # one coordinate outside the band
    assert float(r.sum()) == pytest.approx(0.1 * 64 + 0.5 * 16 + 2.0 * 4)
    assert hypergrid_rewards(3, 5, 0.1, 0.5, 2.0).shape == (5, 5, 5)


def test_hypergrid_sampler_paths_and_backward_probabilities() -> None:
    task = HyperGridTask(ndim=2, height=4)
    model = task.build_model(0)
    n = task.max_steps
    # u ~ 1: the last valid action (stop) at once -> the origin, no moves, log P_B = 0
    state, log_pf, log_pb = model.sample(torch.full((3, n), 0.9999))
    assert state.tolist() == [[0, 0]] * 3 and log_pb.tolist() == [0.0] * 3
    # u = 0: always the first valid action -> coordinate 0 to the border, then coordinate 1
    state, log_pf, log_pb = model.sample(torch.zeros(1, n))
    assert state.tolist() == [[3, 3]]
    # parents along the path (1,0) (2,0) (3,0) (3,1) (3,2) (3,3): 1, 1, 1, 2, 2, 2
    assert float(log_pb) == pytest.approx(-3 * math.log(2))
    assert float(log_pf.detach()) < 0


def test_hypergrid_l1_of_a_policy_that_always_stops() -> None:
    task = HyperGridTask(eval_trajectories=16)
    model = task.build_model(0)
    with torch.no_grad():
        model.net[-1].bias[-1] = 100.0  # stop logit: every trajectory ends at the origin
    metrics = task.evaluate(model, "val")
    assert metrics["l1"] == pytest.approx(2 * (1 - float(task.target[0])), abs=1e-9)
    log_r0 = math.log(0.6)  # TB residual of the empty trajectory: log Z - log R(origin)
    assert metrics["loss"] == pytest.approx(log_r0**2, rel=1e-4)


def _brute_force_terminal(table: dict, state: tuple[int, ...], p: float, out: dict) -> None:
    """Walk every trajectory from ``state`` (arrived with probability ``p``)."""
    probs = table[state]
    out[state] = out.get(state, 0.0) + p * probs[-1]
    for d, q in enumerate(probs[:-1]):
        if q > 0:
            nxt = tuple(c + (i == d) for i, c in enumerate(state))
            _brute_force_terminal(table, nxt, p * q, out)


@pytest.mark.parametrize(("ndim", "height"), [(2, 3), (3, 3), (1, 5), (2, 4)])
def test_hypergrid_exact_distribution_matches_enumerating_every_trajectory(
    ndim: int, height: int
) -> None:
    task = HyperGridTask(ndim=ndim, height=height, hidden=8)
    model = task.build_model(3)
    with torch.no_grad():
        model.net[-1].bias.copy_(torch.linspace(-1.0, 1.5, ndim + 1))  # a skewed policy
        dp = model.terminal_distribution()
        states = model.all_states()
        # the policy at every state, from one batch (float32 logits differ in the last
        # bits between batch shapes); the walk then multiplies along every trajectory
        probs = model.action_probs(states).tolist()
        table = dict(zip(map(tuple, states.tolist()), probs, strict=True))
        brute: dict[tuple[int, ...], float] = {}
        _brute_force_terminal(table, (0,) * ndim, 1.0, brute)
    assert dp.shape == (height,) * ndim and dp.dtype == torch.float64
    assert float(dp.sum()) == pytest.approx(1.0, abs=1e-12)
    assert len(brute) == height**ndim
    for state, p in brute.items():
        assert float(dp[state]) == pytest.approx(p, rel=1e-9, abs=1e-15), state
    # evaluate's l1 is this distribution against the target, the same for both splits
    l1 = float((dp.flatten() - task.target).abs().sum())
    assert task.evaluate(model, "val")["l1"] == pytest.approx(l1, abs=1e-9)
    assert task.evaluate(model, "test")["l1"] == task.evaluate(model, "val")["l1"]


def _uniform(task: HyperGridTask):
    model = task.build_model(0)
    with torch.no_grad():
        model.net[-1].weight.zero_()
        model.net[-1].bias.zero_()  # equal logits: uniform over the valid actions
    return model


def test_hypergrid_uniform_policy_gives_the_known_distribution() -> None:
    # D = 1: stop or step with probability 1/2 each, until the border (stop only)
    h = 6
    p = _uniform(HyperGridTask(ndim=1, height=h)).terminal_distribution().detach()
    expected = [0.5 ** (s + 1) for s in range(h - 1)] + [0.5 ** (h - 1)]
    assert p.tolist() == pytest.approx(expected, rel=1e-12)
    # D = 2, H = 2: the origin stops with 1/3; (1,0) and (0,1) are reached with 1/3 each and
    # stop with 1/2; (1,1) is reached from both with 1/3 * 1/2 and can only stop
    p = _uniform(HyperGridTask(ndim=2, height=2)).terminal_distribution().detach()
    assert p.tolist() == [pytest.approx([1 / 3, 1 / 6]), pytest.approx([1 / 6, 1 / 3])]


def test_hypergrid_exact_l1_has_no_sampling_floor() -> None:
    task = HyperGridTask(ndim=1, height=4, r1=0.0, r2=0.0)  # target: uniform over 4 states
    model = task.build_model(0)
    with torch.no_grad():  # stop probability 1/(4-s) at s: the uniform terminal distribution
        states = model.all_states()
        target_stop = torch.tensor([1 / 4, 1 / 3, 1 / 2, 1.0])
        # route the one-hot state through both hidden layers unchanged, so that the stop
        # logit at s is logit[s] and the step logit 0: P(stop | s) = sigmoid(logit[s])
        for layer in (model.net[0], model.net[2], model.net[-1]):
            layer.weight.zero_()
            layer.bias.zero_()
        model.net[0].weight[:4, :4] = torch.eye(4)
        model.net[2].weight[:4, :4] = torch.eye(4)
        logit = (target_stop / (1 - target_stop).clamp(min=1e-12)).log().clamp(max=30.0)
        model.net[-1].weight[1, :4] = logit
        probs = model.action_probs(states)
    assert probs[:, 1].tolist() == pytest.approx(target_stop.tolist(), rel=1e-6)
    assert task.evaluate(model, "val")["l1"] < 1e-6
