"""The one place that maps errors to HTTP responses, all with one body shape.

Every error response is::

    {"error": {"code": "not_found", "message": "...", "fields": [{"path": ..., "message": ...}]}}

``fields`` is non-empty only for invalid input (422), with dotted paths into the request
body such as ``optimizers.1.fixed.beta3``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from labcore.errors import (
    AuthenticationError,
    ConflictError,
    LabError,
    NotFoundError,
    PermissionDeniedError,
    SpecError,
    StoreError,
    TrialError,
)

logger = logging.getLogger(__name__)

# Most specific first: the first matching class wins.
STATUS_BY_ERROR: tuple[tuple[type[LabError], int, str], ...] = (
    (SpecError, 422, "invalid"),
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (AuthenticationError, 401, "unauthenticated"),
    (PermissionDeniedError, 403, "permission_denied"),
    (StoreError, 503, "store_unavailable"),
    (TrialError, 500, "trial_error"),
)

CODE_BY_STATUS: dict[int, str] = {
    400: "bad_request",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid",
    500: "internal_error",
    503: "store_unavailable",
}


class FieldError(BaseModel):
    """One problem with one input field."""

    path: str = Field(description="Dotted path into the request, e.g. `optimizers.1.fixed.lr`.")
    message: str


class ErrorDetail(BaseModel):
    """What went wrong."""

    code: str = Field(description="Stable machine-readable code, e.g. `not_found`.")
    message: str = Field(description="Human-readable explanation.")
    fields: list[FieldError] = Field(default_factory=list)


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


def status_for(exc: LabError) -> tuple[int, str]:
    """Return the HTTP status and error code for a lab error (500 if unmapped)."""
    for cls, status, code in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal_error"


def error_response(
    status: int,
    code: str,
    message: str,
    fields: Iterable[tuple[str, str]] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Build an error response in the one body shape."""
    body = ErrorBody(
        error=ErrorDetail(
            code=code,
            message=message,
            fields=[FieldError(path=p, message=m) for p, m in fields],
        )
    )
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _loc_path(loc: Sequence[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        kind = parts.pop(0)
        if kind != "body" and not parts:
            return str(kind)
    return ".".join(str(p) for p in parts)


def validation_fields(errors: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """Turn pydantic/FastAPI validation errors into ``(path, message)`` pairs."""
    return [(_loc_path(e.get("loc", ())), str(e.get("msg", "invalid"))) for e in errors]


async def _lab_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LabError)
    status, code = status_for(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    fields = exc.errors if isinstance(exc, SpecError) else ()
    message = f"invalid study definition: {exc}" if isinstance(exc, SpecError) else str(exc)
    if status >= 500:  # details go to the log, not to clients
        logger.error("%s %s failed: %s", request.method, request.url.path, exc)
        message = "the database is unavailable" if status == 503 else "internal error"
    return error_response(status, code, message, fields, headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = validation_fields(exc.errors())
    summary = "; ".join(f"{p}: {m}" if p else m for p, m in fields)
    return error_response(422, "invalid", f"invalid request: {summary}", fields)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = CODE_BY_STATUS.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("%s %s failed unexpectedly", request.method, request.url.path)
    return error_response(500, "internal_error", f"internal error: {type(exc).__name__}")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the one body shape."""
    app.add_exception_handler(LabError, _lab_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries describing the error bodies a route can return."""
    descriptions = {
        401: "Missing, unknown or revoked API token.",
        403: "The token lacks the scope this request needs.",
        404: "No such resource.",
        409: "The request conflicts with the resource's state.",
        413: "The request body is larger than the server's limit (VRADAM_LAB_MAX_BODY_BYTES).",
        422: "Invalid input; `fields` names each problem's path.",
        503: "The database is unreachable.",
    }
    return {s: {"model": ErrorBody, "description": descriptions.get(s, "Error.")} for s in statuses}
