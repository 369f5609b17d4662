"""The API-token half of :class:`~studies.store.sql.SQLStore` (sha256 hashes only)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from labcore.errors import ConflictError, NotFoundError
from studies.store import convert
from studies.store.models import TokenRow
from studies.store.records import TokenRecord

LAST_USED_RESOLUTION = timedelta(minutes=1)
"""How stale ``last_used_at`` may get: it is written at most once per this period."""


def _now() -> datetime:
    return datetime.now(UTC)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokensMixin:
    """API tokens on SQL (mixed into ``SQLStore``)."""

    def _session(self) -> contextlib.AbstractContextManager[Session]:  # provided by SQLStore
        raise NotImplementedError

    def create_token(self, name: str, scopes: Sequence[str]) -> tuple[TokenRecord, str]:
        """Create a token; return it with its secret (shown once)."""
        secret = "vrl_" + secrets.token_urlsafe(32)
        row = TokenRow(name=name, token_hash=_hash(secret), scopes=list(scopes), created_at=_now())
        try:
            with self._session() as s:
                s.add(row)
                s.flush()
                return convert.token(row), secret
        except sa_exc.IntegrityError as e:
            raise ConflictError(f"a token named {name!r} exists") from e

    def verify_token(self, secret: str) -> TokenRecord | None:
        """Return the live token for ``secret``, else None (last_used_at: to the minute)."""
        digest = _hash(secret)
        with self._session() as s:
            row = s.scalars(sa.select(TokenRow).where(TokenRow.token_hash == digest)).one_or_none()
            if row is None or not hmac.compare_digest(row.token_hash, digest):
                return None
            if row.revoked_at is not None:
                return None
            now = _now()
            last = row.last_used_at
            if last is not None and last.tzinfo is None:
                last = last.replace(tzinfo=UTC)
            # At most one write a minute per token: a read-only request then takes no
            # write lock (SQLite serialises writers).
            if last is None or now - last > LAST_USED_RESOLUTION:
                row.last_used_at = now
            return convert.token(row)

    def list_tokens(self) -> list[TokenRecord]:
        """Return every token, oldest first."""
        with self._session() as s:
            return [convert.token(r) for r in s.scalars(sa.select(TokenRow).order_by(TokenRow.id))]

    def revoke_token(self, name: str) -> TokenRecord:
        """Revoke a token by name; NotFoundError if unknown."""
        with self._session() as s:
            row = s.scalars(sa.select(TokenRow).where(TokenRow.name == name)).one_or_none()
            if row is None:
                raise NotFoundError(f"no token {name!r}")
            if row.revoked_at is None:
                row.revoked_at = _now()
            return convert.token(row)
