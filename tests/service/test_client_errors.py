"""The SDK against a real HTTP server that is not the API: every failure is a ClientError."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from service.client import BadResponse, Client, ClientError, ServerError

# path -> (status, headers, body)
ANSWERS: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/v1/studies/html": (200, {"Content-Type": "text/html"}, b"<html>a login page</html>"),
    "/v1/studies/shape": (200, {"Content-Type": "application/json"}, b'{"id": 3, "nope": true}'),
    "/v1/studies": (200, {"Content-Type": "application/json"}, b'{"items": "x"}'),
    "/v1/catalog/tasks": (200, {"Content-Type": "application/json"}, b'[{"name": 1}]'),
    "/v1/studies/moved": (302, {"Location": "http://elsewhere.invalid/v1"}, b""),
    "/v1/studies/gzip": (
        200,
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        b"definitely not gzip",
    ),
    "/v1/studies/s/report": (200, {"Content-Type": "application/json"}, b"{truncated"),
    "/v1/studies/boom": (502, {"Content-Type": "text/html"}, b"<h1>Bad Gateway</h1>"),
}


class Handler(BaseHTTPRequestHandler):
    """Answers each known path with its canned (wrong) answer; 404 JSON otherwise."""

    def _answer(self) -> None:
        status, headers, body = ANSWERS.get(
            self.path.split("?")[0],
            (404, {"Content-Type": "application/json"}, json.dumps({"detail": "?"}).encode()),
        )
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Client(f"http://127.0.0.1:{server.server_address[1]}", timeout=5) as c:
            yield c
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_non_json_answer(client: Client) -> None:
    with pytest.raises(BadResponse) as info:
        client.get("html")
    err = info.value
    assert isinstance(err, ClientError) and err.status_code == 200 and err.code == "bad_response"
    assert "not JSON" in err.message and "text/html" in err.message and "login" in err.message
    with pytest.raises(BadResponse, match="not JSON"):
        client.report("s", format="json")


def test_json_of_the_wrong_shape(client: Client) -> None:
    with pytest.raises(BadResponse, match=r"not a StudyOut \(\d+ problems; first: ") as info:
        client.get("shape")
    assert "incompatible version" in info.value.message
    with pytest.raises(BadResponse, match="not a Page"):
        client.list()
    with pytest.raises(BadResponse, match=r"first: 0\.name"):
        client.tasks()


def test_redirect_is_not_success(client: Client) -> None:
    with pytest.raises(BadResponse, match=r"redirected to 'http://elsewhere\.invalid/v1'") as info:
        client.delete("moved")  # reads no body: a redirect must not pass for a deletion
    assert info.value.status_code == 302
    with pytest.raises(BadResponse, match="redirected"):
        client.get("moved")


def test_undecodable_body(client: Client) -> None:
    with pytest.raises(BadResponse, match="DecodingError"):
        client.get("gzip")


def test_error_status_without_error_body(client: Client) -> None:
    with pytest.raises(ServerError) as info:
        client.get("boom")
    assert info.value.status_code == 502 and "Bad Gateway" in info.value.message
    assert not client.healthy()  # 404 from this server: not healthy, and no raw error
