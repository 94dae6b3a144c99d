"""Backend-free pieces: URL handling, page tokens, page sizes, typed errors, PHI-free reprs."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from server.store import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    CheckStatus,
    EligibilityRepository,
    InvalidPageToken,
    PoolOptions,
    StoreUnavailable,
    create_engine_for,
    resolve_database_url,
)
from server.store.engine import json_dumps, normalize_url
from server.store.pagination import Cursor, PageTokenCodec, clamp_page_size
from server.store.records import ResponseRecord
from tests.store.helpers import SEALER, SECRET


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite"),
        ("postgresql://u@h/db", "postgresql+asyncpg"),
        ("postgresql+psycopg://u@h/db", "postgresql+asyncpg"),
        ("postgres://u:p@h:5433/db", "postgresql+asyncpg"),
    ],
)
def test_normalize_url_picks_async_drivers(given: str, driver: str) -> None:
    assert normalize_url(given).drivername == driver


def test_normalize_url_refuses_other_backends() -> None:
    with pytest.raises(ValueError):
        normalize_url("mysql://u@h/db")


def test_resolve_database_url(tmp_path: Path) -> None:
    data_dir = tmp_path / "not-yet"
    url = resolve_database_url(None, data_dir)
    assert url == f"sqlite+aiosqlite:///{data_dir.resolve() / 'costestimator.sqlite3'}"
    assert data_dir.is_dir()  # created on first start
    assert resolve_database_url("postgres://u:p%40ss@h/db", data_dir) == "postgresql+asyncpg://u:p%40ss@h/db"


def test_schema_only_on_postgres_and_validated() -> None:
    with pytest.raises(ValueError):
        create_engine_for("sqlite+aiosqlite:///x.db", schema="s")
    with pytest.raises(ValueError):
        create_engine_for("postgresql+asyncpg://u@h/db", schema='x"; DROP TABLE y; --')


def test_json_keeps_money_exact() -> None:
    assert json_dumps({"a": Decimal("0.10"), "d": datetime(2026, 1, 2, tzinfo=UTC)}) == (
        '{"a":"0.10","d":"2026-01-02T00:00:00+00:00"}'
    )


def test_page_size_rules() -> None:
    assert clamp_page_size(None) == DEFAULT_PAGE_SIZE == 50
    assert clamp_page_size(0) == 50
    assert clamp_page_size(7) == 7
    assert clamp_page_size(10_000) == MAX_PAGE_SIZE == 500
    with pytest.raises(ValueError):
        clamp_page_size(-1)


def test_page_token_round_trip_and_binding() -> None:
    codec = PageTokenCodec(SECRET)
    cursor = Cursor(datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC), "id-1")
    binding = {"tenant": "t1", "policy": "p", "patient": None, "status": None}
    token = codec.encode(cursor, binding)
    assert codec.decode(token, binding) == cursor
    with pytest.raises(InvalidPageToken):
        codec.decode(token, {**binding, "policy": "q"})
    with pytest.raises(InvalidPageToken):
        PageTokenCodec(b"x" * 32).decode(token, binding)
    assert isinstance(InvalidPageToken("x"), ValueError)  # maps to INVALID_ARGUMENT like other bad input
    with pytest.raises(ValueError):
        PageTokenCodec(b"short")


async def test_unreachable_database_raises_store_unavailable() -> None:
    engine = create_engine_for(
        "postgresql+asyncpg://postgres@127.0.0.1:1/none", pool=PoolOptions(pool_size=1, max_overflow=0)
    )
    repo = EligibilityRepository(engine, page_token_secret=SECRET, sealer=SEALER)
    try:
        with pytest.raises(StoreUnavailable) as excinfo:
            await repo.get("t", "id")
        assert "127.0.0.1" not in str(excinfo.value)
        with pytest.raises(StoreUnavailable):
            await repo.create_pending("t", payer_id="P", request_payload={"subscriber": {"memberId": "M"}})
    finally:
        await engine.dispose()


def test_response_repr_has_no_payloads() -> None:
    record = ResponseRecord(
        request_id="r",
        http_status=200,
        created_at=datetime.now(UTC),
        summary={"member": "JANE DOE"},
        raw={"subscriber": {"memberId": "W123"}},
    )
    assert "JANE" not in repr(record) and "W123" not in repr(record)


def test_statuses() -> None:
    assert [s.value for s in CheckStatus] == ["PENDING", "VERIFIED", "FAILED", "NOT_FOUND", "EXPIRED"]
    assert not CheckStatus.PENDING.is_final and CheckStatus.EXPIRED.is_final
