"""The shared base of the causal language-modelling tasks.

A subclass supplies the model shape (:meth:`CausalLMTask.gpt_config`) and its token
streams (:meth:`CausalLMTask.stream`: one 1-D tensor of token ids per split). This base
supplies the rest of the :class:`~workers.tasks.base.Task` contract:

* training batches: each epoch cuts the training stream into non-overlapping windows
  of ``block_size + 1`` tokens from a random offset, shuffles them, and yields batches
  of ``batch_size`` (inputs, targets) pairs, all fixed by ``(seed, epoch)``; an
  incomplete last batch is dropped (unless it is the only one), so shapes stay fixed;
* evaluation: the first ``eval_tokens`` targets of the split (all if ``None``), scored
  in fixed contiguous windows of ``block_size`` (context restarts at each window), so
  the numbers do not depend on the seed; metrics ``loss`` (mean cross-entropy, nats per
  token) and ``ppl`` (``exp(loss)``).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from labcore.errors import SpecError
from workers.tasks._data import (
    SALT_ORDER,
    check_positive_int,
    model_device,
    resolve_options,
    seeded_init,
    torch_generator,
)
from workers.tasks.base import Task
from workers.tasks.gpt_model import GPT, GPTConfig, lm_loss

LM_METRICS = ("train_loss", "val_loss", "val_ppl", "test_loss", "test_ppl")

# Options every causal LM task understands; subclasses extend DEFAULT_OPTIONS.
MODEL_OPTIONS = ("block_size", "n_layer", "n_head", "n_embd", "d_ff", "dropout", "bias")


class CausalLMTask(Task):
    """A next-token prediction task with a :class:`~workers.tasks.gpt_model.GPT` model."""

    metrics: ClassVar[tuple[str, ...]] = LM_METRICS
    DEFAULT_OPTIONS: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, data_dir: str | None = None, **options: Any) -> None:
        super().__init__(data_dir, **options)
        self.opts = resolve_options(self.name, self.DEFAULT_OPTIONS, options)
        check_positive_int(self.opts, "batch_size", "eval_batch_size")
        check_positive_int(self.opts, "eval_tokens", allow_none=True)
        self._streams: dict[str, torch.Tensor] = {}

    # -- what a subclass provides -------------------------------------------------------

    @abc.abstractmethod
    def vocab_size(self) -> int:
        """The number of token ids of the model."""

    @abc.abstractmethod
    def load_stream(self, split: str) -> torch.Tensor:
        """Return the 1-D token-id tensor of ``split`` (``train``, ``val`` or ``test``)."""

    # -- shared machinery ---------------------------------------------------------------

    def stream(self, split: str) -> torch.Tensor:
        """Return (and cache) the token stream of ``split``.

        Raises:
            ValueError: For a split other than ``train``, ``val`` or ``test``.
            SpecError: If the stream is shorter than one window of ``block_size + 1``.
        """
        if split not in ("train", "val", "test"):
            raise ValueError(f"unknown split {split!r}; expected 'train', 'val' or 'test'")
        if split not in self._streams:
            tokens = self.load_stream(split)
            if split == "train" and tokens.numel() < self.opts["block_size"] + 1:
                raise SpecError(
                    f"the {split} split has {tokens.numel()} tokens, fewer than "
                    f"block_size + 1 = {self.opts['block_size'] + 1}",
                    field="options.block_size",
                )
            if tokens.numel() < 2:
                raise SpecError(f"the {split} split has fewer than 2 tokens")
            self._streams[split] = tokens
        return self._streams[split]

    def gpt_config(self) -> GPTConfig:
        """The model shape from the options and :meth:`vocab_size`.

        Raises:
            SpecError: If the options do not form a valid model.
        """
        try:
            return GPTConfig(
                vocab_size=self.vocab_size(),
                **{k: self.opts[k] for k in MODEL_OPTIONS},
            )
        except (ValueError, TypeError) as exc:
            raise SpecError(str(exc), field="options") from exc

    def build_model(self, seed: int) -> nn.Module:
        """Return a GPT initialised deterministically from ``seed``."""
        config = self.gpt_config()
        with seeded_init(seed):
            return GPT(config)

    def train_batches(self, seed: int, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (inputs, targets) batches of int64 ids, shape (batch_size, block_size)."""
        tokens = self.stream("train")
        block, batch = self.opts["block_size"], self.opts["batch_size"]
        gen = torch_generator(seed, epoch, SALT_ORDER)
        offset = int(torch.randint(0, block, (1,), generator=gen))
        n_windows = (tokens.numel() - 1 - offset) // block
        if n_windows < 1:
            offset, n_windows = 0, (tokens.numel() - 1) // block
        starts = offset + block * torch.randperm(n_windows, generator=gen)
        span = torch.arange(block + 1)
        n_batches = max(1, n_windows // batch)
        for i in range(n_batches):
            windows = tokens[starts[i * batch : (i + 1) * batch, None] + span].long()
            yield windows[:, :-1], windows[:, 1:]

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Mean next-token cross-entropy on ``batch``."""
        inputs, targets = batch
        return lm_loss(model(inputs), targets)

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        """Return ``{"loss", "ppl"}`` on the fixed evaluation windows of ``split``."""
        tokens = self.stream(split)
        limit = self.opts["eval_tokens"]
        if limit is not None:
            tokens = tokens[: limit + 1]
        block, step = self.opts["block_size"], self.opts["eval_batch_size"]
        n_full = (tokens.numel() - 1) // block
        starts = torch.arange(n_full) * block
        span = torch.arange(block + 1)

        def windows() -> Iterator[torch.Tensor]:
            for i in range(0, n_full, step):
                yield tokens[starts[i : i + step, None] + span]
            rest = tokens[n_full * block :]
            if rest.numel() > 1:
                yield rest[None]

        return score_windows(model, windows())


@torch.no_grad()
def score_windows(model: nn.Module, windows: Iterable[torch.Tensor]) -> dict[str, float]:
    """Score token windows with ``model``: every window predicts its own tokens 1..L.

    Args:
        model: A causal LM mapping ids (batch, time) to logits (batch, time, vocab).
        windows: Integer tensors of shape (n, L + 1), on any device.

    Returns:
        ``{"loss": mean cross-entropy per predicted token, "ppl": exp(loss)}``.
    """
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        total = torch.zeros((), dtype=torch.float64, device=device)
        count = 0
        for w in windows:
            w = w.to(device=device, dtype=torch.long, non_blocking=True)
            total += lm_loss(model(w[:, :-1]), w[:, 1:], "sum").double()
            count += w[:, 1:].numel()
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("no tokens to evaluate")
    mean = float(total) / count
    return {"loss": mean, "ppl": math.exp(mean) if mean < 700 else math.inf}
