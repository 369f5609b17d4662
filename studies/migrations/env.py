"""Alembic environment for the lab's tables.

Run programmatically by :meth:`studies.store.sql.SQLStore.create_schema`, which passes an
open connection in ``config.attributes["connection"]``; the command line also works with
``sqlalchemy.url`` set in the config. Optuna's tables share the database and are left
alone (``include_object``); our history lives in ``lab_alembic_version``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context

from studies.store.models import VERSION_TABLE, Base

config = context.config
target_metadata = Base.metadata


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Only the lab's own tables take part in autogenerate (not Optuna's, not history)."""
    if type_ == "table":
        return bool(name and name.startswith("lab_") and name != VERSION_TABLE)
    return True


def _configure(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL to stdout without a database."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate through the caller's connection, or one made from ``sqlalchemy.url``.

    The caller (:meth:`~studies.store.sql.SQLStore.create_schema`) already holds the
    schema lock. From the command line the same lock is taken here (on SQLite the
    ``<database>.lock`` file, never the database file) and the engine gets the store's
    SQLite settings (busy timeout, WAL), so a live service may keep running.
    """
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    from studies.store.sql import SQLStore

    store = SQLStore(config.get_main_option("sqlalchemy.url") or "")
    try:
        with store.locked_connection() as conn:
            _configure(conn)
    finally:
        store.close()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
