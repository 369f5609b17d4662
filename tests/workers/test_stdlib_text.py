from pathlib import Path

import pytest
import torch

from labcore.errors import NotFoundError, SpecError
from tests.workers.task_training import train_briefly
from workers.tasks.stdlib_text import (
    STDLIB_FILES,
    StdlibCharLMTask,
    read_corpus,
    split_corpus,
    stdlib_dir,
)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_file_list_is_fixed_sorted_and_mostly_present() -> None:
    assert list(STDLIB_FILES) == sorted(set(STDLIB_FILES))
    present = [f for f in STDLIB_FILES if (stdlib_dir() / f).is_file()]
    assert len(present) >= 0.9 * len(STDLIB_FILES)
    files = read_corpus(stdlib_dir())
    assert list(files) == present


def test_split_is_per_file_90_5_5_and_covers_the_corpus() -> None:
    files = read_corpus(stdlib_dir(), max_chars=40_000)
    assert sum(map(len, files.values())) <= 40_000
    parts = {s: split_corpus(files, s) for s in ("train", "val", "test")}
    total = sum(map(len, files.values()))
    assert sum(map(len, parts.values())) == total
    assert len(parts["val"]) == pytest.approx(0.05 * total, rel=0.1)
    # every file contributes its head to train and its tail to test
    first = next(iter(files.values()))
    assert parts["train"].startswith(first[:100])
    assert parts["test"].endswith(list(files.values())[-1][-20:])


def test_streams_are_bytes_and_independent_of_seed() -> None:
    task = StdlibCharLMTask(max_chars=20_000)
    again = StdlibCharLMTask(max_chars=20_000)
    for split in ("train", "val", "test"):
        s = task.stream(split)
        assert s.dtype == torch.uint8
        assert torch.equal(s, again.stream(split))
    assert task.vocab_size() == 256
    text = bytes(task.stream("train")[:2000].tolist()).decode("utf-8", errors="replace")
    assert "def " in text or "import " in text


def test_batches_are_seeded_shifted_windows() -> None:
    task = StdlibCharLMTask(max_chars=20_000, batch_size=4, block_size=16)
    a = list(task.train_batches(seed=1, epoch=1))
    b = list(task.train_batches(seed=1, epoch=1))
    c = list(task.train_batches(seed=1, epoch=2))
    d = list(task.train_batches(seed=2, epoch=1))
    x, y = a[0]
    assert x.shape == y.shape == (4, 16) and x.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert all(torch.equal(p[0], q[0]) for p, q in zip(a, b, strict=True))
    assert not torch.equal(a[0][0], c[0][0]) and not torch.equal(a[0][0], d[0][0])
    # an epoch is non-overlapping windows: about a quarter of the stream's length / 16
    n_train = task.stream("train").numel()
    assert len(a) == pytest.approx(n_train / 16 / 4, abs=2)


def test_evaluation_is_deterministic_and_restores_mode() -> None:
    task = StdlibCharLMTask(max_chars=20_000, eval_tokens=500, block_size=32)
    model = task.build_model(0)
    model.train()
    m1, m2 = task.evaluate(model, "val"), task.evaluate(model, "val")
    assert m1 == m2 and model.training
    assert m1["ppl"] == pytest.approx(torch.tensor(m1["loss"]).exp().item(), rel=1e-6)
    assert m1["loss"] == pytest.approx(torch.log(torch.tensor(256.0)).item(), abs=0.3)
    with pytest.raises(ValueError, match="split"):
        task.evaluate(model, "train ")


def test_source_dir_option_and_missing_corpus(tmp_path: Path) -> None:
    (tmp_path / "abc.py").write_text("def f(x):\n    return x\n" * 200)
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "decoder.py").write_text("class Decoder:\n    pass\n" * 200)
    task = StdlibCharLMTask(source_dir=str(tmp_path), block_size=8, eval_tokens=None)
    assert list(task.corpus_files()) == ["abc.py", "json/decoder.py"]
    sizes = [23 * 200, 24 * 200]
    assert task.stream("val").numel() == sum(round(0.95 * n) - round(0.9 * n) for n in sizes)
    with pytest.raises(NotFoundError, match="none of the"):
        StdlibCharLMTask(source_dir=str(tmp_path / "empty")).stream("train")


def test_unknown_and_invalid_options_name_the_field() -> None:
    with pytest.raises(SpecError) as err:
        StdlibCharLMTask(max_char=10)
    assert err.value.errors[0][0] == "options.max_char"
    with pytest.raises(SpecError) as err:
        StdlibCharLMTask(batch_size=0)
    assert err.value.errors[0][0] == "options.batch_size"
    with pytest.raises(SpecError, match="divisible"):
        StdlibCharLMTask(n_embd=30, n_head=4).build_model(0)


def test_models_are_deterministic_in_seed() -> None:
    task = StdlibCharLMTask(max_chars=10_000)
    a, b, c = task.build_model(0), task.build_model(0), task.build_model(1)
    torch.testing.assert_close(a.state_dict(), b.state_dict())
    assert not torch.equal(a.wte.weight, c.wte.weight)


@pytest.mark.slow
def test_default_quick_budget_learns() -> None:
    task = StdlibCharLMTask()
    budget = task.default_budget
    before, after = train_briefly(
        task, steps_per_epoch=budget.steps_per_epoch or 0, epochs=budget.epochs, lr=3e-3
    )
    assert before["loss"] > 5.0
    assert after["loss"] < 3.3
    assert after["ppl"] < before["ppl"] / 5


def test_too_small_corpus_is_a_spec_error() -> None:
    task = StdlibCharLMTask(max_chars=40, block_size=64)
    with pytest.raises(SpecError, match="block_size"):
        next(iter(task.train_batches(0, 1)))


def test_run_trial_is_deterministic_with_dropout() -> None:
    from labcore.budget import Budget
    from workers import trial

    task = StdlibCharLMTask(max_chars=20_000, dropout=0.1, eval_tokens=512)
    budget = Budget(epochs=2, steps_per_epoch=3)
    runs = [
        trial.run_trial(task, "adamw", {"lr": 3e-3}, seed, budget, device="cpu")
        for seed in (0, 0, 1)
    ]
    assert [r.outcome for r in runs] == ["complete"] * 3, runs[0].error
    assert runs[0].metrics == runs[1].metrics
    assert runs[0].metrics != runs[2].metrics
    assert set(runs[0].metrics) == set(StdlibCharLMTask.metrics)
