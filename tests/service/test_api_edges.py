"""The API under hostile or oversized input: limits, 413, malformed JSON, integer ranges,
and a statement count per listing that does not grow with the number of studies."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from labcore.outcomes import Outcome
from service.app import create_app
from service.embedded import EmbeddedService
from service.settings import Settings
from studies.store import Store
from tests.service.conftest import TestClient, fake_result, quadratic_spec


@pytest.fixture
def api(store: Store) -> Iterator[TestClient]:
    _, secret = store.create_token("writer", ("read", "write"))
    app = create_app(Settings(db_url=store.url, max_body_bytes=64 * 1024), store)
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as client:
        yield client


def error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    return body["error"]


@pytest.mark.parametrize(
    ("extra", "path", "needle"),
    [
        ({"sampler": {"name": "random", "n_trials": 10**9}}, "sampler.n_trials",
         "1000000000 exceeds the limit of 10000 trials per study"),
        ({"sampler": {"name": "grid", "points": {"lr": 10**7}}}, "sampler.points.lr",
         "grid points per dimension"),
        ({"max_retries": 10**9}, "max_retries", "exceeds the limit of 10 retries"),
        ({"seeds": [2**31]}, "seeds.0", "outside the range 0..2147483647"),
        ({"tasks": [{"name": "quadratic", "options": {"dim": 1e9}}]}, "tasks.0.options.dim",
         "outside the allowed range"),
    ],
)  # fmt: skip
def test_limits_give_422_naming_field_and_limit(
    api: TestClient, extra: dict[str, Any], path: str, needle: str
) -> None:
    err = error(api.post("/v1/studies", json={**quadratic_spec(), **extra}), 422, "invalid")
    fields = {f["path"]: f["message"] for f in err["fields"]}
    assert needle in fields[path], fields
    assert api.get("/v1/studies").json()["total"] == 0  # nothing stored


def test_limits_come_from_settings(store: Store) -> None:
    _, secret = store.create_token("w2", ("read", "write"))
    app = create_app(Settings(db_url=store.url, max_trials_per_study=4), store)
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as client:
        err = error(client.post("/v1/studies", json=quadratic_spec(points=3)), 422, "invalid")
        assert "over the limit of 4 trials per study" in err["fields"][0]["message"]


def test_body_over_the_limit_is_413(api: TestClient) -> None:
    big = quadratic_spec(description="x" * 100_000)
    error(api.post("/v1/studies", json=big), 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"name": "x", "description": "'
        for _ in range(100):
            yield b"y" * 1024
        yield b'"}'

    r = api.post("/v1/studies", content=chunks(), headers={"Content-Type": "application/json"})
    error(r, 413, "payload_too_large")


def test_declared_length_is_refused_before_the_body_is_sent(sqlite_store: Store) -> None:
    settings = Settings(db_url=sqlite_store.url, port=0, max_body_bytes=1024 * 1024)
    with (
        EmbeddedService(settings, store=sqlite_store, with_worker=False) as svc,
        socket.create_connection(("127.0.0.1", svc.port), timeout=10) as sock,
    ):
        sock.sendall(
            b"POST /v1/studies HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{"
        )  # 100 MB announced, 1 byte sent: the answer must not wait for the rest
        chunks = []
        while chunk := sock.recv(65536):  # the server closes the connection after its 413
            chunks.append(chunk)
        answer = b"".join(chunks).decode()
    assert answer.startswith("HTTP/1.1 413"), answer
    assert '"payload_too_large"' in answer


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"", b"[1, 2]", b'"a string"', b"\xff\xfe", b"[" * 5000 + b"]" * 5000,
     b'{"a":' * 3000 + b"1" + b"}" * 3000],
    ids=["garbage", "empty", "array", "string", "not-utf8", "deep-array", "deep-object"],
)  # fmt: skip
def test_malformed_json_gets_the_error_body(api: TestClient, body: bytes) -> None:
    r = api.post("/v1/studies", content=body, headers={"Content-Type": "application/json"})
    err = error(r, 422, "invalid")
    assert err["message"].startswith("invalid study definition")


@pytest.mark.parametrize(
    "url",
    [
        "/v1/studies?offset=9223372036854775808",
        "/v1/studies?offset=-1",
        "/v1/studies?limit=100000000000000000000",
        "/v1/studies/abc/trials/9223372036854775808",
        "/v1/studies/abc/trials/2147483648",
        "/v1/studies/abc/trials?cell_id=9223372036854775808",
        "/v1/studies/abc/trials?offset=99999999999999999999",
        "/v1/studies/a%00b",
        "/v1/studies/" + "a" * 65,
    ],
)
def test_out_of_range_integers_and_ids_are_422(api: TestClient, url: str) -> None:
    error(api.get(url), 422, "invalid")


def test_in_range_extremes_are_not_errors(api: TestClient) -> None:
    assert api.get("/v1/studies?offset=9223372036854775807").json()["items"] == []
    sid = api.post("/v1/studies", json=quadratic_spec()).json()["id"]
    error(api.get(f"/v1/studies/{sid}/trials/2147483647"), 404, "not_found")
    page = api.get(f"/v1/studies/{sid}/trials?offset=9223372036854775807&cell_id=2147483647")
    assert page.status_code == 200 and page.json()["items"] == []


@contextlib.contextmanager
def count_statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", listener)


def fill(store: Store, n: int) -> list[str]:
    ids = []
    for i in range(n):
        rec = store.create_study(f"s{i}", quadratic_spec(f"s{i}"))
        for opt in ("adamw", "vradam"):
            cell = store.ensure_cell(rec.id, "quadratic", opt, f"{rec.id}/q/{opt}", 3)
            store.record_trial(cell.id, "k", {"lr": 0.1}, 0, fake_result(Outcome.COMPLETE, 1.0),
                               1.0, 0)  # fmt: skip
        ids.append(rec.id)
    return ids


def statements_for(api: TestClient, url: str) -> int:
    api.get(url)  # warm: token last_used_at, caches
    with count_statements() as seen:
        r = api.get(url)
    assert r.status_code == 200, r.text
    return len(seen)


def test_statement_count_independent_of_n(api: TestClient, store: Store) -> None:
    counts = {}
    for n in (5, 50):
        ids = fill(store, n - (5 if counts else 0))
        counts[n] = (
            statements_for(api, "/v1/studies?limit=500"),
            statements_for(api, f"/v1/studies/{ids[0]}"),
        )
    print("statements per request (list, one study):", counts)
    assert counts[5] == counts[50], counts
    assert counts[50][0] <= 6 and counts[50][1] <= 6, counts
    page = api.get("/v1/studies?limit=500").json()
    assert page["total"] == 50 and all(item["spec"] is None for item in page["items"])
    assert all(item["progress"]["n_finished"] == 2 for item in page["items"])
    full = api.get("/v1/studies?limit=2&include=spec").json()
    assert all(item["spec"]["name"] == item["name"] for item in full["items"])
