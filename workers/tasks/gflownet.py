r"""A GFlowNet on the HyperGrid environment, trained with trajectory balance.

Environment (Bengio et al. 2021, "Flow Network based Generative Models"; the torchgfn
``HyperGrid``): states are points :math:`s \in \{0..H-1\}^D`, starting at the origin.
An action increments one coordinate (invalid at the border) or stops; every state can
be terminal. The reward of a terminal state, with :math:`u_d = |s_d/(H-1) - 0.5|`, is

.. math::  R(s) = R_0 + R_1 \prod_d [0.25 < u_d \le 0.5] + R_2 \prod_d [0.3 < u_d < 0.4],

high in the corners' bands, near :math:`R_0` elsewhere (defaults R0 = 0.1, R1 = 0.5,
R2 = 2.0, D = 2, H = 8: 64 states).

Model: a forward policy MLP on the one-hot coordinates (D·H inputs) giving D + 1 action
logits (invalid actions masked), and a learned scalar ``log_z`` (a parameter of the
model, so every optimizer trains it, without weight decay). The backward policy is
uniform over a state's parents.

Loss: trajectory balance (Malkin et al. 2022), the batch mean of
:math:`(\log Z + \sum_t \log P_F(s_{t+1}|s_t) - \log R(x) - \sum_t \log P_B(s_t|s_{t+1}))^2`
over trajectories sampled on-policy. A training batch is a tensor of uniform numbers,
one per (trajectory, step), drawn from ``(seed, epoch)``; the loss samples actions from
them by inverse CDF, so it is deterministic given the model and the batch. An epoch is
``steps_per_epoch`` batches (there is no finite dataset). The default batch of 64
trajectories keeps the per-batch loss steady enough for ``run_trial``'s divergence rule
(at 16, healthy runs' batch losses reached 6x the first one).

Metrics: ``l1``, the exact L1 distance :math:`\sum_x |P_T(x) - R(x)/Z|` (in [0, 2])
between the policy's terminal distribution and the reward distribution normalised over
all :math:`H^D` states, the task's objective (``val_l1``); and ``loss``, the
trajectory-balance loss on ``eval_trajectories`` trajectories sampled with the split's
fixed seed, a secondary metric. The loss alone misleads: a policy can drive it to 0 on
its own samples while collapsing onto a few modes (AdamW at lr 1 on ``hypergrid.yaml``:
loss 0, L1 from 1.36 up to 1.95). :math:`P_T` is computed exactly, by dynamic programming
over the states in topological order (:meth:`HyperGridPolicy.terminal_distribution`), so
``val_l1`` and ``test_l1`` are the same number and have no sampling floor (4,096 samples
of the exact target still read about 0.1).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from labcore.budget import Budget
from labcore.errors import SpecError
from workers.tasks._data import check_positive_int, resolve_options, seeded_init, torch_generator
from workers.tasks.base import Task
from workers.tasks.registry import TASKS

__all__ = ["HyperGridPolicy", "HyperGridTask", "hypergrid_rewards"]

_EVAL_SEEDS = {"val": 2001, "test": 2002}


def hypergrid_rewards(ndim: int, height: int, r0: float, r1: float, r2: float) -> torch.Tensor:
    """Return the reward of every state as a tensor of shape ``(height,) * ndim``."""
    coords = torch.arange(height, dtype=torch.float64)
    u = (coords / (height - 1) - 0.5).abs()
    outer = (u > 0.25) & (u <= 0.5)
    inner = (u > 0.3) & (u < 0.4)
    all_outer = torch.ones((height,) * ndim, dtype=torch.bool)
    all_inner = torch.ones((height,) * ndim, dtype=torch.bool)
    for d in range(ndim):
        shape = [1] * ndim
        shape[d] = height
        all_outer = all_outer & outer.view(shape)
        all_inner = all_inner & inner.view(shape)
    return r0 + r1 * all_outer.double() + r2 * all_inner.double()


class HyperGridPolicy(nn.Module):
    """Forward-policy MLP and learned ``log_z``; samples trajectories from given uniforms.

    Args:
        ndim: D.
        height: H.
        hidden: Width of the two hidden layers.
    """

    def __init__(self, ndim: int, height: int, hidden: int = 64) -> None:
        super().__init__()
        self.ndim, self.height = ndim, height
        self.net = nn.Sequential(
            nn.Linear(ndim * height, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, ndim + 1),
        )
        self.log_z = nn.Parameter(torch.zeros(()))

    @property
    def max_steps(self) -> int:
        """Actions in the longest trajectory: D·(H − 1) increments, then stop."""
        return self.ndim * (self.height - 1) + 1

    def all_states(self) -> torch.Tensor:
        """Every state, shape (H^D, D), in row-major order (the order of ``flatten``)."""
        axes = [torch.arange(self.height)] * self.ndim
        grids = torch.meshgrid(*axes, indexing="ij")
        return torch.stack([g.reshape(-1) for g in grids], dim=1).to(self.log_z.device)

    def action_probs(self, states: torch.Tensor) -> torch.Tensor:
        """P_F of each action (D increments, then stop) at ``states`` (N, D), float64."""
        valid = torch.cat([states < self.height - 1, torch.ones_like(states[:, :1])], dim=1)
        logits = self.net(F.one_hot(states, self.height).flatten(1).float()).double()
        return logits.masked_fill(~valid.bool(), float("-inf")).softmax(dim=1)

    def terminal_distribution(self) -> torch.Tensor:
        r"""The exact probability that a trajectory ends at each state, shape ``(H,) * D``.

        Forward recursion over the states in topological order, one level (coordinate sum
        :math:`k`) at a time: the flow arriving at a state of level :math:`k` is the sum
        over its parents :math:`p = s - e_d` of :math:`F(p) P_F(s | p)`, starting from
        :math:`F(0) = 1`; the probability of terminating at :math:`s` is
        :math:`F(s) P_F(	ext{stop} | s)`. One forward pass of the network over all
        :math:`H^D` states, then :math:`D(H-1)` shift-and-add steps, in float64.
        """
        d, h = self.ndim, self.height
        probs = self.action_probs(self.all_states()).view(*(h,) * d, d + 1)
        level = torch.zeros((h,) * d, dtype=torch.float64, device=probs.device)
        level[(0,) * d] = 1.0  # flow of level 0: every trajectory starts at the origin
        arrived = level.clone()
        for _ in range(d * (h - 1)):
            nxt = torch.zeros_like(level)
            for k in range(d):  # the flow leaving level k-1 along axis k lands one cell on
                moved = level * probs[..., k]
                src = [slice(None)] * d
                dst = [slice(None)] * d
                src[k], dst[k] = slice(0, h - 1), slice(1, h)
                nxt[tuple(dst)] += moved[tuple(src)]
            level = nxt
            arrived = arrived + level
        return arrived * probs[..., d]

    def sample(self, uniforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Roll out one trajectory per row of ``uniforms`` (shape (N, max_steps)).

        Returns:
            ``(terminal_states, sum_log_pf, sum_log_pb)``: states (N, D) int64 and the
            per-trajectory sums of forward and backward log-probabilities.
        """
        n, d, h = uniforms.shape[0], self.ndim, self.height
        state = torch.zeros(n, d, dtype=torch.long, device=uniforms.device)
        done = torch.zeros(n, dtype=torch.bool, device=uniforms.device)
        log_pf = torch.zeros(n, device=uniforms.device)
        log_pb = torch.zeros(n, device=uniforms.device)
        stop = torch.full((n, 1), d, device=uniforms.device)
        for step in range(self.max_steps):
            valid = torch.cat([state < h - 1, torch.ones_like(done)[:, None]], dim=1)
            logits = self.net(F.one_hot(state, h).flatten(1).float())
            logp = logits.masked_fill(~valid, float("-inf")).log_softmax(dim=1)
            cdf = logp.exp().cumsum(dim=1)
            action = (cdf <= uniforms[:, step : step + 1]).sum(dim=1, keepdim=True)
            action = action.clamp(max=d)  # rounding: u beyond the last cdf value
            action = torch.where(valid.gather(1, action), action, stop)  # never invalid
            active = ~done
            log_pf = log_pf + torch.where(active, logp.gather(1, action).squeeze(1), 0.0)
            moves = active & (action.squeeze(1) < d)
            step_vec = F.one_hot(action.squeeze(1).clamp(max=d - 1), d) * moves[:, None]
            state = state + step_vec
            # P_B(s | s') is uniform over the parents of s' (its nonzero coordinates).
            n_parents = (state > 0).sum(dim=1).clamp(min=1).float()
            log_pb = log_pb - torch.where(moves, n_parents.log(), 0.0)
            done = done | (action.squeeze(1) == d)
            # Stop once all are done: a cheap check on CPU, a host sync on CUDA (skipped).
            if not uniforms.is_cuda and bool(done.all()):
                break
        return state, log_pf, log_pb


