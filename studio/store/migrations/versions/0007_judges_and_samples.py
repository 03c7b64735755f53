"""Comparison runs keep their judge, and results keep their samples and judgements.

A generation run can sample each example several times (`samples` on the result: every sample's
text, verdict, score and seed) and have a judge model grade each answer (`judgement` on the
result: the exact judge prompts, the judge's log-probability or raw text per verdict, and the
verdict). The run's `judge` records which judge model, judge template version, mode and scoring
produced them. All three are NULL for runs and results stored before this revision.

Revision ID: 0007_judges_and_samples
Revises: 0006_contextual_calibration
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_judges_and_samples"
down_revision: str | None = "0006_contextual_calibration"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {
    "comparison_runs": ("judge",),
    "comparison_results": ("samples", "judgement"),
}


def upgrade() -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.add_column(sa.Column(column, sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    # Batch mode: SQLite rebuilds the table to drop a column (foreign keys are off meanwhile).
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_column(column)
