import shutil
from pathlib import Path

import pytest
import torch

from labcore.errors import NotFoundError
from tests.workers.datafiles import write_wikitext2
from tests.workers.task_training import train_briefly
from workers.tasks.wikitext2 import EOS, UNK, WikiText2LMTask, build_vocab, tokenize_lines


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wikitext2(tmp_path_factory.mktemp("wikitext"))


def test_tokenisation_and_vocabulary() -> None:
    words = tokenize_lines([" = Title = \n", " \n", " the cat sat . \n"])
    assert words == ["=", "Title", "=", EOS, EOS, "the", "cat", "sat", ".", EOS]
    vocab = build_vocab(["b", "a", "b", "c", "a", "b"])
    assert list(vocab)[:3] == ["b", "a", "c"]  # by count, ties alphabetical
    assert UNK in vocab and EOS in vocab
    assert sorted(vocab.values()) == list(range(len(vocab)))


def test_reads_the_standard_files_with_unknown_words(data_dir: Path) -> None:
    task = WikiText2LMTask(str(data_dir))
    assert task.folder == data_dir / "wikitext-2"
    vocab = task.vocab
    assert "zyzzyva" not in vocab  # only in valid/test
    val = task.stream("val")
    assert (val == vocab[UNK]).sum() > (task.stream("train")[: len(val)] == vocab[UNK]).sum()
    n_lines = len((data_dir / "wikitext-2" / "wiki.valid.tokens").read_text().splitlines())
    assert int((val == vocab[EOS]).sum()) == n_lines
    # the files may also sit directly in data_dir
    flat = WikiText2LMTask(str(data_dir / "wikitext-2"))
    assert torch.equal(flat.stream("test"), task.stream("test"))


def test_default_model_matches_the_paper_size(data_dir: Path) -> None:
    config = WikiText2LMTask(str(data_dir)).gpt_config()
    assert (config.n_layer, config.n_embd, config.n_head, config.ffn_width) == (4, 128, 8, 256)
    assert config.dropout == 0.2 and config.block_size == 64


def test_missing_data_names_directory_and_files(tmp_path: Path, data_dir: Path) -> None:
    with pytest.raises(NotFoundError, match="data_dir"):
        WikiText2LMTask(None)
    partial = tmp_path / "partial"
    shutil.copytree(data_dir / "wikitext-2", partial / "wikitext-2")
    (partial / "wikitext-2" / "wiki.test.tokens").unlink()
    with pytest.raises(NotFoundError) as err:
        WikiText2LMTask(str(partial))
    message = str(err.value)
    assert "wiki.test.tokens" in message and "wiki.train.tokens" not in message
    assert str(partial / "wikitext-2") in message


def test_epoch_windows_are_disjoint_and_aligned(tmp_path: Path) -> None:
    folder = tmp_path / "unique"
    folder.mkdir()
    words = " ".join(f"w{i}" for i in range(1000))
    for name in ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"):
        (folder / name).write_text(words + "\n")
    task = WikiText2LMTask(str(folder), batch_size=5, block_size=10)
    stream = task.stream("train")
    position = {int(t): i for i, t in enumerate(stream)}  # every id occurs once
    for epoch in (1, 2):
        starts = [position[int(x[0])] for xb, _ in task.train_batches(3, epoch) for x in xb]
        assert len(set(starts)) == len(starts)
        assert len({s % 10 for s in starts}) == 1
        assert len(starts) == 5 * ((1001 - 1 - starts[0] % 10) // 10 // 5)


def test_max_train_tokens_and_seedless_evaluation(data_dir: Path) -> None:
    task = WikiText2LMTask(str(data_dir), max_train_tokens=300, block_size=16, eval_tokens=100)
    assert task.stream("train").numel() == 300
    model = task.build_model(0)
    assert task.evaluate(model, "test") == task.evaluate(model, "test")


@pytest.mark.slow
def test_loss_falls_with_adamw(data_dir: Path) -> None:
    task = WikiText2LMTask(str(data_dir), batch_size=16)
    before, after = train_briefly(task, steps_per_epoch=10, epochs=4, lr=3e-3)
    assert after["loss"] < before["loss"] - 0.8
    assert after["ppl"] < before["ppl"]
