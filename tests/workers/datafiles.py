"""Write tiny datasets in the real on-disk formats, with learnable synthetic content.

Used by the data-task tests and by the task conformance suite. Nothing is downloaded.
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np

# One colour per class (RGB), far apart, so a CNN separates the classes quickly.
_CLASS_COLOURS = np.array(
    [
        [230, 25, 75],
        [60, 180, 75],
        [255, 225, 25],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [128, 128, 0],
        [0, 0, 128],
    ],
    dtype=np.float64,
)


def cifar_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Class-coloured noisy images with a left-to-right gradient, uint8 (N, 3072)."""
    n = len(labels)
    base = _CLASS_COLOURS[labels][:, :, None, None]  # (N, 3, 1, 1)
    ramp = np.linspace(-40.0, 40.0, 32)[None, None, None, :]  # asymmetric: flips show
    img = base + ramp + rng.normal(0.0, 25.0, size=(n, 3, 32, 32))
    return np.clip(img, 0, 255).astype(np.uint8).reshape(n, 3072)


def _write_cifar_batch(path: Path, label: str, labels: np.ndarray, data: np.ndarray) -> None:
    batch = {
        b"batch_label": label.encode(),
        b"labels": [int(v) for v in labels],
        b"data": data,
        b"filenames": [f"img_{i:05d}.png".encode() for i in range(len(labels))],
    }
    with path.open("wb") as f:
        pickle.dump(batch, f, protocol=2)  # the protocol of the official (Python 2) files


def write_cifar10(
    directory: str | Path, n_per_batch: int = 40, n_test: int | None = None, seed: int = 0
) -> Path:
    """Write ``data_batch_1..5`` and ``test_batch`` under ``directory/cifar-10-batches-py``.

    Args:
        directory: The data directory to create files in.
        n_per_batch: Images per training batch (the real files hold 10,000).
        n_test: Test images (default ``n_per_batch``).
        seed: Content seed.

    Returns:
        ``directory``, to pass as the task's ``data_dir``.
    """
    root = Path(directory)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(1, 6):
        labels = rng.integers(0, 10, size=n_per_batch)
        path = folder / f"data_batch_{i}"
        _write_cifar_batch(path, f"training batch {i} of 5", labels, cifar_images(labels, rng))
    labels = rng.integers(0, 10, size=n_test or n_per_batch)
    _write_cifar_batch(
        folder / "test_batch", "testing batch 1 of 1", labels, cifar_images(labels, rng)
    )
    meta = {b"label_names": [b"c%d" % i for i in range(10)], b"num_cases_per_batch": n_per_batch}
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump(meta, f, protocol=2)
    return root


_SUBJECTS = ("the cat", "the dog", "a bird", "the old man", "my sister", "the river")
_VERBS = ("sees", "follows", "likes", "finds", "crosses", "remembers")
_OBJECTS = ("the house", "a tree", "the small boat", "the city", "a song", "the bridge")
_ENDINGS = ("in the morning", "at night", "near the sea", "with <unk>", "again", "")


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS), rng.choice(_ENDINGS)]
    return " ".join(w for w in words if w) + " ."


def _wiki_lines(n_paragraphs: int, rng: random.Random, extra_word: str | None) -> list[str]:
    lines = []
    for p in range(n_paragraphs):
        lines += [" \n", f" = Section {p % 7} = \n", " \n"]
        sentences = [_sentence(rng) for _ in range(rng.randint(2, 5))]
        if extra_word is not None and p % 3 == 0:
            sentences.append(f"{extra_word} @-@ {extra_word} .")
        lines.append(" " + " ".join(sentences) + " \n")
    return lines


def write_wikitext2(
    directory: str | Path,
    n_train: int = 120,
    n_valid: int = 20,
    n_test: int = 20,
    seed: int = 0,
) -> Path:
    """Write ``wiki.{train,valid,test}.tokens`` under ``directory/wikitext-2``.

    The text follows the real files' layout (leading spaces, `` = Heading = `` lines,
    blank lines, ``<unk>`` tokens, ``@-@``) and a small grammar, so a model can learn
    it. Validation and test contain a word absent from training (``zyzzyva``).

    Args:
        directory: The data directory to create files in.
        n_train: Paragraphs in the training file (valid/test: ``n_valid``/``n_test``).
        n_valid: Paragraphs in the validation file.
        n_test: Paragraphs in the test file.
        seed: Content seed.

    Returns:
        ``directory``, to pass as the task's ``data_dir``.
    """
    root = Path(directory)
    folder = root / "wikitext-2"
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for name, n, extra in (
        ("wiki.train.tokens", n_train, None),
        ("wiki.valid.tokens", n_valid, "zyzzyva"),
        ("wiki.test.tokens", n_test, "zyzzyva"),
    ):
        (folder / name).write_text("".join(_wiki_lines(n, rng, extra)), encoding="utf-8")
    return root


def markov_tokens(n: int, vocab_size: int, rng: np.random.Generator) -> np.ndarray:
    """A learnable token sequence: mostly ``next = (5 * prev + 3) % vocab``, 10% noise."""
    out = np.empty(n, dtype=np.uint16)
    noise = rng.random(n) < 0.1
    random_ids = rng.integers(0, vocab_size, size=n)
    prev = 0
    for i in range(n):
        prev = int(random_ids[i]) if noise[i] else (5 * prev + 3) % vocab_size
        out[i] = prev
    return out


def write_shard(path: Path, tokens: np.ndarray, fmt: str = "llmc") -> Path:
    """Write one uint16 token shard, in llm.c's format (header) or raw."""
    with path.open("wb") as f:
        if fmt == "llmc":
            header = np.zeros(256, dtype="<i4")
            header[:3] = (20240520, 1, len(tokens))
            f.write(header.tobytes())
        f.write(np.asarray(tokens, dtype="<u2").tobytes())
    return path


def write_token_shards(
    directory: str | Path,
    n_train_shards: int = 2,
    tokens_per_shard: int = 4096,
    vocab_size: int = 64,
    fmt: str = "llmc",
    with_test: bool = False,
    seed: int = 0,
) -> Path:
    """Write ``train_00000i.bin``, ``val_000000.bin`` (and ``test_000000.bin``) shards.

    Args:
        directory: Folder to write into (created).
        n_train_shards: Training shards.
        tokens_per_shard: Tokens per shard.
        vocab_size: Token ids are below this (use it as the task's ``vocab_size``).
        fmt: ``"llmc"`` (1024-byte header) or ``"raw"`` (bare uint16).
        with_test: Also write a test shard.
        seed: Content seed.

    Returns:
        ``directory``, to pass as the task's ``data_dir``.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [f"train_{i:06d}.bin" for i in range(1, n_train_shards + 1)] + ["val_000000.bin"]
    if with_test:
        names.append("test_000000.bin")
    for name in names:
        write_shard(root / name, markov_tokens(tokens_per_shard, vocab_size, rng), fmt)
    return root
