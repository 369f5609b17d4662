"""The cluster's compose file, validated offline (no Docker engine here) and cross-checked."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

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


DOC = yaml.safe_load(COMPOSE.read_text())
SERVICES: dict[str, Any] = DOC["services"]
GPU = sorted(n for n in SERVICES if n.startswith("ray-gpu-"))
LAB = ["migrate", "api", "ray-head", *GPU, "optuna-dashboard"]  # the services of our image
ONE_SHOT = {"migrate"}
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _devices(service: dict[str, Any]) -> list[dict[str, Any]]:
    return service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])


def test_every_role_shares_one_database_and_the_ray_token() -> None:
    assert {"postgres", "migrate", "api", "ray-head", "optuna-dashboard"} <= set(SERVICES)
    assert GPU, "no GPU worker service"
    url = SERVICES["api"]["environment"]["VRADAM_LAB_DB_URL"]
    assert url.startswith("postgresql+psycopg://lab:")
    for name in ("migrate", "api", "ray-head", *GPU):
        env = SERVICES[name]["environment"]
        assert env["VRADAM_LAB_DB_URL"] == url, name
        assert env["RAY_AUTH_MODE"] == "token", name
        assert env["RAY_AUTH_TOKEN"].startswith("${RAY_AUTH_TOKEN:?"), name
    assert url in SERVICES["optuna-dashboard"]["command"]


def test_secrets_are_required_never_defaulted() -> None:
    text = COMPOSE.read_text()
    for secret in ("POSTGRES_PASSWORD", "RAY_AUTH_TOKEN"):
        uses = re.findall(r"\$\{" + secret + r"([^}]*)\}", text)
        assert uses and all(u.startswith(":?") for u in uses), (secret, uses)
    assert SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith(
        "${POSTGRES_PASSWORD:?"
    )


def test_gpu_workers_get_cuda_torch_and_cpu_roles_the_cpu_build() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"ARG TORCH_INDEX={CPU_INDEX}" in dockerfile
    assert '--index-url "${TORCH_INDEX}"' in dockerfile
    for name in GPU:
        index = SERVICES[name]["build"]["args"]["TORCH_INDEX"]
        assert re.search(r"whl/cu\d+", index), (name, index)
        assert SERVICES[name]["image"] != SERVICES["api"]["image"], name
    for name in ("migrate", "api", "ray-head", "optuna-dashboard"):
        assert SERVICES[name]["build"]["args"]["TORCH_INDEX"] == CPU_INDEX, name


def test_each_gpu_service_is_pinned_to_its_own_devices() -> None:
    seen: list[str] = []
    for name in GPU:
        (dev,) = _devices(SERVICES[name])
        assert dev["capabilities"] == ["gpu"] and dev["driver"] == "nvidia"
        assert "count" not in dev and dev["device_ids"], name  # never `count: all`
        seen += dev["device_ids"]
        assert "replicas" not in SERVICES[name].get("deploy", {}), name
        command = " ".join(SERVICES[name]["command"])
        assert "--address=ray-head:6379" in command and "--num-gpus=1" in command
        assert "gpu_node" in command  # studies can pin trials to GPU nodes
    assert len(seen) == len(set(seen)), f"two GPU services share a device: {seen}"
    for name in set(SERVICES) - set(GPU):
        assert not _devices(SERVICES[name]), name


def test_datasets_are_volumes_under_the_data_root() -> None:
    want = {"/lab/data/cifar10", "/lab/data/wikitext2", "/lab/data/shards"}
    for name in ("api", "ray-head", *GPU):
        env = SERVICES[name]["environment"]
        assert env["VRADAM_LAB_DATA_ROOT"] == "/lab/data", name
        mounts = {v.split(":")[1] for v in SERVICES[name]["volumes"]}
        assert want <= mounts, name
    assert {"cifar10", "wikitext2", "shards", "pgdata"} <= set(DOC["volumes"])
    # the shipped definitions name these folders relative to the data root
    for definition, folder in (("cifar10", "cifar10"), ("wikitext2", "wikitext2")):
        spec = yaml.safe_load((ROOT / "studies" / "definitions" / f"{definition}.yaml").read_text())
        assert spec["tasks"][0]["data_dir"] == folder


def test_the_image_is_writable_by_its_user_and_copies_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    lines = dockerfile.splitlines()
    user = lines.index("USER lab")
    chown = next(i for i, line in enumerate(lines) if "chown -R lab:lab /app /lab" in line)
    assert chown < user and "ENV" in dockerfile and "VRADAM_LAB_DATA_ROOT=/lab/data" in dockerfile
    for folder in ("/lab/data/cifar10", "/lab/data/wikitext2", "/lab/data/shards"):
        assert folder in dockerfile
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.rstrip("*")
        assert f"COPY {package} ./{package}" in dockerfile, package
    for script in re.findall(r"docker/([\w.-]+)", dockerfile):
        assert (ROOT / "docker" / script).is_file(), script


def test_restart_policies_healthchecks_and_the_one_shot_migration() -> None:
    for name, service in SERVICES.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no" and "healthcheck" not in service
            continue
        assert service.get("restart") in ("unless-stopped", "always", "on-failure"), name
        check = service.get("healthcheck")
        assert check and check["test"] and not check.get("disable"), name
    assert SERVICES["migrate"]["command"] == ["migrate.py"]
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "ray-head", "optuna-dashboard"):
        dep = SERVICES[name]["depends_on"]["migrate"]
        assert dep["condition"] == "service_completed_successfully", name
    for name in GPU:
        assert SERVICES[name]["depends_on"]["ray-head"]["condition"] == "service_healthy"


def test_the_worker_loop_is_supervised_not_the_heads_pid_1() -> None:
    head = SERVICES["ray-head"]
    assert head["command"] == ["ray-head.sh"] and head["init"] is True
    assert head["environment"]["VRADAM_LAB_RAY_ADDRESS"] == "auto"
    script = (ROOT / "docker" / "ray-head.sh").read_text()
    assert "--block &" in script and "vradam-hpo worker &" in script  # both supervised
    assert "--include-dashboard=false" in script and "--num-gpus=0" in script


def test_only_the_api_and_a_loopback_dashboard_are_published() -> None:
    published = {n: s["ports"] for n, s in SERVICES.items() if s.get("ports")}
    assert published == {"api": ["8000:8000"], "optuna-dashboard": ["127.0.0.1:8080:8080"]}
    assert "8265" not in COMPOSE.read_text()  # no Ray dashboard port: nothing serves it
    docs = (ROOT / "docs" / "cluster.md").read_text()
    assert "read-write" in docs and "unauthenticated" in docs and "127.0.0.1" in docs


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
