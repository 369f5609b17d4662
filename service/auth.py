"""Bearer-token authentication and the read/write rights, as FastAPI dependencies.

Tokens are verified by the store (sha256 hash, constant-time comparison). Writes always
need a token with the ``write`` scope; reads need a ``read`` (or ``write``) token unless
the server runs in local mode bound to a loopback address. Secrets never reach a log:
nothing here logs the header, and failures name no part of the token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from labcore.errors import AuthenticationError, PermissionDeniedError
from service.settings import Settings, is_loopback
from studies.store import Store
from studies.store.records import TokenRecord

READ = "read"
WRITE = "write"
SCOPES = (READ, WRITE)

# auto_error=False: a missing header becomes our 401 body, not FastAPI's 403.
bearer = HTTPBearer(
    auto_error=False,
    description="An API token from `vradam-hpo token create --name NAME`.",
)


def get_store(request: Request) -> Store:
    """Return the app's store."""
    return request.app.state.store


def get_settings(request: Request) -> Settings:
    """Return the app's settings."""
    return request.app.state.settings


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def authenticate(store: Store, credentials: HTTPAuthorizationCredentials | None) -> TokenRecord:
    """Return the token record for the request's bearer credentials.

    Raises:
        AuthenticationError: No bearer token, or an unknown or revoked one.
    """
    if credentials is None or not credentials.credentials:
        raise AuthenticationError("an API token is required (Authorization: Bearer <token>)")
    token = store.verify_token(credentials.credentials)
    if token is None:
        raise AuthenticationError("invalid or revoked API token")
    return token


def has_scope(token: TokenRecord, scope: str) -> bool:
    """Return whether ``token`` grants ``scope`` (``write`` implies ``read``)."""
    return scope in token.scopes or (scope == READ and WRITE in token.scopes)


def loopback_host_header(request: Request) -> bool:
    """Return whether the request's ``Host`` header names this machine.

    A page on another site that rebinds its DNS name to 127.0.0.1 reaches a local server,
    but its requests carry that site's name in ``Host``: they are treated as remote.
    """
    host = request.headers.get("host", "").strip().lower()
    if host.startswith("["):  # [::1]:8000
        host = host[1 : host.find("]")] if "]" in host else ""
    elif host.count(":") == 1:  # 127.0.0.1:8000, localhost:8000
        host = host.split(":", 1)[0]
    return bool(host) and is_loopback(host)


def require_read(
    request: Request, store: StoreDep, settings: SettingsDep, credentials: Credentials
) -> None:
    """Allow a read: open in local mode on loopback, else a token with ``read``.

    Local mode opens reads only when the server is bound to a loopback address and the
    request's ``Host`` header names a loopback address too (a DNS-rebinding defence).
    A token sent in local mode is still checked, so a revoked one is refused everywhere.

    Raises:
        AuthenticationError: The token is missing (outside local mode), unknown or revoked.
        PermissionDeniedError: The token has neither ``read`` nor ``write``.
    """
    if settings.open_reads and credentials is None and loopback_host_header(request):
        return
    token = authenticate(store, credentials)
    if not has_scope(token, READ):
        raise PermissionDeniedError(f"token {token.name!r} lacks the 'read' scope")


def require_write(store: StoreDep, credentials: Credentials) -> None:
    """Allow a write: always a token with ``write``.

    Raises:
        AuthenticationError: The token is missing, unknown or revoked.
        PermissionDeniedError: The token lacks ``write``.
    """
    token = authenticate(store, credentials)
    if not has_scope(token, WRITE):
        raise PermissionDeniedError(f"token {token.name!r} lacks the 'write' scope")


ReadAccess = Depends(require_read)
WriteAccess = Depends(require_write)
