"""A running study's note: what it is waiting for.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``lab_studies.note``."""
    with op.batch_alter_table("lab_studies") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop ``lab_studies.note``."""
    with op.batch_alter_table("lab_studies") as batch:
        batch.drop_column("note")
