"""A plain training loop over the Task methods, for the data-task tests.

Independent of ``run_trial`` on purpose: these tests check the tasks themselves.
"""

from __future__ import annotations

import torch

from workers.tasks.base import Task


def train_briefly(
    task: Task, *, steps_per_epoch: int, epochs: int, lr: float, seed: int = 0
) -> tuple[dict[str, float], dict[str, float]]:
    """Train with AdamW; return the validation metrics before and after."""
    torch.manual_seed(seed)
    model = task.build_model(seed)
    before = dict(task.evaluate(model, "val"))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    for epoch in range(1, epochs + 1):
        for i, batch in enumerate(task.train_batches(seed, epoch)):
            if i >= steps_per_epoch:
                break
            loss = task.loss(model, batch)
            assert torch.isfinite(loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    after = dict(task.evaluate(model, "val"))
    return before, after
