"""``stdlib_char_lm``: a byte-level GPT on the Python standard library's own source.

The corpus is real text available offline wherever Python runs: a fixed tuple of
standard-library modules (:data:`STDLIB_FILES`), read in sorted order from
``sysconfig.get_paths()["stdlib"]`` (or from the ``source_dir`` option, e.g. a copy of
one Python's ``Lib/`` to make the corpus independent of the interpreter; ``data_dir``
is ignored, as this task needs no downloaded data). Files that do not exist in this Python are
skipped. The vocabulary is the 256 byte values, stable across Python versions.

Split (fixed, seed-independent): each file is cut into its first 90% (train), next 5%
(val) and last 5% (test), so every split sees every file; the splits are concatenated
in file order. ``max_chars`` caps the corpus by keeping the first
``max_chars // n_files`` bytes of each file before splitting.

The default model and budget are sized so a trial takes seconds on two CPU cores.
"""

from __future__ import annotations

import sysconfig
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch

from labcore.budget import Budget
from labcore.errors import NotFoundError
from workers.tasks._data import check_positive_int
from workers.tasks.causal_lm import CausalLMTask
from workers.tasks.registry import TASKS

STDLIB_FILES: tuple[str, ...] = tuple(
    sorted(
        (
            "abc.py",
            "argparse.py",
            "ast.py",
            "base64.py",
            "bisect.py",
            "calendar.py",
            "collections/__init__.py",
            "contextlib.py",
            "copy.py",
            "csv.py",
            "dataclasses.py",
            "difflib.py",
            "enum.py",
            "fractions.py",
            "functools.py",
            "heapq.py",
            "inspect.py",
            "json/decoder.py",
            "json/encoder.py",
            "logging/__init__.py",
            "operator.py",
            "os.py",
            "pathlib.py",
            "pprint.py",
            "queue.py",
            "random.py",
            "shlex.py",
            "shutil.py",
            "statistics.py",
            "string.py",
            "tempfile.py",
            "textwrap.py",
            "threading.py",
            "tokenize.py",
            "traceback.py",
            "typing.py",
            "uuid.py",
            "warnings.py",
            "weakref.py",
            "zipfile.py",
        )
    )
)

SPLIT_FRACTIONS = {"train": (0.0, 0.9), "val": (0.9, 0.95), "test": (0.95, 1.0)}


def stdlib_dir() -> Path:
    """The directory of this interpreter's pure-Python standard library."""
    return Path(sysconfig.get_paths()["stdlib"])


def read_corpus(root: Path, max_chars: int | None = None) -> dict[str, bytes]:
    """Read the corpus files that exist under ``root``, in sorted order.

    Args:
        root: Folder holding the files of :data:`STDLIB_FILES`.
        max_chars: Total byte budget, split evenly over the files found (``None``: all).

    Returns:
        Relative path -> bytes (truncated to the per-file share).

    Raises:
        NotFoundError: If none of the files exists under ``root``.
    """
    found = [name for name in STDLIB_FILES if (root / name).is_file()]
    if not found:
        raise NotFoundError(
            f"task 'stdlib_char_lm': none of the {len(STDLIB_FILES)} corpus files "
            f"({', '.join(STDLIB_FILES[:3])}, ...) exists under {root}"
        )
    share = None if max_chars is None else max(1, max_chars // len(found))
    return {name: (root / name).read_bytes()[:share] for name in found}


def split_corpus(files: Mapping[str, bytes], split: str) -> bytes:
    """Concatenate the ``split`` part (train 90%, val 5%, test 5%) of every file."""
    lo, hi = SPLIT_FRACTIONS[split]
    parts = []
    for data in files.values():
        n = len(data)
        parts.append(data[round(lo * n) : round(hi * n)])
    return b"".join(parts)


class StdlibCharLMTask(CausalLMTask):
    """Byte-level language modelling of Python standard-library source files.

    Options (defaults in :attr:`DEFAULT_OPTIONS`):
        source_dir: Folder of the corpus files (``None``: this interpreter's stdlib).
        max_chars: Corpus size cap in bytes (``None``: the whole ~1.6 MB corpus).
        batch_size, block_size: Training windows per step and their length.
        n_layer, n_head, n_embd, d_ff, dropout, bias: The GPT's shape.
        eval_tokens: Validation/test targets scored (``None``: the whole split).
        eval_batch_size: Windows per evaluation forward pass.
    """

    name: ClassVar[str] = "stdlib_char_lm"
    default_budget: ClassVar[Budget] = TASKS["stdlib_char_lm"].default_budget
    DEFAULT_OPTIONS: ClassVar[Mapping[str, Any]] = TASKS["stdlib_char_lm"].options

    def __init__(self, data_dir: str | None = None, **options: Any) -> None:
        super().__init__(data_dir, **options)
        check_positive_int(self.opts, "max_chars", allow_none=True)
        source = self.opts["source_dir"]
        self.root = Path(source).expanduser() if source is not None else stdlib_dir()
        self._files: dict[str, bytes] | None = None

    def vocab_size(self) -> int:
        """Byte values: 256."""
        return 256

    def corpus_files(self) -> dict[str, bytes]:
        """The corpus, read once (relative path -> bytes, truncated by ``max_chars``)."""
        if self._files is None:
            self._files = read_corpus(self.root, self.opts["max_chars"])
        return self._files

    def load_stream(self, split: str) -> torch.Tensor:
        """The bytes of ``split`` as a uint8 tensor."""
        data = split_corpus(self.corpus_files(), split)
        if not data:
            return torch.zeros(0, dtype=torch.uint8)
        return torch.frombuffer(bytearray(data), dtype=torch.uint8)