class HyperGridTask(Task):
    """GFlowNet with trajectory balance on a HyperGrid (see the module docstring).

    Options (defaults in :attr:`DEFAULT_OPTIONS`):
        ndim, height: D and H of the grid.
        r0, r1, r2: The reward's levels.
        hidden: Width of the policy MLP.
        batch_size: Trajectories per training step.
        steps_per_epoch: Training steps per epoch.
        eval_trajectories: Trajectories for the validation/test loss.

    Raises:
        SpecError: For unknown or invalid options.
    """

    name: ClassVar[str] = "hypergrid_gflownet"
    target_metric: ClassVar[str] = "val_l1"
    metrics: ClassVar[tuple[str, ...]] = (
        "train_loss",
        "val_loss",
        "val_l1",
        "test_loss",
        "test_l1",
    )
    default_budget: ClassVar[Budget] = TASKS["hypergrid_gflownet"].default_budget
    DEFAULT_OPTIONS: ClassVar[Mapping[str, Any]] = TASKS["hypergrid_gflownet"].options

    def __init__(self, data_dir: str | None = None, **options: Any) -> None:
        super().__init__(data_dir, **options)
        self.opts = o = resolve_options(self.name, self.DEFAULT_OPTIONS, options)
        check_positive_int(
            o,
            "ndim",
            "hidden",
            "batch_size",
            "steps_per_epoch",
            "eval_trajectories",
        )
        if not isinstance(o["height"], int) or o["height"] < 2:
            raise SpecError("must be an integer >= 2", field="options.height")
        if o["height"] ** o["ndim"] > 1_000_000:
            raise SpecError("the grid has more than 1e6 states", field="options.ndim")
        if not (o["r0"] > 0 and o["r1"] >= 0 and o["r2"] >= 0):
            raise SpecError("need r0 > 0, r1 >= 0, r2 >= 0", field="options.r0")
        rewards = hypergrid_rewards(o["ndim"], o["height"], o["r0"], o["r1"], o["r2"])
        self.log_rewards = rewards.log().float()
        self.target = (rewards / rewards.sum()).flatten()
        self.max_steps = o["ndim"] * (o["height"] - 1) + 1

    def build_model(self, seed: int) -> HyperGridPolicy:
        """Return a policy initialised from ``seed`` (``log_z`` starts at 0)."""
        with seeded_init(seed):
            return HyperGridPolicy(self.opts["ndim"], self.opts["height"], self.opts["hidden"])

    def train_batches(self, seed: int, epoch: int) -> Iterator[torch.Tensor]:
        """Yield ``steps_per_epoch`` uniform tensors of shape (batch_size, max_steps)."""
        gen = torch_generator(seed, epoch)
        shape = (self.opts["steps_per_epoch"], self.opts["batch_size"], self.max_steps)
        yield from torch.rand(shape, generator=gen)

    def _tb_losses(self, model: nn.Module, uniforms: torch.Tensor) -> tuple[Any, torch.Tensor]:
        state, log_pf, log_pb = model.sample(uniforms)
        log_r = self.log_rewards.to(state.device)[tuple(state.T)]
        return state, (model.log_z + log_pf - log_r - log_pb) ** 2

    def loss(self, model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        """Trajectory-balance loss of trajectories sampled with ``batch``'s uniforms."""
        return self._tb_losses(model, batch)[1].mean()

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        """Return the exact ``l1`` and the TB ``loss`` on the split's fixed trajectories.

        Raises:
            ValueError: For a split other than ``val`` or ``test``.
        """
        if split not in _EVAL_SEEDS:
            raise ValueError(f"unknown split {split!r}; expected 'val' or 'test'")
        device = model.log_z.device
        gen = torch.Generator().manual_seed(_EVAL_SEEDS[split])
        u_loss = torch.rand(self.opts["eval_trajectories"], self.max_steps, generator=gen)
        loss = self._tb_losses(model, u_loss.to(device))[1].mean()
        return {"loss": float(loss), "l1": self.l1_distance(model)}

    def l1_distance(self, model: nn.Module) -> float:
        """Exact L1 distance between ``model``'s terminal distribution and the target."""
        p = model.terminal_distribution().flatten().cpu()  # type: ignore[operator]
        return float((p - self.target).abs().sum())
