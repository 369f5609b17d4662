"""The cluster's compose file, validated offline (no Docker engine here) and cross-checked."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from service.cli import app

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"


def test_compose_file_matches_the_compose_spec() -> None:
    exe = shutil.which("check-jsonschema") or str(
        Path(sys.executable).with_name("check-jsonschema")
    )
    out = subprocess.run(
        [exe, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_role_shares_one_database_and_the_ray_token() -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc["services"]
    assert {"postgres", "api", "ray-head", "ray-gpu-worker", "optuna-dashboard"} <= set(services)
    for name in ("api", "ray-head", "ray-gpu-worker"):
        env = services[name]["environment"]
        assert env["VRADAM_LAB_DB_URL"].startswith("postgresql+psycopg://"), name
        assert env["RAY_AUTH_MODE"] == "token", name
    gpu = services["ray-gpu-worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]


def test_compose_commands_exist_in_the_cli() -> None:
    runner = CliRunner()
    for command in ("serve", "worker"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, result.output
    serve = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).output
    assert "--no-worker" in serve and "--no-local" in serve


def test_image_pins_torch() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG TORCH_VERSION=2.13.0" in dockerfile
    assert dockerfile.count('"torch==${TORCH_VERSION}"') == 2
