"""Eligibility requests, responses and attempts.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Frozen copy of the schema at this revision (do not import `server.store.tables` here: later changes to it must
come as new revisions). Tables are unqualified: the connection's search_path picks the schema on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


_PENDING_ONLY = sa.text("status = 'PENDING'")


def upgrade() -> None:
    op.create_table(
        "eligibility_requests",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("policy_id", sa.String(128), nullable=True),
        sa.Column("patient_id", sa.String(128), nullable=True),
        sa.Column("payer_id", sa.String(80), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("requested_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.Column("completed_at", _ts(), nullable=True),
        sa.Column("request_payload", _json(), nullable=False),
        sa.Column("clearinghouse_id", sa.String(128), nullable=True),
        sa.Column("trace_id", sa.String(128), nullable=True),
        sa.Column("failure_reason", sa.String(256), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", _ts(), nullable=True),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("lease_until", _ts(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint(
            "status IN ('PENDING', 'VERIFIED', 'FAILED', 'NOT_FOUND', 'EXPIRED')",
            name="ck_eligibility_requests_status",
        ),
        sa.CheckConstraint("mode IN ('sync', 'async')", name="ck_eligibility_requests_mode"),
        sa.CheckConstraint("attempts >= 0", name="ck_eligibility_requests_attempts_non_negative"),
        sa.PrimaryKeyConstraint("id", name="pk_eligibility_requests"),
    )
    op.create_index(
        "ix_eligibility_requests_tenant_requested", "eligibility_requests", ["tenant_id", "requested_at", "id"]
    )
    op.create_index(
        "ix_eligibility_requests_tenant_policy_requested",
        "eligibility_requests",
        ["tenant_id", "policy_id", "requested_at", "id"],
    )
    op.create_index(
        "ix_eligibility_requests_tenant_patient_requested",
        "eligibility_requests",
        ["tenant_id", "patient_id", "requested_at", "id"],
    )
    op.create_index(
        "ix_eligibility_requests_tenant_status_requested",
        "eligibility_requests",
        ["tenant_id", "status", "requested_at", "id"],
    )
    op.create_index(
        "ix_eligibility_requests_tenant_policy_status",
        "eligibility_requests",
        ["tenant_id", "policy_id", "status"],
    )
    op.create_index(
        "ix_eligibility_requests_pending_due",
        "eligibility_requests",
        ["next_attempt_at"],
        postgresql_where=_PENDING_ONLY,
        sqlite_where=_PENDING_ONLY,
    )
    op.create_index(
        "ix_eligibility_requests_pending_requested",
        "eligibility_requests",
        ["requested_at"],
        postgresql_where=_PENDING_ONLY,
        sqlite_where=_PENDING_ONLY,
    )

    op.create_table(
        "eligibility_responses",
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("raw_payload", _json(), nullable=True),
        sa.Column("normalized_summary", _json(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["eligibility_requests.id"],
            name="fk_eligibility_responses_request_id_eligibility_requests",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", name="pk_eligibility_responses"),
    )

    op.create_table(
        "eligibility_attempts",
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("aaa_codes", _json(), nullable=True),
        sa.Column("clearinghouse_id", sa.String(128), nullable=True),
        sa.Column("trace_id", sa.String(128), nullable=True),
        sa.Column("error", sa.String(256), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["eligibility_requests.id"],
            name="fk_eligibility_attempts_request_id_eligibility_requests",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", "attempt_no", name="pk_eligibility_attempts"),
    )


def downgrade() -> None:
    op.drop_table("eligibility_attempts")
    op.drop_table("eligibility_responses")
    op.drop_index("ix_eligibility_requests_pending_requested", table_name="eligibility_requests")
    op.drop_index("ix_eligibility_requests_pending_due", table_name="eligibility_requests")
    op.drop_index("ix_eligibility_requests_tenant_policy_status", table_name="eligibility_requests")
    op.drop_index("ix_eligibility_requests_tenant_status_requested", table_name="eligibility_requests")
    op.drop_index("ix_eligibility_requests_tenant_patient_requested", table_name="eligibility_requests")
    op.drop_index("ix_eligibility_requests_tenant_policy_requested", table_name="eligibility_requests")
    op.drop_index("ix_eligibility_requests_tenant_requested", table_name="eligibility_requests")
    op.drop_table("eligibility_requests")
