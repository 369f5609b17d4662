"""``wikitext2_lm``: word-level WikiText-2 language modelling with a small causal GPT.

Data: the standard ``wiki.train.tokens``, ``wiki.valid.tokens`` and ``wiki.test.tokens``
files (the "wikitext-2-v1" release, already tokenised, rare words replaced by
``<unk>``), read from ``data_dir`` or ``data_dir/wikitext-2``. Each line is split on
whitespace and ends with ``<eos>`` (as PyTorch's word_language_model example does). The
vocabulary is built from the training split only, sorted by decreasing count then
alphabetically; unknown validation/test words map to ``<unk>``.

Model: the paper used ``nn.Transformer`` with 2 encoder + 2 decoder layers, d_model
128, 8 heads, FFN 256, dropout 0.2, on 64-token chunks. That encoder-decoder fed the
same sequence to both halves and could leak the next token through cross-attention
(PAPER.md 3.2 b). We keep its size but make it an honest causal LM: a decoder-only GPT
with 4 layers (2 + 2), width 128, 8 heads, FFN 256, dropout 0.2, context 64, tied
embeddings. Its non-embedding parameters (~0.53M) are close to the paper's (~0.66M).

Evaluation reads the first ``eval_tokens`` tokens of a split (``None``: all of it) in
fixed contiguous windows, so it does not depend on the seed. Metrics: ``loss`` (nats
per word) and ``ppl``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import torch

from labcore.budget import Budget
from workers.tasks._data import check_positive_int, find_data_dir
from workers.tasks.causal_lm import CausalLMTask
from workers.tasks.registry import TASKS

SPLIT_FILES = {"train": "wiki.train.tokens", "val": "wiki.valid.tokens", "test": "wiki.test.tokens"}
SUBDIRS = ("wikitext-2", "wikitext-2-v1")
EOS, UNK = "<eos>", "<unk>"


def tokenize_lines(lines: Iterable[str]) -> list[str]:
    """Split lines on whitespace, ending each line with ``<eos>``."""
    words: list[str] = []
    for line in lines:
        words.extend(line.split())
        words.append(EOS)
    return words


def build_vocab(words: Iterable[str]) -> dict[str, int]:
    """Map each word to an id: by decreasing count, ties alphabetical; ``<unk>`` always in."""
    counts = Counter(words)
    counts.setdefault(UNK, 0)
    counts.setdefault(EOS, 0)
    ordered = sorted(counts, key=lambda w: (-counts[w], w))
    return {w: i for i, w in enumerate(ordered)}


def encode(words: Iterable[str], vocab: Mapping[str, int]) -> torch.Tensor:
    """Return the ids of ``words`` (``<unk>`` for words outside ``vocab``) as int64."""
    unk = vocab[UNK]
    return torch.tensor([vocab.get(w, unk) for w in words], dtype=torch.int64)


class WikiText2LMTask(CausalLMTask):
    """Word-level WikiText-2 with a 4-layer causal GPT (the paper's model size).

    Options (defaults in :attr:`DEFAULT_OPTIONS`):
        batch_size, block_size: Training windows per step and their length (paper: 32, 64).
        n_layer, n_head, n_embd, d_ff, dropout, bias: The GPT's shape.
        max_train_tokens: Use only the first N training tokens (``None``: all ~2.1M).
        eval_tokens: Validation/test tokens scored (``None``: the whole split, ~217k/245k).
        eval_batch_size: Windows per evaluation forward pass.
    """

    name: ClassVar[str] = "wikitext2_lm"
    # Real WikiText-2 costs ~1-3 s per step on two CPU cores (the 33k-word softmax).
    default_budget: ClassVar[Budget] = TASKS["wikitext2_lm"].default_budget
    DEFAULT_OPTIONS: ClassVar[Mapping[str, Any]] = TASKS["wikitext2_lm"].options
    # The paper-scale setting: every token evaluated (budget: Budget(epochs=100)).
    PAPER_OPTIONS: ClassVar[Mapping[str, Any]] = {"eval_tokens": None}

    def __init__(self, data_dir: str | None = None, **options: Any) -> None:
        super().__init__(data_dir, **options)
        check_positive_int(self.opts, "max_train_tokens", allow_none=True)
        self.folder = find_data_dir(data_dir, self.name, list(SPLIT_FILES.values()), SUBDIRS)
        self._vocab: dict[str, int] | None = None
        self._train_words: list[str] | None = None

    def _read_words(self, split: str) -> list[str]:
        path = self.folder / SPLIT_FILES[split]
        with path.open(encoding="utf-8") as f:
            return tokenize_lines(f)

    @property
    def vocab(self) -> dict[str, int]:
        """Word -> id, built from the training split on first use."""
        if self._vocab is None:
            self._train_words = self._read_words("train")
            self._vocab = build_vocab(self._train_words)
        return self._vocab

    def vocab_size(self) -> int:
        """Size of the training vocabulary (33,278 for the real WikiText-2)."""
        return len(self.vocab)

    def load_stream(self, split: str) -> torch.Tensor:
        """The ids of ``split``'s words (training tokens capped by ``max_train_tokens``)."""
        vocab = self.vocab
        if split == "train":
            words = self._train_words or self._read_words("train")
            self._train_words = None  # the tensor replaces the word list
            limit = self.opts["max_train_tokens"]
            return encode(words[:limit] if limit is not None else words, vocab)
        return encode(self._read_words(split), vocab)
