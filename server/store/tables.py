"""Table definitions (SQLAlchemy Core). A change here needs a new Alembic revision in `migrations/versions/`.

`tests/store/test_migrations.py` compares this metadata with what the migrations build, so the two cannot drift.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

from .records import CheckMode, CheckStatus

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out on every backend.

    SQLite has no timezone type: values are stored as naive UTC text in SQLAlchemy's fixed-width format, which keeps
    lexicographic order equal to time order (needed by the keyset pagination). Naive input is refused rather than
    guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given to the store; pass a timezone-aware value")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_type() -> TypeEngine[Any]:
    """JSON everywhere, JSONB on PostgreSQL; Python None is stored as SQL NULL, not the JSON literal."""
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def _in_list(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


STATUS_VALUES = [s.value for s in CheckStatus]
MODE_VALUES = [m.value for m in CheckMode]
_PENDING_ONLY = text("status = 'PENDING'")

eligibility_requests = Table(
    "eligibility_requests",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(128), nullable=False),
    Column("policy_id", String(128), nullable=True),
    Column("patient_id", String(128), nullable=True),
    Column("payer_id", String(80), nullable=False),
    Column("status", String(16), nullable=False),
    Column("mode", String(8), nullable=False),
    Column("requested_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("completed_at", UTCDateTime(), nullable=True),
    # PHI: the 270 request as sent, sealed (a JSON string, see sealing.py) under the key `data_key_id` names.
    Column("request_payload", json_type(), nullable=False),
    Column("data_key_id", String(32), nullable=True),
    Column("clearinghouse_id", String(128), nullable=True),
    Column("trace_id", String(128), nullable=True),
    Column("failure_reason", String(256), nullable=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("claimed_by", String(128), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("version", Integer, nullable=False, server_default=text("1")),
    CheckConstraint(_in_list("status", STATUS_VALUES), name="status"),
    CheckConstraint(_in_list("mode", MODE_VALUES), name="mode"),
    CheckConstraint("attempts >= 0", name="attempts_non_negative"),
    # History, newest first: (tenant [, filter], requested_at, id) serves ORDER BY requested_at DESC, id DESC
    # by a backward index scan and the keyset predicate on the same columns.
    Index("ix_eligibility_requests_tenant_requested", "tenant_id", "requested_at", "id"),
    Index("ix_eligibility_requests_tenant_policy_requested", "tenant_id", "policy_id", "requested_at", "id"),
    Index("ix_eligibility_requests_tenant_patient_requested", "tenant_id", "patient_id", "requested_at", "id"),
    # History filtered by status, and overall stats (GROUP BY status, MAX(requested_at)) as an index-only scan.
    Index("ix_eligibility_requests_tenant_status_requested", "tenant_id", "status", "requested_at", "id"),
    # Stats per policy.
    Index("ix_eligibility_requests_tenant_policy_status", "tenant_id", "policy_id", "status"),
    # Worker and janitor look only at the (few) PENDING rows.
    Index(
        "ix_eligibility_requests_pending_due",
        "next_attempt_at",
        postgresql_where=_PENDING_ONLY,
        sqlite_where=_PENDING_ONLY,
    ),
    Index(
        "ix_eligibility_requests_pending_requested",
        "requested_at",
        postgresql_where=_PENDING_ONLY,
        sqlite_where=_PENDING_ONLY,
    ),
    # Rotation and the start-up check find rows under an old key (or never sealed) without a full scan.
    Index("ix_eligibility_requests_data_key_id", "data_key_id"),
)

eligibility_responses = Table(
    "eligibility_responses",
    metadata,
    Column(
        "request_id",
        String(36),
        ForeignKey("eligibility_requests.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("http_status", Integer, nullable=True),
    # PHI: the full clearinghouse answer as received (eligibility.md §4 step 6) and its normalized summary (names,
    # member ids, birth dates): both sealed under the key `data_key_id` names. Stored, never logged.
    Column("raw_payload", json_type(), nullable=True),
    Column("normalized_summary", json_type(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("data_key_id", String(32), nullable=True),
    Index("ix_eligibility_responses_data_key_id", "data_key_id"),
)

eligibility_attempts = Table(
    "eligibility_attempts",
    metadata,
    Column(
        "request_id",
        String(36),
        ForeignKey("eligibility_requests.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("attempt_no", Integer, primary_key=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("http_status", Integer, nullable=True),
    Column("aaa_codes", json_type(), nullable=True),
    Column("clearinghouse_id", String(128), nullable=True),
    Column("trace_id", String(128), nullable=True),
    Column("error", String(256), nullable=True),
)

# One row per data key that has sealed rows here: a sealed known value, so a start with the wrong key (or none of
# the keys this database was sealed with) stops before it reads or writes anything (see keycheck.py).
data_keys = Table(
    "data_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("check_value", Text(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
