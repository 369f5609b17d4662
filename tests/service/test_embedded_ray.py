"""The embedded service runs a Ray study from its worker thread, not the server's main thread."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from service.client import Client
from service.embedded import EmbeddedService
from service.settings import Settings
from tests.service.conftest import quadratic_spec

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def test_ray_study_through_embedded_service(tmp_path: Path) -> None:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    settings = Settings(
        db_url=f"sqlite:///{tmp_path / 'ray.db'}", port=0, heartbeat_seconds=0.5,
        poll_seconds=0.2,
    )  # fmt: skip
    spec = quadratic_spec("ray-embedded", points=2, seeds=1, epochs=2, optimizers=("adamw",))
    spec["executor"] = {"name": "ray", "max_concurrent": 2, "resources_per_trial": {"cpu": 1}}
    with EmbeddedService(settings) as service:
        _, secret = service.store.create_token("ray", ("read", "write"))
        with Client(service.url, token=secret) as client:
            study = client.submit(spec)
            final = client.wait(study.id, progress=False, poll_seconds=0.5, timeout=300)
            trials = client.all_trials(study.id)
        assert final.status == "completed", final.error
        assert len(trials) == 2 and {t.outcome for t in trials} <= {"complete", "diverged"}
    assert threading.current_thread() is threading.main_thread()
    # ray.init ran in the worker thread: this (main) thread's signal handlers are untouched
    assert {s: signal.getsignal(s) for s in handlers} == handlers
