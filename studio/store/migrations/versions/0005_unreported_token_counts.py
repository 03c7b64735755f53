"""Token counts a served model did not report are stored as unknown (NULL), not as 0.

An OpenAI-compatible server reports token counts in its `usage`, which a streamed answer only
gets at its end: a stream stopped midway, or a server that sends no usage, left no counts, and 0
was stored in their place. The exchange's prompt and completion counts and a comparison result's
prompt count become nullable (a result's completion count already was).

Revision ID: 0005_unreported_token_counts
Revises: 0004_experiment_annotations
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_unreported_token_counts"
down_revision: str | None = "0004_experiment_annotations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> columns that become nullable
COLUMNS = {
    "playground_exchanges": ("prompt_tokens", "completion_tokens"),
    "comparison_results": ("prompt_tokens",),
}


def _nullable(nullable: bool) -> None:
    for table, columns in COLUMNS.items():
        # Batch mode: SQLite rebuilds the table (foreign keys are off during migrations).
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, existing_type=sa.Integer(), nullable=nullable)


def upgrade() -> None:
    _nullable(True)


def downgrade() -> None:
    # Unknown counts go back to the 0 that earlier versions stored for them.
    for table, columns in COLUMNS.items():
        for column in columns:
            op.execute(sa.text(f"UPDATE {table} SET {column} = 0 WHERE {column} IS NULL"))
    _nullable(False)
