"""The SDK against a real uvicorn server (with its worker) on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from labcore.errors import LabError
from service.client import (
    Client,
    Conflict,
    ConnectionFailed,
    Forbidden,
    InvalidRequest,
    NotFound,
    Unauthorized,
    WaitTimeout,
)
from service.embedded import EmbeddedService
from service.schemas import StudyOut
from service.settings import Settings
from tests.service.conftest import free_port, quadratic_spec


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedService]:
    db = tmp_path_factory.mktemp("client") / "lab.db"
    settings = Settings(
        db_url=f"sqlite:///{db}", port=0, local_mode=True, heartbeat_seconds=0.5,
        poll_seconds=0.2,
    )  # fmt: skip
    with EmbeddedService(settings) as svc:
        yield svc


@pytest.fixture(scope="module")
def secrets(service: EmbeddedService) -> dict[str, str]:
    _, write = service.store.create_token("sdk-writer", ("read", "write"))
    _, read = service.store.create_token("sdk-reader", ("read",))
    return {"write": write, "read": read}


@pytest.fixture(scope="module")
def client(service: EmbeddedService, secrets: dict[str, str]) -> Iterator[Client]:
    with Client(service.url, token=secrets["write"]) as c:
        yield c


@pytest.fixture(scope="module")
def finished(client: Client, tmp_path_factory: pytest.TempPathFactory) -> StudyOut:
    """A tiny quadratic study submitted from a YAML file and run to the end."""
    path = tmp_path_factory.mktemp("spec") / "tiny.yaml"
    path.write_text(yaml.safe_dump(quadratic_spec("sdk-e2e", points=3, seeds=2, epochs=2)))
    study = client.submit(path)
    assert study.status == "queued"
    return client.wait(study.id, progress=False, poll_seconds=0.2, timeout=120)


def test_server_is_real(service: EmbeddedService, client: Client, secrets: dict[str, str]) -> None:
    assert service.port > 0 and service.url == f"http://127.0.0.1:{service.port}"
    assert client.healthy() and client.ready()
    assert secrets["write"] not in repr(client)


def test_end_to_end(client: Client, finished: StudyOut) -> None:
    assert finished.status == "completed", finished.error
    assert finished.progress.n_planned == 12  # 2 optimizers x 3 lr x 2 seeds
    assert finished.progress.n_finished == 12
    assert sum(finished.counts.values()) == 12
    assert finished.timings.started_at is not None and finished.timings.finished_at is not None
    assert {c.optimizer for c in finished.progress.cells} == {"adamw", "vradam"}

    trials = client.all_trials(finished.id)
    assert len(trials) == 12
    assert len({(t.cell_id, t.key) for t in trials}) == 12
    assert {t.seed for t in trials} == {0, 1}
    assert {round(t.hparams["lr"], 6) for t in trials} == {0.001, 0.031623, 1.0}
    assert all(t.attempts == 1 for t in trials)
    first = client.trial(finished.id, trials[0].id)
    assert first.epochs is not None and [e.epoch for e in first.epochs] == [0, 1, 2]
    assert "val_loss" in first.epochs[-1].metrics

    page = client.trials(finished.id, limit=5, offset=10)
    assert page.total == 12 and len(page.items) == 2
    cell = finished.progress.cells[0]
    assert client.trials(finished.id, cell_id=cell.id).total == cell.n_planned


def test_get_list_and_filters(client: Client, finished: StudyOut) -> None:
    assert client.get(finished.id).id == finished.id
    page = client.list(status="completed")
    assert finished.id in {s.id for s in page.items}
    assert all(s.status == "completed" for s in page.items)


def test_finished_study_cancel_conflicts_then_delete(client: Client) -> None:
    study = client.submit(quadratic_spec("sdk-delete", points=2, seeds=1, epochs=1))
    final = client.wait(study.id, progress=False, poll_seconds=0.2, timeout=60)
    assert final.status == "completed"
    with pytest.raises(Conflict) as info:
        client.cancel(study.id)
    assert info.value.status_code == 409 and study.id in info.value.message
    assert len(client.all_trials(study.id)) == 4
    client.delete(study.id)
    with pytest.raises(NotFound):
        client.get(study.id)
    with pytest.raises(NotFound):
        client.trials(study.id)


def test_errors_are_typed(
    client: Client, service: EmbeddedService, secrets: dict[str, str]
) -> None:
    with pytest.raises(NotFound) as info:
        client.get("missing")
    assert info.value.code == "not_found" and "missing" in str(info.value)
    assert isinstance(info.value, LabError)

    bad = quadratic_spec()
    bad["optimizers"] = [{"name": "adamw", "fixed": {"beta1": -1.0}}]
    with pytest.raises(InvalidRequest) as inv:
        client.submit(bad)
    assert inv.value.status_code == 422
    assert inv.value.fields == [
        ("optimizers.0.fixed.beta1", "adamw: beta1 must be >= 0.0, got -1.0")
    ]

    with Client(service.url) as anonymous:
        assert anonymous.list().total >= 0  # local mode: reads need no token
        with pytest.raises(Unauthorized):
            anonymous.submit(quadratic_spec())
    with Client(service.url, token=secrets["read"]) as reader, pytest.raises(Forbidden):
        reader.submit(quadratic_spec())
    with Client(service.url, token="vrl_wrong") as wrong, pytest.raises(Unauthorized):
        wrong.list()

    with Client(f"http://127.0.0.1:{free_port()}") as nowhere:
        with pytest.raises(ConnectionFailed):
            nowhere.list()
        assert not nowhere.healthy()


def test_submit_bad_file(client: Client, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="cannot read"):
        client.submit(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(InvalidRequest, match="cannot parse"):
        client.submit(broken)


def test_wait_timeout(client: Client) -> None:
    spec = quadratic_spec("sdk-timeout", points=2, seeds=1, epochs=1)
    study = client.submit(spec)
    with pytest.raises(WaitTimeout):
        client.wait(study.id, progress=False, poll_seconds=0.05, timeout=0.01)
    client.wait(study.id, progress=False, poll_seconds=0.2, timeout=60)


def test_catalog(client: Client) -> None:
    catalog = client.catalog()
    assert "quadratic" in {t.name for t in catalog.tasks}
    vradam = next(o for o in catalog.optimizers if o.name == "vradam")
    assert {"beta3", "alpha1"} <= {h.name for h in vradam.hparams}
    assert [t.name for t in client.tasks()] == [t.name for t in catalog.tasks]


def test_report(client: Client, finished: StudyOut) -> None:
    data = client.report(finished.id, format="json")
    assert isinstance(data, dict) and data["study_id"] == finished.id
    assert {o["optimizer"] for t in data["tasks"] for o in t["optimizers"]} == {"adamw", "vradam"}
    md = client.report(finished.id, format="md")
    assert isinstance(md, str) and "vradam" in md
    png = client.report(finished.id, format="png")
    assert isinstance(png, bytes) and png.startswith(b"\x89PNG")
    with pytest.raises(InvalidRequest):
        client.report(finished.id, format="pdf")  # type: ignore[arg-type]
