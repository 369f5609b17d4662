"""Weight-decay grouping: the one rule every optimizer in the registry uses.

Decay applies to weight matrices and convolution kernels only. Biases, normalisation
weights and other vectors or scalars (anything with fewer than two dimensions, e.g. a
GFlowNet's ``log Z``) are not decayed: shrinking a LayerNorm gain or a bias towards zero
is a regulariser nobody asked for. Embedding tables are decayed by default (as in
nanoGPT); ``decay_embeddings=False`` exempts them.

The split is always made, even when ``weight_decay`` is 0, so every optimizer sees the
same group structure (this matters to VRAdam's ``norm_scope="group"`` variant, whose
gate is computed per group).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn


def param_groups(
    model: nn.Module, weight_decay: float | None, *, decay_embeddings: bool = True
) -> list[dict[str, Any]]:
    """Split ``model``'s trainable parameters into a decayed and a non-decayed group.

    Args:
        model: The model; frozen parameters (``requires_grad=False``) are left out and
            shared (tied) parameters appear once.
        weight_decay: The decay of the decayed group (the other group gets 0);
            ``None`` leaves the decayed group to the optimizer's own default.
        decay_embeddings: Whether ``nn.Embedding`` weights are decayed.

    Returns:
        Up to two parameter groups (``{"params": [...], "weight_decay": ...}``) in the
        order decay, no-decay; an empty group is omitted. Each group also carries a
        ``"group_name"`` (``"decay"`` or ``"no_decay"``) for logging.

    Raises:
        ValueError: If the model has no trainable parameter.
    """
    from torch import nn

    embedding_ids = set()
    if not decay_embeddings:
        for module in model.modules():
            if isinstance(module, nn.Embedding | nn.EmbeddingBag):
                embedding_ids.add(id(module.weight))
    decay, no_decay = [], []
    for _, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim < 2 or id(param) in embedding_ids:
            no_decay.append(param)
        else:
            decay.append(param)
    if not decay and not no_decay:
        raise ValueError(f"{type(model).__name__} has no trainable parameter")
    decayed: dict[str, Any] = {"params": decay, "group_name": "decay"}
    if weight_decay is not None:
        decayed["weight_decay"] = weight_decay
    groups = [decayed, {"params": no_decay, "weight_decay": 0.0, "group_name": "no_decay"}]
    return [g for g in groups if g["params"]]
