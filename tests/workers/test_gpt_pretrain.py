from pathlib import Path

import numpy as np
import pytest
import torch

from labcore.errors import NotFoundError, SpecError
from tests.workers.datafiles import write_shard, write_token_shards
from tests.workers.task_training import train_briefly
from workers.tasks._data import DataFormatError
from workers.tasks.gpt_model import GPTConfig
from workers.tasks.gpt_pretrain import GPTPretrainTask, TokenStream, find_shards, open_shard

TINY = {"vocab_size": 64, "block_size": 16, "eval_tokens": 256}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_token_shards(tmp_path_factory.mktemp("shards"), tokens_per_shard=3000)


@pytest.mark.parametrize("fmt", ["llmc", "raw"])
def test_open_shard_reads_both_formats(tmp_path: Path, fmt: str) -> None:
    tokens = np.arange(1000, dtype=np.uint16) * 37
    path = write_shard(tmp_path / "train_0.bin", tokens, fmt)
    assert path.stat().st_size == 2000 + (1024 if fmt == "llmc" else 0)
    for mode in ("auto", fmt):
        assert np.array_equal(open_shard(path, mode), tokens)


def test_open_shard_rejects_bad_files(tmp_path: Path) -> None:
    path = write_shard(tmp_path / "a.bin", np.arange(10, dtype=np.uint16), "llmc")
    data = bytearray(path.read_bytes())
    data[4] = 2  # version 2
    (tmp_path / "v2.bin").write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match="version 2"):
        open_shard(tmp_path / "v2.bin")
    (tmp_path / "short.bin").write_bytes(path.read_bytes()[:-4])
    with pytest.raises(DataFormatError, match="promises 10 tokens"):
        open_shard(tmp_path / "short.bin")
    (tmp_path / "odd.bin").write_bytes(b"abc")
    with pytest.raises(DataFormatError, match="uint16"):
        open_shard(tmp_path / "odd.bin")
    raw = write_shard(tmp_path / "raw.bin", np.arange(600, dtype=np.uint16), "raw")
    with pytest.raises(DataFormatError, match=r"llm\.c"):
        open_shard(raw, "llmc")


def test_token_stream_reads_across_shards() -> None:
    parts = [np.arange(0, 5, dtype=np.uint16), np.arange(5, 7, dtype=np.uint16)]
    parts.append(np.arange(7, 20, dtype=np.uint16))
    stream = TokenStream(parts)
    assert len(stream) == 20
    for start, length in ((0, 20), (3, 10), (5, 2), (4, 4), (19, 1)):
        assert stream.read(start, length).tolist() == list(range(start, start + length))
    assert stream.windows([1, 6], 3).tolist() == [[1, 2, 3], [6, 7, 8]]


def test_finds_llmc_style_names(tmp_path: Path) -> None:
    for name in ("fineweb_train_000002.bin", "fineweb_train_000001.bin", "fineweb_val_0.bin"):
        write_shard(tmp_path / name, np.arange(100, dtype=np.uint16))
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in find_shards(tmp_path, "train")] == [
        "fineweb_train_000001.bin",
        "fineweb_train_000002.bin",
    ]
    task = GPTPretrainTask(str(tmp_path), **TINY)
    assert len(task.token_stream("train")) == 200


def test_batches_are_seeded_windows(shards: Path) -> None:
    task = GPTPretrainTask(str(shards), batch_size=4, steps_per_epoch=3, **TINY)
    a = list(task.train_batches(seed=0, epoch=1))
    b = list(task.train_batches(seed=0, epoch=1))
    c = list(task.train_batches(seed=0, epoch=2))
    assert len(a) == 3
    x, y = a[0]
    assert x.shape == (4, 16) and x.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert all(torch.equal(p[0], q[0]) for p, q in zip(a, b, strict=True))
    assert not torch.equal(a[0][0], c[0][0])


def test_val_and_test_regions(shards: Path, tmp_path: Path) -> None:
    task = GPTPretrainTask(str(shards), **TINY)
    val_stream, vlo, vhi = task.eval_region("val")
    test_stream, tlo, thi = task.eval_region("test")
    assert val_stream is test_stream and (vlo, vhi, tlo, thi) == (0, 1500, 1500, 3000)
    with_test = write_token_shards(tmp_path, tokens_per_shard=500, with_test=True)
    task = GPTPretrainTask(str(with_test), **TINY)
    stream, lo, hi = task.eval_region("test")
    assert stream is task.token_stream("test") and (lo, hi) == (0, 500)
    with pytest.raises(ValueError, match="split"):
        task.eval_region("train")


def test_evaluation_windows_are_fixed(shards: Path) -> None:
    capped = GPTPretrainTask(str(shards), **TINY)
    full = GPTPretrainTask(str(shards), **{**TINY, "eval_tokens": None})
    model = capped.build_model(0)
    assert capped.evaluate(model, "val") == capped.evaluate(model, "val")
    assert capped.evaluate(model, "val") != full.evaluate(model, "val")
    assert capped.evaluate(model, "val") != capped.evaluate(model, "test")


def test_sizes_and_overrides(shards: Path) -> None:
    big = GPTPretrainTask(str(shards), size="124m")
    assert big.gpt_config() == GPTConfig.gpt2_124m()
    tiny = GPTPretrainTask(str(shards), vocab_size=64, n_layer=3).gpt_config()
    assert (tiny.n_layer, tiny.n_embd, tiny.block_size) == (3, 64, 64)
    with pytest.raises(SpecError) as err:
        GPTPretrainTask(str(shards), size="huge")
    assert err.value.errors[0][0] == "options.size"


def test_missing_shards_and_out_of_range_ids(tmp_path: Path, shards: Path) -> None:
    with pytest.raises(NotFoundError, match=r"train\*\.bin or val\*\.bin"):
        GPTPretrainTask(str(tmp_path), **TINY)
    with pytest.raises(NotFoundError, match="data_dir"):
        GPTPretrainTask(None, **TINY)
    small_vocab = GPTPretrainTask(str(shards), **{**TINY, "vocab_size": 10})
    with pytest.raises(DataFormatError, match="vocab_size"):
        next(iter(small_vocab.train_batches(0, 1)))


@pytest.mark.parametrize("fmt", ["llmc", "raw"])
def test_loss_falls_with_adamw(tmp_path: Path, fmt: str) -> None:
    data = write_token_shards(tmp_path, tokens_per_shard=3000, fmt=fmt)
    task = GPTPretrainTask(str(data), batch_size=8, steps_per_epoch=15, **TINY)
    before, after = train_briefly(task, steps_per_epoch=15, epochs=2, lr=3e-3)
    assert before["loss"] == pytest.approx(np.log(64), abs=0.3)
    assert after["loss"] < before["loss"] - 1.0
