"""The Python SDK: a typed client for the VRAdam Lab API.

Example:
    >>> from service.client import Client
    >>> with Client("http://127.0.0.1:8000", token="vl_...") as client:  # doctest: +SKIP
    ...     study = client.submit("studies/definitions/demo.yaml")
    ...     final = client.wait(study.id)
    ...     print(final.status, final.counts)

Results are the API's own pydantic models (:mod:`service.schemas`). Every failure raises
a :class:`ClientError` subclass carrying the server's message and field errors, never a
raw ``httpx``, JSON or pydantic error (an answer that is not the API's raises
:class:`BadResponse`).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from labcore.errors import LabError
from service.client_errors import (
    ERRORS_BY_STATUS,
    BadResponse,
    ClientError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    InvalidRequest,
    NotFound,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    WaitTimeout,
    error_from_response,
)
from service.schemas import (
    API_PREFIX,
    Catalog,
    OptimizerOut,
    Page,
    StudyOut,
    TaskOut,
    TrialOut,
)

__all__ = [
    "ERRORS_BY_STATUS",
    "BadResponse",
    "Client",
    "ClientError",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "InvalidRequest",
    "NotFound",
    "ReportFormat",
    "ServerError",
    "ServiceUnavailable",
    "Unauthorized",
    "WaitTimeout",
    "error_from_response",
]

ReportFormat = Literal["json", "md", "html", "png", "svg"]


# ----------------------------------------------------------------------- client
class Client:
    """A client of one VRAdam Lab server.

    Args:
        base_url: The server, e.g. ``http://127.0.0.1:8000``.
        token: An API token (needed for writes; for reads unless the server runs in
            local mode).
        timeout: Seconds per request.
        transport: An ``httpx`` transport (tests pass an ASGI transport).
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def __repr__(self) -> str:  # never shows the token
        return f"Client({self.base_url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # ---------------------------------------------------------------- transport
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; raise the ClientError for an error status or a failed exchange.

        Raises:
            ConnectionFailed: The server was not reached or timed out.
            BadResponse: A redirect, an undecodable body, or an invalid URL.
            ClientError: The server answered with an error status (a subclass per status).
        """
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ConnectionFailed(f"request to {self.base_url} timed out") from exc
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"cannot reach {self.base_url}: {exc}") from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # decoding errors and the like
            raise BadResponse(
                f"{method} {self.base_url}{path} failed: {type(exc).__name__}: {exc}",
                code="bad_response",
            ) from exc
        if response.status_code >= 400:
            raise error_from_response(response)
        if response.is_redirect:  # the API never redirects: another server answered
            raise BadResponse(
                f"{method} {self.base_url}{path} was redirected to "
                f"{response.headers.get('location', '?')!r}; is the base URL right?",
                status_code=response.status_code,
                code="bad_response",
            )
        return response

    def _json(self, method: str, path: str, model: Any = None, **kwargs: Any) -> Any:
        """Send a request to ``API_PREFIX + path``; return its JSON, validated as ``model``.

        Raises:
            BadResponse: The body is not JSON, or does not match ``model``.
            ClientError: The request failed (see :meth:`_request`).
        """
        return _decode(self._request(method, f"{API_PREFIX}{path}", **kwargs), model)

    # ------------------------------------------------------------------ studies
    def submit(self, spec: str | Path | Mapping[str, Any] | BaseModel) -> StudyOut:
        """Submit a study definition: a YAML/JSON file path, a dict or a ``StudySpec``.

        Raises:
            InvalidRequest: The definition is invalid (``fields`` names each problem).
            ClientError: Any other failure (e.g. Unauthorized without a write token).
        """
        body = _spec_body(spec)
        return self._json("POST", "/studies", StudyOut, json=body)

    def get(self, study_id: str) -> StudyOut:
        """Return one study.

        Raises:
            NotFound: No such study.
        """
        return self._json("GET", f"/studies/{study_id}", StudyOut)

    def list(self, status: str | None = None, limit: int = 50, offset: int = 0) -> Page[StudyOut]:
        """Return a page of studies, newest first, optionally of one status."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status:
            params["status"] = str(status)
        return self._json("GET", "/studies", Page[StudyOut], params=params)

    def trials(
        self,
        study_id: str,
        *,
        cell_id: int | None = None,
        outcome: str | None = None,
        state: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page[TrialOut]:
        """Return a page of a study's trials: running ones first, then finished, oldest first.

        Args:
            study_id: The study.
            cell_id: Only this cell's trials.
            outcome: Only finished trials with this outcome.
            state: ``"running"`` or ``"finished"`` only (default: both).
            limit: Page size.
            offset: Page start.

        Raises:
            NotFound: No such study.
        """
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if cell_id is not None:
            params["cell_id"] = cell_id
        if outcome:
            params["outcome"] = str(outcome)
        if state:
            params["state"] = str(state)
        return self._json("GET", f"/studies/{study_id}/trials", Page[TrialOut], params=params)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """Return the API's JSON answer to ``GET API_PREFIX + path``, as sent (no model).

        What ``vradam-hpo ... --json`` prints, e.g. ``client.get_json("/studies")``.

        Raises:
            BadResponse: The body is not JSON.
            ClientError: The request failed (NotFound, Unauthorized, ...).
        """
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        return self._json("GET", path, None, params=clean)

    def trials_dataframe(self, study_id: str, **filters: Any) -> Any:
        """Return every trial of a study as a pandas DataFrame, one row per trial.

        Columns as :func:`service.frames.trial_rows` names them: ``id``, ``cell_id``,
        ``task``, ``optimizer``, ``seed``, ``outcome``, ``value``, ``params_<name>`` per
        hyperparameter and ``metrics_<name>`` per final metric, ...

        Args:
            study_id: The study.
            **filters: ``cell_id`` and/or ``outcome``, as in :meth:`trials`.

        Raises:
            ImportError: pandas is not installed (``pip install 'vradam-lab[pandas]'``).
            NotFound: No such study.
        """
        from service.frames import trials_frame

        return trials_frame(self.all_trials(study_id, **filters))

    def all_trials(self, study_id: str, **filters: Any) -> list[TrialOut]:
        """Return every finished trial of a study (all pages; ``state`` to choose others)."""
        filters.setdefault("state", "finished")
        out: list[TrialOut] = []
        while True:
            page = self.trials(study_id, offset=len(out), limit=500, **filters)
            out.extend(page.items)
            if not page.items or len(out) >= page.total:
                return out

    def trial(self, study_id: str, trial_id: int) -> TrialOut:
        """Return one trial with its per-epoch metrics.

        Raises:
            NotFound: No such study or trial.
        """
        return self._json("GET", f"/studies/{study_id}/trials/{trial_id}", TrialOut)

    def cancel(self, study_id: str) -> StudyOut:
        """Ask a study to stop (a queued one is cancelled at once).

        Raises:
            NotFound: No such study.
            Conflict: The study already finished.
        """
        return self._json("POST", f"/studies/{study_id}/cancel", StudyOut)

    def delete(self, study_id: str) -> None:
        """Delete a study and everything recorded for it.

        Raises:
            NotFound: No such study.
            Conflict: The study is running (cancel it first).
        """
        self._request("DELETE", f"{API_PREFIX}/studies/{study_id}")

    def wait(
        self,
        study_id: str,
        *,
        progress: bool = True,
        poll_seconds: float = 1.0,
        timeout: float | None = None,
    ) -> StudyOut:
        """Poll a study until it reaches a final status and return it.

        Args:
            study_id: The study.
            progress: Show a rich progress bar (trials done/planned, elapsed, ETA).
            poll_seconds: Seconds between polls.
            timeout: Give up after this many seconds (``None``: wait forever).

        Raises:
            WaitTimeout: ``timeout`` passed first.
            ClientError: A request failed.
        """
        from service.progress import StudyProgress

        deadline = None if timeout is None else time.monotonic() + timeout
        with StudyProgress(enabled=progress) as bar:
            while True:
                study = self.get(study_id)
                bar.update(study)
                if study.status.finished:
                    return study
                if deadline is not None and time.monotonic() >= deadline:
                    raise WaitTimeout(
                        f"study {study_id} still {study.status} after {timeout:g} s",
                        code="timeout",
                    )
                time.sleep(poll_seconds)

    # ------------------------------------------------------------------ catalog
    def catalog(self) -> Catalog:
        """Return every task and optimizer with their hyperparameter schemas."""
        return self._json("GET", "/catalog", Catalog)

    def tasks(self) -> list[TaskOut]:
        """Return the registered tasks."""
        return self._json("GET", "/catalog/tasks", list[TaskOut])

    def optimizers(self) -> list[OptimizerOut]:
        """Return the registered optimizers."""
        return self._json("GET", "/catalog/optimizers", list[OptimizerOut])

    # ------------------------------------------------------------------ reports
    def report(
        self, study_id: str, format: ReportFormat = "json", *, baseline: str = "adamw"
    ) -> dict[str, Any] | str | bytes:
        """Return the study's robustness report.

        Returns:
            A dict for ``json``, text for ``md``/``html``/``svg``, bytes for ``png``.

        Raises:
            NotFound: No such study.
        """
        response = self._request(
            "GET",
            f"{API_PREFIX}/studies/{study_id}/report",
            params={"format": format, "baseline": baseline},
        )
        if format == "json":
            return _decode(response, dict[str, Any])
        if format == "png":
            return response.content
        return response.text

    # ------------------------------------------------------------------- health
    def healthy(self) -> bool:
        """Return whether the server answers ``/healthz``."""
        try:
            self._request("GET", "/healthz")
        except ClientError:
            return False
        return True

    def ready(self) -> bool:
        """Return whether the server and its database answer ``/readyz``."""
        try:
            self._request("GET", "/readyz")
        except ClientError:
            return False
        return True


@functools.cache
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def _decode(response: httpx.Response, model: Any = None) -> Any:
    """Return the response's JSON body, validated as ``model`` when given.

    Raises:
        BadResponse: The body is not JSON, or does not match ``model``.
    """
    where = f"{response.request.method} {response.request.url}"
    try:
        data = response.json()
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        kind = response.headers.get("content-type", "no content type")
        raise BadResponse(
            f"{where}: the answer is not JSON ({kind}): {response.text[:200]!r}",
            status_code=response.status_code,
            code="bad_response",
        ) from exc
    if model is None:
        return data
    try:
        return _adapter(model).validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        name = getattr(model, "__name__", str(model))
        raise BadResponse(
            f"{where}: the answer is not a {name} ({exc.error_count()} problems; first: "
            f"{path or 'body'}: {first['msg']}); is the server an incompatible version?",
            status_code=response.status_code,
            code="bad_response",
        ) from exc


def _spec_body(spec: str | Path | Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    """Read a study definition into a JSON-able dict (YAML or JSON files).

    Raises:
        InvalidRequest: The file is missing or does not parse.
    """
    if isinstance(spec, BaseModel):
        return spec.model_dump(mode="json")
    if isinstance(spec, Mapping):
        return dict(spec)
    path = Path(spec)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path}: {exc.strerror}", code="invalid") from exc
    from studies.spec_text import check_shape, parse_text

    try:  # bounded nesting: a nesting bomb is an error, not a RecursionError
        data = json.loads(text) if path.suffix.lower() == ".json" else parse_text(text)
        check_shape(data)
    except (ValueError, RecursionError, LabError) as exc:
        raise InvalidRequest(f"cannot parse {path}: {exc}", code="invalid") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"{path} must hold a mapping, not {type(data).__name__}")
    return data
