"""Experiment annotations: display names and notes on runs, and tags on comparison/tuning runs.

Revision ID: 0004_experiment_annotations
Revises: 0003_tuning
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_experiment_annotations"
down_revision: str | None = "0003_tuning"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUN_TABLES = ("comparison_runs", "tuning_runs")
# tag table -> (run table, run foreign key column)
TAG_TABLES = {
    "comparison_run_tags": ("comparison_runs", "comparison_run_id"),
    "tuning_run_tags": ("tuning_runs", "tuning_run_id"),
}


def upgrade() -> None:
    for table in RUN_TABLES:
        op.add_column(table, sa.Column("display_name", sa.String(length=256), nullable=True))
        op.add_column(table, sa.Column("note", sa.Text(), nullable=True))
    for table, (runs, column) in TAG_TABLES.items():
        op.create_table(
            table,
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column(column, sa.Integer(), nullable=False),
            sa.Column("tag", sa.String(length=64), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(
                [column],
                [f"{runs}.id"],
                name=op.f(f"fk_{table}_{column}_{runs}"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
            sa.UniqueConstraint(column, "tag", name=op.f(f"uq_{table}_{column}_tag")),
        )
        op.create_index(op.f(f"ix_{table}_tag"), table, ["tag"])


def downgrade() -> None:
    for table in reversed(TAG_TABLES):
        op.drop_index(op.f(f"ix_{table}_tag"), table_name=table)
        op.drop_table(table)
    for table in reversed(RUN_TABLES):
        # Batch mode: SQLite rebuilds the table (foreign keys are off during migrations).
        with op.batch_alter_table(table) as batch:
            batch.drop_column("note")
            batch.drop_column("display_name")
