"""``vradam-hpo data download``: explicit downloads only; present data is not fetched again."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from tests.workers.datafiles import write_cifar10

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def test_present_cifar10_is_reused_without_network(tmp_path: Path) -> None:
    write_cifar10(tmp_path, n_per_batch=4, n_test=4)
    result = runner.invoke(app, ["data", "download", "cifar10", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "cifar-10-batches-py" in result.output


def test_unknown_dataset_names_the_argument(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "download", "mnist", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "dataset" in result.output and "mnist" in result.output


def test_default_download_folder_is_the_one_cifar10_yaml_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.commands.run import local_trust
    from service.settings import Settings
    from studies.spec import parse_spec
    from workers.tasks.registry import create_task

    root = tmp_path / "root"
    write_cifar10(root / "cifar10", n_per_batch=4, n_test=4)  # present: nothing is fetched
    monkeypatch.setenv("VRADAM_LAB_DATA_ROOT", str(root))
    result = runner.invoke(app, ["data", "download", "cifar10"])
    assert result.exit_code == 0, result.output
    folder = Path(result.stdout.strip().split(": ", 1)[1])
    assert folder == root / "cifar10" / "cifar-10-batches-py"
    assert "data_dir: cifar10" in result.stderr
    spec = parse_spec(ROOT / "studies" / "definitions" / "cifar10.yaml")
    for trust in (Settings().trust(), local_trust()):  # a service worker; `vradam-hpo run`
        (task,) = trust.resolve(spec).tasks
        assert Path(task.data_dir) == root / "cifar10"
        assert Path(create_task("cifar10_cnn", data_dir=task.data_dir).folder) == folder


def test_default_data_root_is_data_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VRADAM_LAB_DATA_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    write_cifar10(tmp_path / "data" / "cifar10", n_per_batch=4, n_test=4)
    result = runner.invoke(app, ["data", "download", "cifar10"])
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.strip().split(": ", 1)[1]).resolve() == (
        tmp_path / "data" / "cifar10" / "cifar-10-batches-py"
    )
