"""The trust boundary through the real API: what a submitted study may make a worker do.

Each attack is a definition sent with a write token to a real uvicorn server whose
in-process worker claims studies; after each, the worker must still be alive and a
normal study must still complete.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.client import Client, InvalidRequest
from service.embedded import EmbeddedService
from service.settings import Settings
from studies.store import open_store
from tests.service.conftest import quadratic_spec

pytestmark = pytest.mark.slow

PLUGIN = "tests.service.plugins:PluginSGD"
EXITING = "tests.service.plugins:ExitingOptimizer"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedService, str]]:
    root = tmp_path_factory.mktemp("trust")
    (root / "data").mkdir()
    db = f"sqlite:///{root / 'trust.db'}"
    settings = Settings(
        db_url=db, port=0, heartbeat_seconds=0.3, poll_seconds=0.1,
        data_root=root / "data", plugins=f"{PLUGIN}, {EXITING}",
    )  # fmt: skip
    with EmbeddedService(settings) as svc:
        _, secret = svc.store.create_token("attacker", ("read", "write"))
        yield svc, secret


@pytest.fixture
def client(service: tuple[EmbeddedService, str]) -> Iterator[Client]:
    svc, secret = service
    with Client(svc.url, token=secret) as c:
        yield c


def refused(client: Client, spec: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidRequest) as e:
        client.submit(spec)
    assert e.value.status_code == 422
    return dict(e.value.fields)


def assert_worker_serves(client: Client, service: tuple[EmbeddedService, str]) -> None:
    """The worker thread is alive and runs the next ordinary study to completion."""
    svc, _ = service
    assert svc.worker is not None and svc.worker._thread is not None
    assert svc.worker._thread.is_alive()
    study = client.submit(quadratic_spec(f"after-{time.monotonic_ns()}", points=2, seeds=1))
    assert client.wait(study.id, timeout=60).status == "completed"


@pytest.mark.parametrize("name", ["unittest.__main__:x", "venv.__main__:x", "os:system"])
def test_an_import_string_is_refused_before_anything_is_imported(
    client: Client, service: tuple[EmbeddedService, str], name: str, tmp_path: Path
) -> None:
    module = name.partition(":")[0]
    was_loaded = module in sys.modules
    fields = refused(client, quadratic_spec("attack", optimizers=(name,)))
    assert "not a registered optimizer" in fields["optimizers.0.name"]
    assert "VRADAM_LAB_PLUGINS" in fields["optimizers.0.name"]
    assert (module in sys.modules) == was_loaded  # validation imported nothing
    assert not (Path.cwd() / "x").exists()  # venv.__main__ would have made a venv here
    assert_worker_serves(client, service)


def test_the_study_cannot_choose_the_ray_cluster(client: Client) -> None:
    spec = quadratic_spec("ray-attack", executor={"name": "ray", "ray_address": "10.1.2.3:6379"})
    assert "executor.ray_address" in refused(client, spec)


@pytest.mark.parametrize("where", ["/etc", "../..", "a/../../b", "~root"])
def test_data_folders_are_names_under_the_data_root(client: Client, where: str) -> None:
    spec = quadratic_spec("path-attack")
    spec["tasks"] = [{"name": "cifar10_cnn", "data_dir": where, "budget": {"epochs": 1}}]
    assert "tasks.0.data_dir" in refused(client, spec)
    spec["tasks"] = [
        {"name": "stdlib_char_lm", "options": {"source_dir": where}, "budget": {"epochs": 1}}
    ]
    assert "tasks.0.options.source_dir" in refused(client, spec)


def test_an_enabled_plugin_runs(client: Client) -> None:
    study = client.submit(quadratic_spec("plugin", points=2, seeds=1, optimizers=(PLUGIN,)))
    assert client.wait(study.id, timeout=60).status == "completed"
    assert "tests.service.plugins" in sys.modules


def test_a_trial_that_exits_the_interpreter_fails_alone(
    client: Client, service: tuple[EmbeddedService, str]
) -> None:
    study = client.submit(quadratic_spec("exits", points=2, seeds=1, optimizers=(EXITING,)))
    final = client.wait(study.id, timeout=60)
    assert final.status == "failed"  # no trial succeeded
    assert final.error and "SystemExit: this optimizer asked the process to exit" in final.error
    trials = client.trials(study.id).items
    assert trials and all(t.outcome == "failed" for t in trials)
    for t in trials:  # type and message only: no traceback with the server's paths
        assert t.error == "SystemExit: this optimizer asked the process to exit"
    assert_worker_serves(client, service)


def test_a_stored_definition_from_outside_the_boundary_fails_at_the_claim(
    client: Client, service: tuple[EmbeddedService, str]
) -> None:
    # written straight to the database (an older version, a hand edit): the worker parses
    # every claimed definition at its own boundary and refuses this one
    svc, _ = service
    store = open_store(svc.settings.db_url)
    spec = quadratic_spec("smuggled", optimizers=("unittest.__main__:x",))
    sid = store.create_study(spec["name"], spec).id
    store.close()
    final = client.wait(sid, timeout=60)
    assert final.status == "failed"
    assert final.error and final.error.startswith("invalid definition: optimizers.0.name")
    assert_worker_serves(client, service)
