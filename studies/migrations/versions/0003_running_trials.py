"""Running trials: what each worker runs now, for live progress.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from studies.store.models import MetricsJSON, SafeJSON, UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``lab_running_trials``."""
    op.create_table(
        "lab_running_trials",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "study_id",
            sa.String(32),
            sa.ForeignKey("lab_studies.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "cell_id",
            sa.Integer(),
            sa.ForeignKey("lab_cells.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("hparams", SafeJSON(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("metrics", MetricsJSON(), nullable=True),
        sa.Column("optuna_trial_number", sa.Integer(), nullable=True),
        sa.UniqueConstraint("cell_id", "key"),
    )
    op.create_index("ix_lab_running_trials_study_id", "lab_running_trials", ["study_id"])


def downgrade() -> None:
    """Drop ``lab_running_trials``."""
    op.drop_index("ix_lab_running_trials_study_id", table_name="lab_running_trials")
    op.drop_table("lab_running_trials")
