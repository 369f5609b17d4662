"""``gpt_pretrain``: GPT-2-style pre-training on pre-tokenised uint16 token shards.

Data (in ``data_dir``): ``train*.bin`` and ``val*.bin`` shards, optionally
``test*.bin``; a name containing ``_train``/``_val``/``_test`` is found too
(llm.c's ``fineweb_train_000001.bin``). Shards of one split are read in sorted name
order as one stream, through NumPy memmaps, so shards larger than memory work. Two
formats are read (``format`` option, ``"auto"`` by default):

* **llm.c**: a 1024-byte header of 256 little-endian int32 (``[0]`` = magic 20240520,
  ``[1]`` = version 1, ``[2]`` = the token count), then the tokens as little-endian
  uint16;
* **raw** (nanoGPT's ``train.bin``): the whole file is little-endian uint16 tokens.

``auto`` reads a file as llm.c when its first int32 is the magic number, else as raw.

Training draws ``batch_size`` random windows of ``block_size + 1`` tokens per step,
fixed by ``(seed, epoch)``; an epoch is ``steps_per_epoch`` steps. Validation and test
are fixed windows: ``test*.bin`` when present, otherwise the last ``test_fraction`` of
the validation stream is held out as the test split. ``eval_tokens`` caps the tokens
scored per split (windows evenly spaced over the split), ``None`` scores all.

Model sizes: ``size="tiny"`` (default, CPU-friendly: 2 layers, 4 heads, width 64,
context 64; 3.3M parameters with GPT-2's vocabulary, nearly all in the embedding) or
``"124m"`` (GPT-2 small: 12 layers, 12 heads, width 768, context 1024);
``n_layer``/``n_head``/``n_embd``/``block_size``/``d_ff`` override the preset.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from labcore.budget import Budget
from labcore.errors import NotFoundError, SpecError
from workers.tasks._data import SALT_ORDER, DataFormatError, check_positive_int, torch_generator
from workers.tasks.causal_lm import CausalLMTask, score_windows
from workers.tasks.registry import TASKS

LLMC_MAGIC = 20240520
LLMC_VERSION = 1
LLMC_HEADER_INTS = 256
LLMC_HEADER_BYTES = 4 * LLMC_HEADER_INTS

SIZES: dict[str, dict[str, int]] = {
    "tiny": {"n_layer": 2, "n_head": 4, "n_embd": 64, "block_size": 64},
    "124m": {"n_layer": 12, "n_head": 12, "n_embd": 768, "block_size": 1024},
}


def open_shard(path: Path, fmt: str = "auto") -> np.ndarray:
    """Memory-map the tokens of one shard.

    Args:
        path: The ``.bin`` file.
        fmt: ``"auto"``, ``"llmc"`` or ``"raw"`` (see the module docstring).

    Returns:
        A read-only uint16 array of the shard's tokens.

    Raises:
        DataFormatError: For a bad llm.c header, a truncated file, or an odd byte count.
    """
    size = path.stat().st_size
    header = np.fromfile(path, dtype="<i4", count=LLMC_HEADER_INTS) if size >= 4 else None
    is_llmc = header is not None and int(header[0]) == LLMC_MAGIC
    if fmt == "llmc" or (fmt == "auto" and is_llmc):
        if header is None or len(header) < LLMC_HEADER_INTS or not is_llmc:
            raise DataFormatError(f"{path}: not an llm.c token shard (no magic {LLMC_MAGIC})")
        if int(header[1]) != LLMC_VERSION:
            raise DataFormatError(f"{path}: llm.c shard version {int(header[1])} unsupported")
        n_tokens = int(header[2])
        if LLMC_HEADER_BYTES + 2 * n_tokens > size:
            raise DataFormatError(
                f"{path}: header promises {n_tokens} tokens but the file holds "
                f"{(size - LLMC_HEADER_BYTES) // 2}"
            )
        offset = LLMC_HEADER_BYTES
    else:
        if size % 2:
            raise DataFormatError(f"{path}: {size} bytes is not a whole number of uint16 tokens")
        n_tokens, offset = size // 2, 0
    if n_tokens == 0:
        return np.zeros(0, dtype=np.uint16)
    return np.memmap(path, dtype="<u2", mode="r", offset=offset, shape=(n_tokens,))


def find_shards(folder: Path, split: str) -> list[Path]:
    """Return the sorted ``*.bin`` files of ``split`` (``train``, ``val``, ``test``)."""
    found = {p for p in folder.glob(f"{split}*.bin")} | {p for p in folder.glob(f"*_{split}*.bin")}
    return sorted(p for p in found if p.is_file())


class TokenStream:
    """Several shards read as one stream; windows may cross shard boundaries.

    Args:
        shards: uint16 token arrays, in order.
    """

    def __init__(self, shards: Sequence[np.ndarray]) -> None:
        self.shards = [s for s in shards if len(s)]
        self.bounds = np.cumsum([0, *(len(s) for s in self.shards)])

    def __len__(self) -> int:
        return int(self.bounds[-1])

    def read(self, start: int, length: int) -> np.ndarray:
        """Return tokens ``[start, start + length)`` as int64."""
        out = np.empty(length, dtype=np.int64)
        filled = 0
        shard = int(np.searchsorted(self.bounds, start, side="right")) - 1
        pos = start - int(self.bounds[shard])
        while filled < length:
            piece = self.shards[shard][pos : pos + length - filled]
            out[filled : filled + len(piece)] = piece
            filled += len(piece)
            shard, pos = shard + 1, 0
        return out

    def windows(self, starts: Sequence[int], length: int) -> torch.Tensor:
        """Stack the windows ``[s, s + length)`` for every ``s`` in ``starts``."""
        return torch.from_numpy(np.stack([self.read(int(s), length) for s in starts]))


class GPTPretrainTask(CausalLMTask):
    """GPT-2-style next-token pre-training on uint16 token shards.

    Options (defaults in :attr:`DEFAULT_OPTIONS`):
        size: Model preset, ``"tiny"`` or ``"124m"``.
        vocab_size: Embedding rows (GPT-2: 50257 tokens, padded to 50304).
        block_size, n_layer, n_head, n_embd, d_ff: Override the preset when set.
        dropout, bias: The GPT's dropout and biases.
        batch_size: Windows per step.
        steps_per_epoch: Steps that make one "epoch".
        eval_tokens: Tokens scored per evaluation split (``None``: all).
        eval_batch_size: Windows per evaluation forward pass.
        test_fraction: Tail of the validation stream held out as test when there are
            no ``test*.bin`` shards.
        format: ``"auto"``, ``"llmc"`` or ``"raw"``.
    """

    name: ClassVar[str] = "gpt_pretrain"
    default_budget: ClassVar[Budget] = TASKS["gpt_pretrain"].default_budget
    DEFAULT_OPTIONS: ClassVar[Mapping[str, Any]] = TASKS["gpt_pretrain"].options

    def __init__(self, data_dir: str | None = None, **options: Any) -> None:
        super().__init__(data_dir, **options)
        opts = self.opts
        if opts["size"] not in SIZES:
            raise SpecError(f"must be one of {sorted(SIZES)}", field="options.size")
        for key, value in SIZES[opts["size"]].items():
            if opts[key] is None:
                opts[key] = value
        check_positive_int(opts, "vocab_size", "block_size", "steps_per_epoch")
        if opts["format"] not in ("auto", "llmc", "raw"):
            raise SpecError("must be 'auto', 'llmc' or 'raw'", field="options.format")
        if not 0.0 < opts["test_fraction"] < 1.0:
            raise SpecError("must be in (0, 1)", field="options.test_fraction")
        if data_dir is None:
            raise NotFoundError("task 'gpt_pretrain' needs data_dir with train*.bin, val*.bin")
        self.folder = Path(data_dir).expanduser()
        self.paths = {split: find_shards(self.folder, split) for split in ("train", "val", "test")}
        missing = [f"{s}*.bin" for s in ("train", "val") if not self.paths[s]]
        if missing:
            raise NotFoundError(
                f"task 'gpt_pretrain': no {' or '.join(missing)} token shards in {self.folder}"
            )
        self._token_streams: dict[str, TokenStream] = {}

    def vocab_size(self) -> int:
        """The ``vocab_size`` option."""
        return int(self.opts["vocab_size"])

    def load_stream(self, split: str) -> torch.Tensor:
        """Not used: shards are read window by window through :meth:`token_stream`."""
        raise NotImplementedError("gpt_pretrain reads windows from memmapped shards")

    def token_stream(self, split: str) -> TokenStream:
        """The memmapped stream of ``train``, ``val`` or ``test`` shards."""
        if split not in self._token_streams:
            shards = [open_shard(p, self.opts["format"]) for p in self.paths[split]]
            self._token_streams[split] = TokenStream(shards)
        return self._token_streams[split]

    def eval_region(self, split: str) -> tuple[TokenStream, int, int]:
        """The stream and ``[lo, hi)`` token range that ``split`` evaluates on.

        Raises:
            ValueError: For a split other than ``val`` or ``test``.
            SpecError: If the range is shorter than one window.
        """
        if split not in ("val", "test"):
            raise ValueError(f"unknown split {split!r}; expected 'val' or 'test'")
        if self.paths["test"]:
            stream = self.token_stream(split)
            lo, hi = 0, len(stream)
        else:
            stream = self.token_stream("val")
            cut = int(len(stream) * (1.0 - self.opts["test_fraction"]))
            lo, hi = (0, cut) if split == "val" else (cut, len(stream))
        if hi - lo < self.opts["block_size"] + 1:
            raise SpecError(
                f"the {split} split has {hi - lo} tokens, fewer than block_size + 1",
                field="options.block_size",
            )
        return stream, lo, hi

    def _check_ids(self, batch: torch.Tensor) -> None:
        if int(batch.max()) >= self.opts["vocab_size"]:
            raise DataFormatError(
                f"token id {int(batch.max())} in {self.folder} is >= vocab_size "
                f"{self.opts['vocab_size']}"
            )

    def train_batches(self, seed: int, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``steps_per_epoch`` batches of random windows, fixed by ``(seed, epoch)``."""
        stream = self.token_stream("train")
        block, batch = self.opts["block_size"], self.opts["batch_size"]
        if len(stream) < block + 1:
            raise SpecError(
                f"the train split has {len(stream)} tokens, fewer than block_size + 1",
                field="options.block_size",
            )
        gen = torch_generator(seed, epoch, SALT_ORDER)
        for _ in range(self.opts["steps_per_epoch"]):
            starts = torch.randint(0, len(stream) - block, (batch,), generator=gen)
            windows = stream.windows(starts.tolist(), block + 1)
            self._check_ids(windows)
            yield windows[:, :-1], windows[:, 1:]

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        """``{"loss", "ppl"}`` on fixed windows of ``split`` (evenly spaced if capped)."""
        stream, lo, hi = self.eval_region(split)
        block, step = self.opts["block_size"], self.opts["eval_batch_size"]
        n_max = (hi - lo - 1) // block
        limit = self.opts["eval_tokens"]
        n = n_max if limit is None else max(1, min(n_max, math.ceil(limit / block)))
        if n == n_max:
            starts = [lo + i * block for i in range(n)]
        else:
            starts = np.linspace(lo, hi - block - 1, n).round().astype(np.int64).tolist()

        def windows() -> Iterator[torch.Tensor]:
            for i in range(0, n, step):
                w = stream.windows(starts[i : i + step], block + 1)
                self._check_ids(w)
                yield w

        return score_windows(model, windows())
