"""The auth matrix: no token, bad token, revoked token, read-only vs write; local mode."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from service.app import create_app
from service.settings import Settings
from studies.store import Store
from tests.service.conftest import TestClient, quadratic_spec

NONE, BAD, REVOKED, READ, WRITE = "none", "bad", "revoked", "read", "write"


@pytest.fixture
def tokens(sqlite_store: Store) -> dict[str, str | None]:
    _, read = sqlite_store.create_token("reader", ("read",))
    _, write = sqlite_store.create_token("writer", ("read", "write"))
    _, revoked = sqlite_store.create_token("old", ("read", "write"))
    sqlite_store.revoke_token("old")
    return {NONE: None, BAD: "vrl_not-a-real-token", REVOKED: revoked, READ: read, WRITE: write}


def make_client(
    store: Store, base_url: str = "http://testserver", **settings: object
) -> TestClient:
    return TestClient(create_app(Settings(db_url=store.url, **settings), store), base_url=base_url)


@pytest.fixture
def remote(sqlite_store: Store) -> Iterator[TestClient]:
    """A server not in local mode."""
    with make_client(sqlite_store, host="0.0.0.0", local_mode=False) as client:
        yield client


def call(client: TestClient, token: str | None, method: str, url: str, **kw: object) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.request(method, url, headers=headers, **kw).status_code


# expected status per token kind, for a read and for a write
MATRIX = {
    NONE: (401, 401),
    BAD: (401, 401),
    REVOKED: (401, 401),
    READ: (200, 403),
    WRITE: (200, 201),
}


@pytest.mark.parametrize("kind", list(MATRIX))
def test_matrix(remote: TestClient, tokens: dict[str, str | None], kind: str) -> None:
    read_status, write_status = MATRIX[kind]
    token = tokens[kind]
    assert call(remote, token, "GET", "/v1/studies") == read_status
    assert call(remote, token, "GET", "/v1/catalog/tasks") == read_status
    assert call(remote, token, "POST", "/v1/studies", json=quadratic_spec()) == write_status
    # a write on a missing study: auth is checked before the lookup
    expected = {200: 404, 403: 403, 401: 401}[read_status if kind != READ else 403]
    assert call(remote, token, "POST", "/v1/studies/nope/cancel") == expected
    assert call(remote, token, "DELETE", "/v1/studies/nope") == expected


def test_error_bodies_and_headers(remote: TestClient, tokens: dict[str, str | None]) -> None:
    r = remote.get("/v1/studies")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"]["code"] == "unauthenticated"
    r = remote.get("/v1/studies", headers={"Authorization": f"Bearer {tokens[REVOKED]}"})
    assert r.json()["error"]["message"] == "invalid or revoked API token"
    r = remote.get("/v1/studies", headers={"Authorization": f"Basic {tokens[WRITE]}"})
    assert r.status_code == 401  # only Bearer counts
    r = remote.post(
        "/v1/studies", json=quadratic_spec(), headers={"Authorization": f"Bearer {tokens[READ]}"}
    )
    assert r.status_code == 403
    assert r.json()["error"] == {
        "code": "permission_denied",
        "message": "token 'reader' lacks the 'write' scope",
        "fields": [],
    }


def test_probes_need_no_token(remote: TestClient) -> None:
    assert remote.get("/healthz").status_code == 200
    assert remote.get("/readyz").status_code == 200


def test_last_used_is_recorded(remote: TestClient, tokens: dict[str, str | None],
                               sqlite_store: Store) -> None:  # fmt: skip
    assert call(remote, tokens[READ], "GET", "/v1/studies") == 200
    used = {t.name: t.last_used_at for t in sqlite_store.list_tokens()}
    assert used["reader"] is not None and used["writer"] is None


def test_local_mode_on_loopback(sqlite_store: Store, tokens: dict[str, str | None]) -> None:
    with make_client(
        sqlite_store, base_url="http://127.0.0.1:8000", host="127.0.0.1", local_mode=True
    ) as local:
        assert call(local, None, "GET", "/v1/studies") == 200
        assert call(local, None, "GET", "/v1/catalog/optimizers") == 200
        assert call(local, None, "POST", "/v1/studies", json=quadratic_spec()) == 401
        assert call(local, tokens[BAD], "GET", "/v1/studies") == 401  # a bad token is refused
        assert call(local, tokens[REVOKED], "GET", "/v1/studies") == 401
        assert call(local, tokens[READ], "POST", "/v1/studies", json=quadratic_spec()) == 403
        assert call(local, tokens[WRITE], "POST", "/v1/studies", json=quadratic_spec()) == 201


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.org"])
def test_local_mode_needs_loopback(sqlite_store: Store, host: str) -> None:
    with make_client(sqlite_store, host=host, local_mode=True) as client:
        assert call(client, None, "GET", "/v1/studies") == 401


@pytest.mark.parametrize(
    ("host_header", "status"),
    [
        ("127.0.0.1:8000", 200),
        ("localhost:8000", 200),
        ("[::1]:8000", 200),
        ("localhost", 200),
        ("evil.example:8000", 401),  # a DNS-rebinding page: its own name in Host
        ("127.0.0.1.evil.example", 401),
        ("[::1", 401),
        ("", 401),
    ],
)
def test_local_mode_needs_loopback_host_header(
    sqlite_store: Store, host_header: str, status: int
) -> None:
    with make_client(sqlite_store, host="127.0.0.1", local_mode=True) as client:
        r = client.get("/v1/studies", headers={"Host": host_header})
        assert r.status_code == status, r.text


def test_tokens_never_logged(
    remote: TestClient, tokens: dict[str, str | None], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for kind in (BAD, REVOKED, READ, WRITE):
        for method, url in (("GET", "/v1/studies"), ("POST", "/v1/studies/nope/cancel")):
            call(remote, tokens[kind], method, url)
        r = remote.get("/v1/studies", headers={"Authorization": f"Bearer {tokens[kind]}"})
        assert str(tokens[kind]) not in r.text
    assert caplog.records  # something was logged (sqlalchemy, httpx...)
    for kind in (BAD, REVOKED, READ, WRITE):
        assert str(tokens[kind]) not in caplog.text


def test_secrets_are_stored_hashed(sqlite_store: Store, tokens: dict[str, str | None]) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(sqlite_store.url)
    with engine.connect() as conn:
        dump = str(conn.execute(sa.text("SELECT * FROM lab_tokens")).all())
    engine.dispose()
    for kind in (REVOKED, READ, WRITE):
        assert str(tokens[kind]) not in dump
