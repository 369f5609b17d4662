"""A small causal decoder-only Transformer (GPT), after nanoGPT's ``model.py``.

Token and learned position embeddings, pre-LayerNorm blocks of causal self-attention
(``F.scaled_dot_product_attention(is_causal=True)``, flash attention on GPUs) and a
GELU MLP, a final LayerNorm, and an output head tied to the token embedding. GPT-2
initialisation: N(0, 0.02) weights, zero biases, and residual output projections
scaled by 1/sqrt(2 * n_layer).

:meth:`GPTConfig.gpt2_124m` is GPT-2 small (124M parameters with the padded
vocabulary 50304). :func:`count_parameters` counts a configuration's parameters
analytically, without allocating it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class GPTConfig:
    """Shape of a :class:`GPT`.

    Attributes:
        vocab_size: Number of token ids.
        block_size: Longest sequence (number of learned positions).
        n_layer: Transformer blocks.
        n_head: Attention heads; must divide ``n_embd``.
        n_embd: Model width.
        d_ff: MLP hidden width; ``None`` means ``4 * n_embd``.
        dropout: Dropout on embeddings, attention weights and residual branches.
        bias: Whether Linear and LayerNorm layers have biases (GPT-2: yes).
    """

    vocab_size: int = 50304
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    d_ff: int | None = None
    dropout: float = 0.0
    bias: bool = True

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.d_ff is not None and self.d_ff < 1:
            raise ValueError(f"d_ff must be >= 1, got {self.d_ff}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def ffn_width(self) -> int:
        """The MLP hidden width (``d_ff`` or ``4 * n_embd``)."""
        return self.d_ff if self.d_ff is not None else 4 * self.n_embd

    @classmethod
    def gpt2_124m(cls, **overrides: object) -> GPTConfig:
        """GPT-2 small: 12 layers, 12 heads, width 768, block 1024, vocabulary 50304."""
        fields: dict[str, object] = {
            "vocab_size": 50304,
            "block_size": 1024,
            "n_layer": 12,
            "n_head": 12,
            "n_embd": 768,
            "dropout": 0.0,
            "bias": True,
        }
        fields.update(overrides)
        return cls(**fields)  # type: ignore[arg-type]


def count_parameters(config: GPTConfig) -> int:
    """Return the number of parameters of ``GPT(config)`` (tied head counted once)."""
    e, f, b = config.n_embd, config.ffn_width, int(config.bias)
    layer_norm = e + b * e
    attention = (e * 3 * e + b * 3 * e) + (e * e + b * e)
    mlp = (e * f + b * f) + (f * e + b * e)
    block = 2 * layer_norm + attention + mlp
    embeddings = config.vocab_size * e + config.block_size * e
    return embeddings + config.n_layer * block + layer_norm


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with one fused QKV projection."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over ``x`` of shape (batch, time, n_embd), each position to its past."""
        bsz, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        shape = (bsz, t, self.n_head, c // self.n_head)
        q, k, v = (z.view(shape).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )
        y = y.transpose(1, 2).contiguous().view(bsz, t, c)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward network with a GELU."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, config.ffn_width, bias=config.bias)
        self.c_proj = nn.Linear(config.ffn_width, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the MLP."""
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-LayerNorm Transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """A causal language model mapping token ids (batch, time) to logits (batch, time, vocab).

    Args:
        config: The model's shape.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying
        self.apply(self._init_weights)
        residual_std = 0.02 / math.sqrt(2 * config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=residual_std)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Return next-token logits for every position of ``idx``.

        Args:
            idx: Token ids, shape (batch, time), ``time <= block_size``.

        Returns:
            Logits of shape (batch, time, vocab_size).

        Raises:
            ValueError: If the sequence is longer than ``block_size``.
        """
        t = idx.shape[1]
        if t > self.config.block_size:
            raise ValueError(f"sequence length {t} exceeds block_size {self.config.block_size}")
        pos = torch.arange(t, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def lm_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of next-token ``logits`` (batch, time, vocab) against ``targets``."""
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), reduction=reduction
    )
