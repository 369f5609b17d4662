"""Initial schema: studies, cells, trials, per-epoch metrics, API tokens.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from studies.store.models import MetricsJSON, SafeJSON, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the lab's tables."""
    op.create_table(
        "lab_studies",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("spec", SafeJSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("worker_id", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_lab_studies_name", "lab_studies", ["name"])
    op.create_index("ix_lab_studies_status", "lab_studies", ["status"])
    op.create_index("ix_lab_studies_created_at", "lab_studies", ["created_at"])

    op.create_table(
        "lab_cells",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "study_id",
            sa.String(32),
            sa.ForeignKey("lab_studies.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("task", sa.String(200), nullable=False),
        sa.Column("optimizer", sa.String(300), nullable=False),
        sa.Column("optuna_study_name", sa.String(512), nullable=False, unique=True),
        sa.Column("n_planned", sa.Integer(), nullable=False),
        sa.UniqueConstraint("study_id", "task", "optimizer"),
    )
    op.create_index("ix_lab_cells_study_id", "lab_cells", ["study_id"])

    op.create_table(
        "lab_trials",
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
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("metrics", MetricsJSON(), nullable=False),
        sa.Column("initial_metrics", MetricsJSON(), nullable=False),
        sa.Column("diverged_at_step", sa.Integer(), nullable=True),
        sa.Column("effective_lr", MetricsJSON(), nullable=False),
        sa.Column("wall_time_s", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("device", sa.String(32), nullable=True),
        sa.Column("optuna_trial_number", sa.Integer(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("cell_id", "key"),
    )
    op.create_index("ix_lab_trials_study_id", "lab_trials", ["study_id"])
    op.create_index("ix_lab_trials_cell_id", "lab_trials", ["cell_id"])
    op.create_index("ix_lab_trials_outcome", "lab_trials", ["outcome"])

    op.create_table(
        "lab_trial_epochs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "trial_id",
            sa.Integer(),
            sa.ForeignKey("lab_trials.id", ondelete="CASCADE"),
            nullable=False,
        ),
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
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("metrics", MetricsJSON(), nullable=False),
        sa.Column("effective_lr_ratio", sa.Float(), nullable=True),
        sa.UniqueConstraint("trial_id", "epoch"),
    )
    op.create_index("ix_lab_trial_epochs_study_id", "lab_trial_epochs", ["study_id"])

    op.create_table(
        "lab_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
    )


def downgrade() -> None:
    """Drop the lab's tables."""
    for table in ("lab_tokens", "lab_trial_epochs", "lab_trials", "lab_cells", "lab_studies"):
        op.drop_table(table)
