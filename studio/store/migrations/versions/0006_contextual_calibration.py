"""Comparison configs keep their contextual-calibration prior.

A log-likelihood run can calibrate each configuration (Zhao et al., 2021): the label prior the
model shows for content-free inputs is measured once per configuration and divided out of every
example's choice probabilities. The column holds those inputs, their exact prompts, the
log-probabilities per choice and the prior; NULL for configurations that were not calibrated
(every configuration stored before this revision).

Revision ID: 0006_contextual_calibration
Revises: 0005_unreported_token_counts
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_contextual_calibration"
down_revision: str | None = "0005_unreported_token_counts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("comparison_configs") as batch:
        batch.add_column(sa.Column("calibration", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    # Batch mode: SQLite rebuilds the table to drop a column (foreign keys are off meanwhile).
    with op.batch_alter_table("comparison_configs") as batch:
        batch.drop_column("calibration")
