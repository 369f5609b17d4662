import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labcore.errors import NotFoundError, SpecError
from tests.workers.datafiles import write_cifar10
from tests.workers.task_training import train_briefly
from workers.tasks._data import DataFormatError
from workers.tasks.cifar10 import Cifar10CNNTask, cifar_cnn, random_crop_flip, read_batch


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_cifar10(tmp_path_factory.mktemp("cifar"), n_per_batch=40, n_test=50)


def test_read_batch_decodes_channel_major_rows(tmp_path: Path) -> None:
    row = np.zeros(3072, dtype=np.uint8)
    row[0] = 11  # R(0, 0)
    row[1024 + 33] = 22  # G(1, 1)
    row[2048 + 1023] = 33  # B(31, 31)
    with (tmp_path / "b").open("wb") as f:
        pickle.dump({b"data": row[None], b"labels": [7]}, f, protocol=2)
    images, labels = read_batch(tmp_path / "b")
    assert images.shape == (1, 3, 32, 32) and images.dtype == np.uint8
    assert (images[0, 0, 0, 0], images[0, 1, 1, 1], images[0, 2, 31, 31]) == (11, 22, 33)
    assert labels.tolist() == [7] and labels.dtype == np.int64


def test_read_batch_refuses_code_and_bad_shapes(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.getenv, ("HOME",))

    with (tmp_path / "evil").open("wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f)
    with pytest.raises(DataFormatError, match="refusing"):
        read_batch(tmp_path / "evil")
    with (tmp_path / "short").open("wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(DataFormatError, match="3072"):
        read_batch(tmp_path / "short")


def test_splits_are_fixed_and_disjoint(data_dir: Path) -> None:
    task = Cifar10CNNTask(str(data_dir))
    splits = task.splits()
    assert len(splits["train"][0]) == 160 and len(splits["val"][0]) == 40
    assert len(splits["test"][0]) == 50
    other = Cifar10CNNTask(str(data_dir / "cifar-10-batches-py")).splits()
    for name in ("train", "val", "test"):
        assert torch.equal(splits[name][0], other[name][0])
    train = {x.numpy().tobytes() for x in splits["train"][0]}
    assert not any(x.numpy().tobytes() in train for x in splits["val"][0])
    subset = Cifar10CNNTask(str(data_dir), n_train=50).splits()
    assert torch.equal(subset["train"][0], splits["train"][0][:50])
    assert torch.equal(subset["val"][0], splits["val"][0])


def test_flip_mirrors_and_crop_shifts() -> None:
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.int32).view(2, 3, 8, 8)
    gen = torch.Generator().manual_seed(0)
    out = random_crop_flip(images.repeat(16, 1, 1, 1), gen, pad=0)
    flipped = [torch.equal(o, images[i % 2].flip(-1)) for i, o in enumerate(out)]
    kept = [torch.equal(o, images[i % 2]) for i, o in enumerate(out)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 4 <= sum(flipped) <= 28
    # with padding, every output is some 8x8 window of the zero-padded (maybe flipped) image
    gen = torch.Generator().manual_seed(1)
    out = random_crop_flip(images, gen, pad=2)
    assert out.shape == images.shape and out.dtype == images.dtype
    for o, img in zip(out, images, strict=True):
        candidates = [
            F.pad(src, (2, 2, 2, 2))[:, dy : dy + 8, dx : dx + 8]
            for src in (img, img.flip(-1))
            for dy in range(5)
            for dx in range(5)
        ]
        assert any(torch.equal(o, c) for c in candidates)


def test_training_batches_are_seeded(data_dir: Path) -> None:
    task = Cifar10CNNTask(str(data_dir), batch_size=32)
    a = list(task.train_batches(seed=0, epoch=1))
    b = list(task.train_batches(seed=0, epoch=1))
    c = list(task.train_batches(seed=0, epoch=2))
    assert len(a) == 5
    x, y = a[0]
    assert x.shape == (32, 3, 32, 32) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert all(
        torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(a, b, strict=True)
    )
    assert not torch.equal(a[0][0], c[0][0])
    plain = list(Cifar10CNNTask(str(data_dir), batch_size=32, augment=False).train_batches(0, 1))
    assert torch.equal(plain[0][1], a[0][1])  # same order, different pixels
    assert not torch.equal(plain[0][0], a[0][0])


def test_missing_data_names_directory_and_files(tmp_path: Path, data_dir: Path) -> None:
    with pytest.raises(NotFoundError) as err:
        Cifar10CNNTask(str(tmp_path))
    assert str(tmp_path) in str(err.value) and "data_batch_1" in str(err.value)
    partial = tmp_path / "partial" / "cifar-10-batches-py"
    partial.mkdir(parents=True)
    for name in ("data_batch_1", "data_batch_2"):
        (partial / name).write_bytes((data_dir / "cifar-10-batches-py" / name).read_bytes())
    with pytest.raises(NotFoundError) as err:
        Cifar10CNNTask(str(tmp_path / "partial"))
    message = str(err.value)
    assert "test_batch" in message and "data_batch_3" in message
    assert "data_batch_1," not in message and str(partial) in message


def test_invalid_options() -> None:
    with pytest.raises(SpecError) as err:
        Cifar10CNNTask(None, batchsize=3)
    assert err.value.errors[0][0] == "options.batchsize"


def test_model_is_the_papers_network() -> None:
    model = cifar_cnn()
    assert sum(p.numel() for p in model.parameters()) == 3_249_994
    convs = [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [64, 64, 128, 128, 256, 256]
    linears = [
        (m.in_features, m.out_features) for m in model.modules() if hasattr(m, "in_features")
    ]
    assert linears == [(4096, 512), (512, 10)]
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert model(x).shape == (2, 10)


def test_evaluate_and_learning(data_dir: Path) -> None:
    task = Cifar10CNNTask(str(data_dir), batch_size=16, width=0.25)
    model = task.build_model(0)
    model.train()
    metrics = task.evaluate(model, "test")
    assert model.training and 0.0 <= metrics["acc"] <= 1.0
    assert metrics == task.evaluate(model, "test")
    before, after = train_briefly(task, steps_per_epoch=10, epochs=3, lr=3e-3)
    assert after["loss"] < before["loss"] - 0.3
    assert after["acc"] > 0.3
