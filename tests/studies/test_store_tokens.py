"""Token bookkeeping: last_used_at is written at most once a minute (no write per read)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from studies.store import SQLStore
from studies.store.models import TokenRow


def test_last_used_at_is_written_at_most_once_a_minute(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 'lab.db'}")
    store.create_schema()
    _, secret = store.create_token("reader", ("read",))
    first = store.verify_token(secret)
    assert first is not None and first.last_used_at is not None
    again = store.verify_token(secret)
    assert again is not None and again.last_used_at == first.last_used_at

    stale = datetime.now(UTC) - timedelta(minutes=5)
    engine = sa.create_engine(store.url)
    with engine.begin() as conn:
        conn.execute(sa.update(TokenRow).values(last_used_at=stale))
    engine.dispose()
    later = store.verify_token(secret)
    assert later is not None and later.last_used_at > stale + timedelta(minutes=4)
    store.close()
