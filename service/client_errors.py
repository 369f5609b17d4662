"""The SDK's errors: one :class:`ClientError` subclass per kind of failed request.

:func:`error_from_response` turns the API's one error body shape into the matching class,
carrying the server's message and field errors. :mod:`service.client` re-exports all of
them, so ``from service.client import NotFound`` keeps working.
"""

from __future__ import annotations

import httpx

from labcore.errors import LabError


class ClientError(LabError):
    """A request to the API failed.

    Attributes:
        status_code: The HTTP status (``None`` when the server was not reached).
        code: The server's error code (e.g. ``not_found``).
        message: The server's message.
        fields: ``(path, message)`` pairs for invalid input.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str = "error",
        fields: list[tuple[str, str]] | None = None,
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.message = message
        self.fields: list[tuple[str, str]] = list(fields or [])
        detail = "; ".join(f"{p}: {m}" if p else m for p, m in self.fields)
        prefix = f"HTTP {status_code}: " if status_code else ""
        text = f"{prefix}{message}"
        if detail and detail not in message:
            text = f"{text} ({detail})"
        super().__init__(text)


class ConnectionFailed(ClientError):
    """The server could not be reached (refused, timed out, DNS...)."""


class InvalidRequest(ClientError):
    """The server rejected the input (400/422); :attr:`fields` names each problem."""


class Unauthorized(ClientError):
    """401: no API token, or an unknown or revoked one."""


class Forbidden(ClientError):
    """403: the token lacks the right for this request."""


class NotFound(ClientError):
    """404: no such study, trial or route."""


class Conflict(ClientError):
    """409: the request conflicts with the resource's state."""


class ServiceUnavailable(ClientError):
    """503: the server's database is unreachable."""


class ServerError(ClientError):
    """Any other error status (5xx)."""


class BadResponse(ClientError):
    """The answer is not the API's: not JSON, not the expected shape, or redirects forever.

    Usually a wrong ``base_url`` (another service, a proxy's page) or a server of an
    incompatible version.
    """


class WaitTimeout(ClientError):
    """:meth:`Client.wait` gave up before the study finished."""


ERRORS_BY_STATUS: dict[int, type[ClientError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidRequest,
    503: ServiceUnavailable,
}


def error_from_response(response: httpx.Response) -> ClientError:
    """Turn an error response (the API's one error body shape) into a ClientError."""
    code, message, fields = "error", response.reason_phrase or "error", []
    try:
        err = response.json()["error"]
        code, message = str(err.get("code", code)), str(err.get("message", message))
        fields = [(str(f.get("path", "")), str(f.get("message", ""))) for f in err.get("fields")]
    except (ValueError, KeyError, TypeError, AttributeError):
        text = response.text.strip()
        message = text[:500] if text else message
    cls = ERRORS_BY_STATUS.get(response.status_code, ServerError)
    return cls(message, status_code=response.status_code, code=code, fields=fields)
