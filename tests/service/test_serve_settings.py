"""``vradam-hpo serve`` honours VRADAM_LAB_HOST/PORT/LOCAL_MODE, through a real server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.service.conftest import free_port
from tests.service.servers import serve

pytestmark = pytest.mark.slow


def env_for(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    return {
        "VRADAM_LAB_DB_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "VRADAM_LAB_HOST": "127.0.0.1",
        "VRADAM_LAB_PORT": str(port),
        **extra,
    }


def test_env_settings_and_local_mode_off(tmp_path: Path) -> None:
    port = free_port()
    with serve(port, ["--no-worker"], env_for(tmp_path, port, VRADAM_LAB_LOCAL_MODE="false")) as (
        _,
        url,
    ):
        # host and port came from the environment (the URL answered); reads need a token
        r = httpx.get(f"{url}/v1/studies")
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "unauthenticated"


def test_local_mode_default_and_dns_rebinding(tmp_path: Path) -> None:
    port = free_port()
    with serve(port, ["--no-worker"], env_for(tmp_path, port)) as (_, url):
        assert httpx.get(f"{url}/v1/studies").status_code == 200  # local mode: open reads
        rebound = httpx.get(f"{url}/v1/studies", headers={"Host": f"attacker.example:{port}"})
        assert rebound.status_code == 401, rebound.text
        assert httpx.post(f"{url}/v1/studies", json={}).status_code == 401  # writes need one


def test_cli_flag_overrides_env(tmp_path: Path) -> None:
    port = free_port()
    env = env_for(tmp_path, port, VRADAM_LAB_LOCAL_MODE="true")
    with serve(port, ["--no-worker", "--no-local"], env) as (_, url):
        assert httpx.get(f"{url}/v1/studies").status_code == 401
