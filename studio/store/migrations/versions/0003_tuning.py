"""Tuning runs, their metric points, and trained adapters with their lineage.

Revision ID: 0003_tuning
Revises: 0002_prompts_datasets_comparisons
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_tuning"
down_revision: str | None = "0002_prompts_datasets_comparisons"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("tuning_runs", "status"),
    ("tuning_runs", "dataset_id"),
    ("tuning_runs", "template_version_id"),
    ("tuning_runs", "created_at"),
    ("metric_points", "tuning_run_id"),
    ("adapters", "tuning_run_id"),
    ("adapters", "dataset_id"),
    ("adapters", "template_version_id"),
)


def upgrade() -> None:
    _create_tuning_runs()
    _create_metric_points()
    _create_adapters()
    for table, column in INDEXES:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column])


def downgrade() -> None:
    for table, column in reversed(INDEXES):
        op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)
    op.drop_table("adapters")
    op.drop_table("metric_points")
    op.drop_table("tuning_runs")


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def _create_tuning_runs() -> None:
    op.create_table(
        "tuning_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("base_model", sa.String(length=512), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("template_version_id", sa.Integer(), nullable=True),
        sa.Column("work_dir", sa.Text(), nullable=False),
        sa.Column("adapter_path", sa.Text(), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("stop_requested", sa.Boolean(), nullable=False),
        sa.Column("resume", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("host", sa.String(length=256), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        _fk("tuning_runs", "dataset_id", "datasets", "RESTRICT"),
        _fk("tuning_runs", "template_version_id", "template_versions", "RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tuning_runs")),
    )


def _create_metric_points() -> None:
    op.create_table(
        "metric_points",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tuning_run_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Float(), nullable=True),
        sa.Column("loss", sa.Float(), nullable=True),
        sa.Column("eval_loss", sa.Float(), nullable=True),
        sa.Column("learning_rate", sa.Float(), nullable=True),
        sa.Column("grad_norm", sa.Float(), nullable=True),
        sa.Column("tokens_per_second", sa.Float(), nullable=True),
        sa.Column("eta_seconds", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("metric_points", "tuning_run_id", "tuning_runs", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_points")),
    )


def _create_adapters() -> None:
    op.create_table(
        "adapters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("base_model", sa.String(length=512), nullable=False),
        sa.Column("tuning_run_id", sa.Integer(), nullable=True),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("template_version_id", sa.Integer(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("adapters", "tuning_run_id", "tuning_runs", "SET NULL"),
        _fk("adapters", "dataset_id", "datasets", "RESTRICT"),
        _fk("adapters", "template_version_id", "template_versions", "RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adapters")),
        sa.UniqueConstraint("path", name=op.f("uq_adapters_path")),
    )
