"""Member data sealed at rest: a data key id on each row with sealed values, and the key-check table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Only adds columns, indexes and a table (no table is rebuilt, so SQLite keeps its rows and foreign keys). The
sealed values stay in the existing JSON columns (as a JSON string). Rows written before this revision keep their
plain JSON with `data_key_id` NULL: the server seals them at its next start, and `python -m server.store
rotate-key` seals any it finds (a migration cannot: it may run where no data key is configured, or offline).
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
    op.add_column("eligibility_requests", sa.Column("data_key_id", sa.String(32), nullable=True))
    op.create_index("ix_eligibility_requests_data_key_id", "eligibility_requests", ["data_key_id"])
    op.add_column("eligibility_responses", sa.Column("data_key_id", sa.String(32), nullable=True))
    op.create_index("ix_eligibility_responses_data_key_id", "eligibility_responses", ["data_key_id"])
    op.create_table(
        "data_keys",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("check_value", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_data_keys"),
    )


def downgrade() -> None:
    # The older code reads plain JSON only: refuse rather than leave it rows it would misread.
    bind = op.get_bind()
    for table in ("eligibility_requests", "eligibility_responses"):
        if bind.execute(sa.text(f"SELECT 1 FROM {table} WHERE data_key_id IS NOT NULL LIMIT 1")).first():
            raise RuntimeError(f"{table} holds sealed rows; revision 0001 cannot read them, refusing to downgrade")
    op.drop_table("data_keys")
    op.drop_index("ix_eligibility_responses_data_key_id", table_name="eligibility_responses")
    op.drop_column("eligibility_responses", "data_key_id")
    op.drop_index("ix_eligibility_requests_data_key_id", table_name="eligibility_requests")
    op.drop_column("eligibility_requests", "data_key_id")
