"""The REST API in-process (FastAPI TestClient), on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import optuna
import pytest

from labcore.outcomes import Outcome
from labcore.results import TrialResult
from service.app import create_app
from service.settings import Settings
from studies.store import Store, open_store
from studies.store.records import StudyStatus
from tests.service.conftest import TestClient, fake_result, quadratic_spec


@pytest.fixture
def api(store: Store) -> Iterator[TestClient]:
    _, secret = store.create_token("writer", ("read", "write"))
    app = create_app(Settings(db_url=store.url), store)
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as client:
        yield client


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def on_gpu(result: TrialResult) -> TrialResult:
    return dataclasses.replace(result, device="cuda")


def seed_trials(store: Store, study_id: str) -> list[int]:
    """Give a study two cells and four trials with every outcome (no training)."""
    a = store.ensure_cell(study_id, "quadratic", "adamw", f"{study_id}/quadratic/adamw", 3)
    v = store.ensure_cell(study_id, "quadratic", "vradam", f"{study_id}/quadratic/vradam", 3)
    ids = [
        store.record_trial(
            a.id, "k1", {"lr": 0.01}, 0, on_gpu(fake_result(Outcome.COMPLETE, 0.5)), 0.5, 0
        ),
        store.record_trial(a.id, "k2", {"lr": 1.0}, 0, fake_result(Outcome.DIVERGED, 9.0), 10.0, 1),
        store.record_trial(v.id, "k1", {"lr": 0.01}, 0, fake_result(Outcome.COMPLETE, 0.4), 0.4, 0),
        store.record_trial(
            v.id, "k2", {"lr": 1.0}, 0, fake_result(Outcome.FAILED, 0.0), None, None
        ),
    ]
    return [t.id for t in ids]


def submit(api: TestClient, **kwargs) -> dict:
    r = api.post("/v1/studies", json=quadratic_spec(**kwargs))
    assert r.status_code == 201, r.text
    return r.json()


def test_health_and_ready(api: TestClient) -> None:
    assert api.get("/healthz", headers={"Authorization": ""}).json() == {"status": "ok"}
    assert api.get("/v1/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ok", "database": "ok"}


def test_readyz_503_when_database_unreachable() -> None:
    store = open_store("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    with TestClient(create_app(Settings(db_url=store.url), store)) as client:
        err = assert_error(client.get("/readyz"), 503, "store_unavailable")
    assert "database" in err["message"]


def test_submit_then_get(api: TestClient) -> None:
    r = api.post("/v1/studies", json=quadratic_spec("first"))
    assert r.status_code == 201
    study = r.json()
    assert study["status"] == "queued"
    assert study["name"] == "first"
    assert r.headers["location"] == f"/v1/studies/{study['id']}" == study["links"]["self"]
    assert study["links"]["trials"].endswith("/trials")
    assert study["spec"]["sampler"] == {"name": "grid", "points": {"lr": 3}, "n_trials": None,
                                        "seed": 0}  # fmt: skip
    got = api.get(study["links"]["self"]).json()
    assert got["id"] == study["id"]
    assert got["spec"] == study["spec"]
    assert got["timings"]["started_at"] is None


def test_submit_invalid_names_field_paths(api: TestClient) -> None:
    spec = quadratic_spec(optimizers=("adamw",))
    spec["optimizers"] = [{"name": "adamw", "fixed": {"beta1": 2.0}}, {"name": "nope"}]
    err = assert_error(api.post("/v1/studies", json=spec), 422, "invalid")
    paths = {f["path"] for f in err["fields"]}
    assert {"optimizers.0.fixed.beta1", "optimizers.1.name"} <= paths
    assert "beta1" in err["message"]

    err = assert_error(api.post("/v1/studies", json={"name": "x"}), 422, "invalid")
    assert {f["path"] for f in err["fields"]} == {"tasks", "optimizers"}


def test_submit_malformed_json(api: TestClient) -> None:
    r = api.post("/v1/studies", content=b"{not json", headers={"Content-Type": "application/json"})
    err = assert_error(r, 422, "invalid")
    assert err["fields"]


def test_list_filters_and_pages(api: TestClient, store: Store) -> None:
    ids = [submit(api, name=f"s{i}")["id"] for i in range(3)]
    store.request_cancel(ids[0])
    page = api.get("/v1/studies", params={"limit": 2}).json()
    assert page["total"] == 3 and page["limit"] == 2 and page["offset"] == 0
    assert [s["id"] for s in page["items"]] == [ids[2], ids[1]]  # newest first
    rest = api.get("/v1/studies", params={"limit": 2, "offset": 2}).json()
    assert [s["id"] for s in rest["items"]] == [ids[0]]
    queued = api.get("/v1/studies", params={"status": "queued"}).json()
    assert queued["total"] == 2
    assert {s["id"] for s in queued["items"]} == set(ids[1:])
    cancelled = api.get("/v1/studies", params={"status": "cancelled"}).json()
    assert [s["id"] for s in cancelled["items"]] == [ids[0]]
    assert_error(api.get("/v1/studies", params={"status": "bogus"}), 422, "invalid")
    assert_error(api.get("/v1/studies", params={"limit": 0}), 422, "invalid")


def test_unknown_study_and_route(api: TestClient) -> None:
    err = assert_error(api.get("/v1/studies/doesnotexist"), 404, "not_found")
    assert "doesnotexist" in err["message"]
    assert_error(api.get("/v1/studies/doesnotexist/trials"), 404, "not_found")
    assert_error(api.get("/v1/nothing/here"), 404, "not_found")
    assert_error(api.put("/v1/studies"), 405, "method_not_allowed")


def test_progress_counts_and_trials(api: TestClient, store: Store) -> None:
    sid = submit(api)["id"]
    trial_ids = seed_trials(store, sid)
    study = api.get(f"/v1/studies/{sid}").json()
    assert study["counts"] == {"complete": 2, "diverged": 1, "failed": 1}
    assert study["progress"]["n_planned"] == 6
    assert study["progress"]["n_finished"] == 3
    assert study["progress"]["fraction"] == pytest.approx(0.5)
    cells = {c["optimizer"]: c for c in study["progress"]["cells"]}
    assert cells["adamw"]["n_finished"] == 2
    assert cells["vradam"]["counts"] == {"complete": 1, "failed": 1}

    page = api.get(f"/v1/studies/{sid}/trials").json()
    assert page["total"] == 4 and [t["id"] for t in page["items"]] == trial_ids
    assert all(t["epochs"] is None for t in page["items"])
    assert [t["device"] for t in page["items"]] == ["cuda", "cpu", "cpu", "cpu"]
    only = api.get(f"/v1/studies/{sid}/trials", params={"outcome": "diverged"}).json()
    assert [t["hparams"] for t in only["items"]] == [{"lr": 1.0}]
    assert only["items"][0]["diverged_at_step"] == 5
    cell = api.get(f"/v1/studies/{sid}/trials", params={"cell_id": cells["vradam"]["id"]}).json()
    assert {t["outcome"] for t in cell["items"]} == {"complete", "failed"}
    second = api.get(f"/v1/studies/{sid}/trials", params={"limit": 1, "offset": 1}).json()
    assert second["total"] == 4 and [t["id"] for t in second["items"]] == [trial_ids[1]]
    assert_error(api.get(f"/v1/studies/{sid}/trials", params={"outcome": "nope"}), 422, "invalid")

    one = api.get(f"/v1/studies/{sid}/trials/{trial_ids[0]}").json()
    assert [e["epoch"] for e in one["epochs"]] == [0, 1, 2]
    assert one["epochs"][2]["metrics"]["train_loss"] == pytest.approx(2.5)
    assert one["value"] == pytest.approx(0.5)
    assert_error(api.get(f"/v1/studies/{sid}/trials/999999"), 404, "not_found")


def test_cancel(api: TestClient, store: Store) -> None:
    queued = submit(api, name="q")["id"]
    r = api.post(f"/v1/studies/{queued}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    err = assert_error(api.post(f"/v1/studies/{queued}/cancel"), 409, "conflict")
    assert queued in err["message"]

    running = submit(api, name="r")["id"]
    claimed = store.claim_study("w1", 60)
    assert claimed is not None and claimed.id == running
    body = api.post(f"/v1/studies/{running}/cancel").json()
    assert body["status"] == "running" and body["cancel_requested"] is True
    assert_error(api.post("/v1/studies/nope/cancel"), 404, "not_found")


def test_delete(api: TestClient, store: Store) -> None:
    sid = submit(api)["id"]
    seed_trials(store, sid)
    name = f"{sid}/quadratic/adamw"
    optuna.create_study(study_name=name, storage=store.url)
    store.claim_study("w1", 60)
    assert_error(api.delete(f"/v1/studies/{sid}"), 409, "conflict")
    store.release_study(sid, "w1", StudyStatus.COMPLETED)
    r = api.delete(f"/v1/studies/{sid}")
    assert r.status_code == 204 and r.content == b""
    assert_error(api.get(f"/v1/studies/{sid}"), 404, "not_found")
    assert name not in optuna.get_all_study_names(storage=store.url)
    assert_error(api.delete(f"/v1/studies/{sid}"), 404, "not_found")


def test_catalog(api: TestClient) -> None:
    tasks = {t["name"]: t for t in api.get("/v1/catalog/tasks").json()}
    assert {"quadratic", "digits_cnn", "stdlib_char_lm"} <= set(tasks)
    assert tasks["quadratic"]["target_metric"] == "val_loss"
    assert "val_loss" in tasks["quadratic"]["metrics"]
    assert tasks["quadratic"]["default_budget"]["epochs"] >= 1
    opts = {o["name"]: o for o in api.get("/v1/catalog/optimizers").json()}
    assert {"vradam", "adamw", "sgd", "lion"} <= set(opts)
    hp = {h["name"]: h for h in opts["vradam"]["hparams"]}
    assert {"lr", "beta1", "beta3", "alpha1"} <= set(hp)
    assert hp["beta1"]["high"] == 1.0 and hp["beta1"]["high_inclusive"] is False
    assert hp["lr"]["log"] is True
    both = api.get("/v1/catalog").json()
    assert {t["name"] for t in both["tasks"]} == set(tasks)


def test_openapi_describes_every_response(api: TestClient) -> None:
    schema = api.get("/v1/openapi.json").json()
    paths = schema["paths"]
    assert {"/v1/studies", "/v1/studies/{study_id}", "/v1/studies/{study_id}/cancel",
            "/v1/studies/{study_id}/trials", "/v1/studies/{study_id}/trials/{trial_id}",
            "/v1/studies/{study_id}/report", "/v1/catalog/tasks", "/v1/catalog/optimizers",
            "/v1/healthz", "/v1/readyz"} <= set(paths)  # fmt: skip
    post = paths["/v1/studies"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StudySpec"
    }
    assert {"201", "401", "403", "422", "503"} <= set(post["responses"])
    assert "StudySpec" in schema["components"]["schemas"]
    assert "ErrorBody" in schema["components"]["schemas"]
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, ops in paths.items():
        for method, op in ops.items():
            errors = {c: r for c, r in op["responses"].items() if c.startswith(("4", "5"))}
            if path.endswith("healthz"):
                assert not errors
                continue
            assert errors, (method, path)
            for code, response in errors.items():  # every error is documented as ErrorBody
                body = response["content"]["application/json"]["schema"]
                assert body == error_ref, (method, path, code, body)
            if path != "/v1/readyz":  # every token-checked route can fail the token or the DB
                assert {"401", "403", "503"} <= set(errors), (method, path)
            if "{study_id}" in path:
                assert "404" in errors, (method, path)
            if op.get("parameters") or "requestBody" in op:
                assert "422" in errors, (method, path)
    for path, method in [("/v1/studies/{study_id}", "delete"),
                         ("/v1/studies/{study_id}/cancel", "post")]:  # fmt: skip
        assert "409" in paths[path][method]["responses"]
    # FastAPI's default 422 (HTTPValidationError) is never what the API returns
    assert "HTTPValidationError" not in str(schema)
    assert "bearer" in str(schema["components"]["securitySchemes"]).lower()


def test_report_formats(api: TestClient, store: Store) -> None:
    sid = submit(api)["id"]
    seed_trials(store, sid)
    r = api.get(f"/v1/studies/{sid}/report")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json()["study_id"] == sid and r.json()["partial"] is True
    svg = api.get(f"/v1/studies/{sid}/report", params={"format": "svg"})
    assert svg.headers["content-type"] == "image/svg+xml" and b"<svg" in svg.content
    md = api.get(f"/v1/studies/{sid}/report", params={"format": "md", "baseline": "vradam"})
    assert md.headers["content-type"].startswith("text/markdown") and "adamw" in md.text
    assert_error(api.get(f"/v1/studies/{sid}/report", params={"format": "pdf"}), 422, "invalid")
    assert_error(api.get("/v1/studies/nope/report"), 404, "not_found")
    empty = submit(api, name="empty")["id"]
    assert api.get(f"/v1/studies/{empty}/report").json()["n_trials"] == 0
