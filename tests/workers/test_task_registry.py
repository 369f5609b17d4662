"""The task registry: the contract table, lookups, lazy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from labcore.budget import Budget
from labcore.errors import NotFoundError, SpecError
from workers.tasks.base import Task, TaskInfo
from workers.tasks.registry import TASKS, create_task, get_task_info, list_tasks

ACC = ("train_loss", "val_loss", "val_acc", "test_loss", "test_acc")
PPL = ("train_loss", "val_loss", "val_ppl", "test_loss", "test_ppl")
LOSS = ("train_loss", "val_loss", "test_loss")
CONTRACT = {
    "quadratic": ("workers.tasks.quadratic:QuadraticTask", LOSS),
    "digits_cnn": ("workers.tasks.digits:DigitsCNNTask", ACC),
    "digits_diffusion": ("workers.tasks.diffusion:DigitsDiffusionTask", LOSS),
    "hypergrid_gflownet": (
        "workers.tasks.gflownet:HyperGridTask",
        ("train_loss", "val_loss", "val_l1", "test_loss", "test_l1"),
    ),
    "cifar10_cnn": ("workers.tasks.cifar10:Cifar10CNNTask", ACC),
    "wikitext2_lm": ("workers.tasks.wikitext2:WikiText2LMTask", PPL),
    "stdlib_char_lm": ("workers.tasks.stdlib_text:StdlibCharLMTask", PPL),
    "gpt_pretrain": ("workers.tasks.gpt_pretrain:GPTPretrainTask", PPL),
}
NEEDS_DATA = {"cifar10_cnn", "wikitext2_lm", "gpt_pretrain"}


def test_registry_matches_the_contract_table() -> None:
    assert list(TASKS) == list(CONTRACT)
    assert [t.name for t in list_tasks()] == list(CONTRACT)
    for name, (path, metrics) in CONTRACT.items():
        info = TASKS[name]
        assert isinstance(info, TaskInfo) and info.name == name
        assert info.import_path == path
        assert info.metrics == metrics
        target = "val_l1" if name == "hypergrid_gflownet" else "val_loss"
        assert (info.target_metric, info.direction) == (target, "minimize")
        assert info.needs_data == (name in NEEDS_DATA)
        assert info.description and isinstance(info.default_budget, Budget)
        assert info.default_budget.epochs >= 1


def test_listing_tasks_and_importing_run_trial_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import workers.trial\n"
        "from workers.tasks.registry import list_tasks, get_task_info\n"
        "list_tasks(); get_task_info('digits_cnn')\n"
        "print(sorted(m for m in ('torch', 'numpy', 'sklearn') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_task_is_not_found_and_names_the_known_ones() -> None:
    with pytest.raises(NotFoundError) as info:
        get_task_info("mnist")
    assert "mnist" in str(info.value) and "digits_cnn" in str(info.value)
    with pytest.raises(NotFoundError):
        create_task("mnist")


def test_create_task_passes_options_and_rejects_unknown_ones() -> None:
    task = create_task("quadratic", dim=7)
    assert isinstance(task, Task) and task.name == "quadratic"
    assert task.build_model(0).x.shape == (7,)
    with pytest.raises(SpecError) as info:
        create_task("quadratic", dimension=7)
    assert info.value.errors[0][0] == "options.dimension"


def test_needs_data_task_without_data_dir_is_not_found(tmp_path) -> None:
    with pytest.raises(NotFoundError):
        create_task("cifar10_cnn")
    with pytest.raises(NotFoundError):
        create_task("cifar10_cnn", data_dir=str(tmp_path))
