"""``vradam-hpo data download``: explicit downloads only; present data is not fetched again."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from service.cli import app
from tests.workers.datafiles import write_cifar10

runner = CliRunner()


def test_present_cifar10_is_reused_without_network(tmp_path: Path) -> None:
    write_cifar10(tmp_path, n_per_batch=4, n_test=4)
    result = runner.invoke(app, ["data", "download", "cifar10", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "cifar-10-batches-py" in result.output


def test_unknown_dataset_names_the_argument(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "download", "mnist", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "dataset" in result.output and "mnist" in result.output
